#include "vmm/boot/acpi_tables.hpp"

#include <cstring>
#include <stdexcept>
#include <string_view>

#include "vmm/boot/boot_layout.hpp"
#include "vmm/devices/interrupt_controllers.hpp"

namespace drvm::vmm {

namespace {

// Where each table starts, relative to the RSDP (ACPI 6.5: 5.2.5 RSDP, 5.2.6 header).
constexpr std::size_t kRsdpOffset = 0x000;
constexpr std::size_t kRsdtOffset = 0x040;
constexpr std::size_t kXsdtOffset = 0x080;
constexpr std::size_t kFadtOffset = 0x100;
constexpr std::size_t kDsdtOffset = 0x240;
constexpr std::size_t kMadtOffset = 0x280;
constexpr std::size_t kHeaderSize = 36;
constexpr std::size_t kFadtSize = 276;  // revision 6
constexpr std::size_t kRsdpSize = 36;

constexpr std::uint32_t kFadtHwReducedAcpi = 1u << 20;
constexpr std::uint16_t kBootArchVgaNotPresent = 1u << 2;
constexpr std::uint16_t kBootArchMsiNotSupported = 1u << 3;
constexpr std::uint16_t kBootArchRtcNotPresent = 1u << 5;
constexpr std::uint32_t kMadtPcatCompat = 1;  // 8259 pair present
constexpr std::uint32_t kLocalApicEnabled = 1;

class Writer {
 public:
  explicit Writer(std::vector<std::uint8_t>& out) : out_(out) {}
  void bytes(std::size_t at, std::string_view text) {
    std::memcpy(out_.data() + at, text.data(), text.size());
  }
  template <typename T>
  void put(std::size_t at, T value) {
    std::memcpy(out_.data() + at, &value, sizeof value);
  }
  // A system description table header (the checksum is filled in at the end).
  void header(std::size_t at, std::string_view signature, std::uint32_t length,
              std::uint8_t revision) {
    bytes(at, signature);
    put<std::uint32_t>(at + 4, length);
    put<std::uint8_t>(at + 8, revision);
    bytes(at + 10, "DRVM  ");        // OEM ID (6)
    bytes(at + 16, "DRVMPLAT");      // OEM table ID (8)
    put<std::uint32_t>(at + 24, 1);  // OEM revision
    bytes(at + 28, "DRVM");          // creator ID
    put<std::uint32_t>(at + 32, 1);  // creator revision
  }
  void checksum(std::size_t at, std::size_t length, std::size_t field) {
    out_[at + field] = 0;
    out_[at + field] = static_cast<std::uint8_t>(
        -acpi_sum(std::span<const std::uint8_t>(out_.data() + at, length)));
  }

 private:
  std::vector<std::uint8_t>& out_;
};

}  // namespace

std::uint8_t acpi_sum(std::span<const std::uint8_t> bytes) {
  std::uint8_t sum = 0;
  for (const std::uint8_t byte : bytes) sum = static_cast<std::uint8_t>(sum + byte);
  return sum;
}

std::vector<std::uint8_t> build_acpi_tables(std::uint64_t base, unsigned vcpu_count) {
  // MADT: header, local APIC address, flags, then the entries.
  constexpr std::size_t kLocalApicEntry = 8, kIoapicEntry = 12, kOverrideEntry = 10,
                        kLapicNmiEntry = 6;
  const std::size_t madt_size = kHeaderSize + 8 + vcpu_count * kLocalApicEntry + kIoapicEntry +
                                kOverrideEntry + kLapicNmiEntry;
  std::vector<std::uint8_t> out(kMadtOffset + madt_size, 0);
  if (vcpu_count == 0 || vcpu_count > 255) throw std::invalid_argument("ACPI: vCPU count");
  Writer w(out);

  // DSDT: no devices (an empty definition block is valid AML).
  w.header(kDsdtOffset, "DSDT", kHeaderSize, 2);
  w.checksum(kDsdtOffset, kHeaderSize, 9);

  // FADT: hardware-reduced ACPI (no PM blocks, no SCI, no SMI), the DSDT through X_DSDT.
  w.header(kFadtOffset, "FACP", kFadtSize, 6);
  w.put<std::uint32_t>(kFadtOffset + 40, static_cast<std::uint32_t>(base + kDsdtOffset));
  w.put<std::uint16_t>(kFadtOffset + 109,
                       kBootArchVgaNotPresent | kBootArchMsiNotSupported | kBootArchRtcNotPresent);
  w.put<std::uint32_t>(kFadtOffset + 112, kFadtHwReducedAcpi);
  w.put<std::uint8_t>(kFadtOffset + 131, 5);  // FADT minor version: ACPI 6.5
  w.put<std::uint64_t>(kFadtOffset + 140, base + kDsdtOffset);
  w.checksum(kFadtOffset, kFadtSize, 9);

  // MADT.
  w.header(kMadtOffset, "APIC", static_cast<std::uint32_t>(madt_size), 5);
  w.put<std::uint32_t>(kMadtOffset + 36, static_cast<std::uint32_t>(irq::kLapicAddress));
  w.put<std::uint32_t>(kMadtOffset + 40, kMadtPcatCompat);
  std::size_t at = kMadtOffset + 44;
  for (unsigned cpu = 0; cpu < vcpu_count; ++cpu, at += kLocalApicEntry) {
    w.put<std::uint8_t>(at, 0);  // Processor Local APIC
    w.put<std::uint8_t>(at + 1, kLocalApicEntry);
    w.put<std::uint8_t>(at + 2, static_cast<std::uint8_t>(cpu));  // ACPI processor UID
    w.put<std::uint8_t>(at + 3, static_cast<std::uint8_t>(cpu));  // APIC ID
    w.put<std::uint32_t>(at + 4, kLocalApicEnabled);
  }
  w.put<std::uint8_t>(at, 1);  // I/O APIC
  w.put<std::uint8_t>(at + 1, kIoapicEntry);
  w.put<std::uint8_t>(at + 2, irq::kIoapicId);
  w.put<std::uint32_t>(at + 4, static_cast<std::uint32_t>(irq::kIoapicAddress));
  w.put<std::uint32_t>(at + 8, 0);  // global system interrupt base
  at += kIoapicEntry;
  w.put<std::uint8_t>(at, 2);  // Interrupt Source Override: ISA IRQ 0 -> GSI 2
  w.put<std::uint8_t>(at + 1, kOverrideEntry);
  w.put<std::uint8_t>(at + 2, 0);  // bus: ISA
  w.put<std::uint8_t>(at + 3, static_cast<std::uint8_t>(irq::kPitIrq));
  w.put<std::uint32_t>(at + 4, irq::kPitIoapicPin);
  w.put<std::uint16_t>(at + 8, 0);  // flags: conforms to the bus (edge, active high)
  at += kOverrideEntry;
  w.put<std::uint8_t>(at, 4);  // Local APIC NMI: every processor's LINT1
  w.put<std::uint8_t>(at + 1, kLapicNmiEntry);
  w.put<std::uint8_t>(at + 2, 0xff);
  w.put<std::uint16_t>(at + 3, 0);
  w.put<std::uint8_t>(at + 5, 1);
  w.checksum(kMadtOffset, madt_size, 9);

  // RSDT (32-bit pointers) and XSDT (64-bit pointers): FADT first, as ACPI requires.
  const std::uint64_t tables[] = {base + kFadtOffset, base + kMadtOffset};
  w.header(kRsdtOffset, "RSDT", kHeaderSize + 4 * std::size(tables), 1);
  w.header(kXsdtOffset, "XSDT", kHeaderSize + 8 * std::size(tables), 1);
  for (std::size_t i = 0; i < std::size(tables); ++i) {
    w.put<std::uint32_t>(kRsdtOffset + kHeaderSize + 4 * i, static_cast<std::uint32_t>(tables[i]));
    w.put<std::uint64_t>(kXsdtOffset + kHeaderSize + 8 * i, tables[i]);
  }
  w.checksum(kRsdtOffset, kHeaderSize + 4 * std::size(tables), 9);
  w.checksum(kXsdtOffset, kHeaderSize + 8 * std::size(tables), 9);

  // RSDP: the first 20 bytes have their own checksum, all 36 the extended one.
  w.bytes(kRsdpOffset, "RSD PTR ");
  w.bytes(kRsdpOffset + 9, "DRVM  ");
  w.put<std::uint8_t>(kRsdpOffset + 15, 2);  // revision: ACPI 2.0+
  w.put<std::uint32_t>(kRsdpOffset + 16, static_cast<std::uint32_t>(base + kRsdtOffset));
  w.put<std::uint32_t>(kRsdpOffset + 20, kRsdpSize);
  w.put<std::uint64_t>(kRsdpOffset + 24, base + kXsdtOffset);
  w.checksum(kRsdpOffset, 20, 8);
  w.checksum(kRsdpOffset, kRsdpSize, 32);
  return out;
}

std::uint64_t write_acpi_tables(GuestMemory& memory, unsigned vcpu_count) {
  const std::vector<std::uint8_t> tables = build_acpi_tables(layout::kAcpiTables, vcpu_count);
  std::memcpy(memory.host(layout::kAcpiTables, tables.size()), tables.data(), tables.size());
  return layout::kAcpiTables;
}

}  // namespace drvm::vmm

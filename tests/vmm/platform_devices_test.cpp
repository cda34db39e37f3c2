// The platform's pure parts: the device buses, the decoded exits, the small PC ports, COM1's
// interrupt logic and the ACPI tables (label unit: no /dev/kvm needed).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "vmm/boot/acpi_tables.hpp"
#include "vmm/devices/io_bus.hpp"
#include "vmm/devices/platform_ports.hpp"
#include "vmm/devices/serial.hpp"
#include "vmm/kvm/vm_exit.hpp"

namespace drvm::vmm {
namespace {

class RecordingPorts final : public PortDevice {
 public:
  std::uint32_t port_read(unsigned, std::uint16_t offset, unsigned) override {
    return 0x100u + offset;
  }
  void port_write(unsigned vcpu, std::uint16_t offset, unsigned size,
                  std::uint32_t value) override {
    writes.push_back({vcpu, offset, size, value});
  }
  struct Write {
    unsigned vcpu;
    std::uint16_t offset;
    unsigned size;
    std::uint32_t value;
  };
  std::vector<Write> writes;
};

TEST(IoBus, FindsTheDeviceThatRegisteredThePort) {
  IoBus bus;
  RecordingPorts a, b;
  bus.add_ports(0x3f8, 8, a, "a");
  bus.add_ports(0xf4, 4, b, "b");
  ASSERT_NE(bus.find_port(0x3f8), nullptr);
  EXPECT_EQ(bus.find_port(0x3f8)->device, &a);
  EXPECT_EQ(bus.find_port(0x3ff)->device, &a);
  EXPECT_EQ(bus.find_port(0xf7)->device, &b);
  EXPECT_EQ(bus.find_port(0x400), nullptr);
  EXPECT_EQ(bus.find_port(0xf3), nullptr);
  EXPECT_EQ(bus.find_port(0xf8), nullptr);
}

TEST(IoBus, RejectsOverlappingAndEmptyRanges) {
  IoBus bus;
  RecordingPorts a;
  bus.add_ports(0x510, 2, a, "fw_cfg");
  EXPECT_THROW(bus.add_ports(0x511, 1, a, "other"), std::logic_error);
  EXPECT_THROW(bus.add_ports(0x500, 0x11, a, "other"), std::logic_error);
  EXPECT_THROW(bus.add_ports(0x600, 0, a, "empty"), std::logic_error);
  EXPECT_NO_THROW(bus.add_ports(0x512, 2, a, "next"));
  EXPECT_NO_THROW(bus.add_ports(0xfffe, 2, a, "last ports"));
}

class ConstantMmio final : public MmioDevice {
 public:
  std::uint64_t mmio_read(unsigned, std::uint64_t offset, unsigned) override { return offset; }
  void mmio_write(unsigned, std::uint64_t, unsigned, std::uint64_t) override {}
};

TEST(IoBus, FindsMmioRanges) {
  IoBus bus;
  ConstantMmio device;
  bus.add_mmio(0xd0000000, 0x1000, device, "mmio");
  EXPECT_EQ(bus.find_mmio(0xd0000fff)->device, &device);
  EXPECT_EQ(bus.find_mmio(0xd0001000), nullptr);
  EXPECT_EQ(bus.find_mmio(0xcfffffff), nullptr);
  EXPECT_THROW(bus.add_mmio(0xd0000800, 0x1000, device, "overlap"), std::logic_error);
}

TEST(VmExit, DecodesPortIo) {
  auto run = std::make_unique<kvm_run>();
  run->exit_reason = KVM_EXIT_IO;
  run->io.direction = KVM_EXIT_IO_OUT;
  run->io.size = 2;
  run->io.port = 0xf4;
  run->io.count = 3;
  run->io.data_offset = 64;
  const VmExit exit = decode_exit(*run);
  EXPECT_EQ(exit.kind, ExitKind::kIo);
  EXPECT_EQ(exit.io.port, 0xf4);
  EXPECT_EQ(exit.io.size, 2);
  EXPECT_TRUE(exit.io.write);
  EXPECT_EQ(exit.io.count, 3u);
  EXPECT_EQ(exit.io.data, reinterpret_cast<std::uint8_t*>(run.get()) + 64);
}

TEST(VmExit, DecodesMmioAndClampsTheLength) {
  auto run = std::make_unique<kvm_run>();
  run->exit_reason = KVM_EXIT_MMIO;
  run->mmio.phys_addr = 0xfee000b0;
  run->mmio.len = 4;
  run->mmio.is_write = 1;
  VmExit exit = decode_exit(*run);
  EXPECT_EQ(exit.kind, ExitKind::kMmio);
  EXPECT_EQ(exit.mmio.address, 0xfee000b0u);
  EXPECT_EQ(exit.mmio.size, 4u);
  EXPECT_TRUE(exit.mmio.write);
  EXPECT_EQ(exit.mmio.data, run->mmio.data);
  run->mmio.len = 200;  // never trusted beyond the data field
  EXPECT_EQ(decode_exit(*run).mmio.size, 8u);
}

TEST(VmExit, NamesEveryOtherKind) {
  auto run = std::make_unique<kvm_run>();
  const std::pair<std::uint32_t, ExitKind> cases[] = {
      {KVM_EXIT_HLT, ExitKind::kHlt},
      {KVM_EXIT_DEBUG, ExitKind::kDebug},
      {KVM_EXIT_SHUTDOWN, ExitKind::kShutdown},
      {KVM_EXIT_INTERNAL_ERROR, ExitKind::kInternalError},
      {KVM_EXIT_INTR, ExitKind::kInterrupted},
      {KVM_EXIT_FAIL_ENTRY, ExitKind::kFailEntry},
      {KVM_EXIT_EXCEPTION, ExitKind::kException},
      {KVM_EXIT_SYSTEM_EVENT, ExitKind::kSystemEvent},
      {KVM_EXIT_UNKNOWN, ExitKind::kUnknown},
      {KVM_EXIT_HYPERCALL, ExitKind::kOther},
  };
  for (const auto& [reason, kind] : cases) {
    run->exit_reason = reason;
    EXPECT_EQ(decode_exit(*run).kind, kind) << exit_reason_name(reason);
    EXPECT_EQ(decode_exit(*run).reason, reason);
  }
  EXPECT_EQ(exit_reason_name(KVM_EXIT_IO), "KVM_EXIT_IO");
  EXPECT_EQ(exit_reason_name(9999), "unknown exit reason 9999");
}

TEST(ExitPort, EveryWidthAndOffsetEndsTheRunWithTheValue) {
  std::vector<std::pair<unsigned, std::uint32_t>> exits;
  ExitPort port([&](unsigned vcpu, std::uint32_t value) { exits.emplace_back(vcpu, value); });
  port.port_write(0, 0, 1, 0x31);
  port.port_write(1, 0, 2, 0x1234);
  port.port_write(0, 0, 4, 0xdeadbeef);
  port.port_write(0, 3, 1, 7);
  ASSERT_EQ(exits.size(), 4u);
  EXPECT_EQ(exits[1], (std::pair<unsigned, std::uint32_t>{1, 0x1234}));
  EXPECT_EQ(exits[2].second, 0xdeadbeefu);
  EXPECT_EQ(port.port_read(0, 0, 4), 0xffffffffu);
}

TEST(QuietPorts, ReadAllOnesAndTraceOnlyWhenAsked) {
  QuietPorts silent("fw_cfg, absent", QuietPorts::kFwCfgBase, nullptr);
  EXPECT_EQ(silent.port_read(0, 1, 1), 0xffu);
  EXPECT_EQ(silent.port_read(0, 0, 2), 0xffffu);
  EXPECT_EQ(silent.port_read(0, 0, 4), 0xffffffffu);
  silent.port_write(0, 0, 2, 0);  // the signature selector: dropped

  char* text = nullptr;
  std::size_t size = 0;
  std::FILE* trace = open_memstream(&text, &size);
  QuietPorts traced("POST port", QuietPorts::kPostPort, trace);
  traced.port_write(0, 0, 1, 0x42);
  EXPECT_EQ(traced.port_read(0, 0, 1), 0xffu);
  std::fclose(trace);
  EXPECT_EQ(std::string(text, size),
            "drvm: io: out port=0x0080 size=1 value=0x42 (POST port)\n"
            "drvm: io: in  port=0x0080 size=1 value=0xff (POST port)\n");
  std::free(text);
}

// COM1 as an interrupt source, with its input on a pipe.
class Com1Interrupts : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::pipe(input_), 0);
    output_fd_ = ::open("/dev/null", O_WRONLY);
    output_ = std::make_unique<SerialOutput>(output_fd_);
    uart_ = std::make_unique<Uart16550>(*output_, input_[0],
                                        [this](bool level) { levels_.push_back(level); });
  }
  void TearDown() override {
    uart_.reset();
    output_.reset();
    ::close(input_[0]);
    if (input_[1] >= 0) ::close(input_[1]);
    ::close(output_fd_);
  }
  void send(const std::string& bytes) {
    ASSERT_EQ(::write(input_[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }

  int input_[2] = {-1, -1};
  int output_fd_ = -1;
  std::unique_ptr<SerialOutput> output_;
  std::unique_ptr<Uart16550> uart_;
  std::vector<bool> levels_;
};

TEST_F(Com1Interrupts, ReceivedDataRaisesIrqUntilTheBufferIsRead) {
  EXPECT_FALSE(uart_->wants_input());  // IER off: a polling guest reads the input itself
  uart_->port_write(0, 1, 1, 0x01);    // IER: received data available
  EXPECT_TRUE(uart_->wants_input());
  EXPECT_TRUE(uart_->can_interrupt());
  EXPECT_TRUE(levels_.empty());
  send("ab");
  uart_->pump_input();
  ASSERT_EQ(levels_, std::vector<bool>{true});
  EXPECT_EQ(uart_->port_read(0, 2, 1) & 0x0f, 0x04u);  // IIR: received data
  EXPECT_EQ(uart_->port_read(0, 0, 1), static_cast<std::uint32_t>('a'));
  EXPECT_EQ(levels_.size(), 1u);  // still a byte to read
  EXPECT_EQ(uart_->port_read(0, 0, 1), static_cast<std::uint32_t>('b'));
  EXPECT_EQ(levels_, (std::vector<bool>{true, false}));
  EXPECT_EQ(uart_->port_read(0, 2, 1) & 0x0f, 0x01u);  // no interrupt pending
}

TEST_F(Com1Interrupts, ClosedInputCanNoLongerInterrupt) {
  uart_->port_write(0, 1, 1, 0x01);
  ::close(input_[1]);
  input_[1] = -1;
  uart_->pump_input();  // reads EOF
  EXPECT_FALSE(uart_->can_interrupt());
  EXPECT_FALSE(uart_->wants_input());
  EXPECT_TRUE(levels_.empty());
}

TEST_F(Com1Interrupts, TransmitterEmptyInterruptIsAcknowledgedByReadingIir) {
  uart_->port_write(0, 1, 1, 0x02);  // IER: THR empty; the THR is empty now
  ASSERT_EQ(levels_, std::vector<bool>{true});
  EXPECT_EQ(uart_->port_read(0, 2, 1) & 0x0f, 0x02u);
  EXPECT_EQ(levels_, (std::vector<bool>{true, false}));
  uart_->port_write(0, 0, 1, 'x');  // transmitted at once: empty again
  EXPECT_EQ(levels_, (std::vector<bool>{true, false, true}));
  uart_->port_write(0, 1, 1, 0x00);  // disabled: the line drops
  EXPECT_EQ(levels_, (std::vector<bool>{true, false, true, false}));
}

TEST_F(Com1Interrupts, SavedStateComesBackWithItsUnreadInputAndIrqLevel) {
  uart_->port_write(0, 3, 1, 0x83);  // DLAB: divisor 3
  uart_->port_write(0, 0, 1, 0x03);
  uart_->port_write(0, 3, 1, 0x03);
  uart_->port_write(0, 7, 1, 0x5a);  // scratch
  uart_->port_write(0, 1, 1, 0x01);  // IER: received data available
  send("xyz");
  uart_->pump_input();
  EXPECT_EQ(uart_->port_read(0, 0, 1), static_cast<std::uint32_t>('x'));
  const Uart16550::State saved = uart_->save();
  EXPECT_EQ(saved.input, (std::vector<std::uint8_t>{'y', 'z'}));
  EXPECT_EQ(saved.ier, 0x01);

  // Run on: read the rest, change registers; the line drops.
  EXPECT_EQ(uart_->port_read(0, 0, 1), static_cast<std::uint32_t>('y'));
  EXPECT_EQ(uart_->port_read(0, 0, 1), static_cast<std::uint32_t>('z'));
  uart_->port_write(0, 7, 1, 0x00);
  uart_->port_write(0, 3, 1, 0x83);
  uart_->port_write(0, 0, 1, 0x0c);
  ASSERT_EQ(levels_, (std::vector<bool>{true, false}));

  uart_->restore(saved);
  EXPECT_EQ(levels_, (std::vector<bool>{true, false, true})) << "the line is driven again";
  EXPECT_EQ(uart_->save(), saved);
  EXPECT_EQ(uart_->port_read(0, 7, 1), 0x5au);
  EXPECT_EQ(uart_->port_read(0, 2, 1) & 0x0f, 0x04u);  // IIR: received data
  EXPECT_EQ(uart_->port_read(0, 0, 1), static_cast<std::uint32_t>('y'));
  EXPECT_EQ(uart_->port_read(0, 0, 1), static_cast<std::uint32_t>('z'));
  uart_->port_write(0, 3, 1, 0x83);
  EXPECT_EQ(uart_->port_read(0, 0, 1), 0x03u);  // the divisor came back too
}

TEST_F(Com1Interrupts, NoInterruptWithoutEnable) {
  send("z");
  uart_->pump_input();
  EXPECT_EQ(uart_->port_read(0, 5, 1) & 0x01, 0x01u);  // LSR: data ready, polled
  EXPECT_TRUE(levels_.empty());
  EXPECT_FALSE(uart_->can_interrupt());
}

std::uint32_t u32(const std::vector<std::uint8_t>& bytes, std::size_t at) {
  std::uint32_t value;
  std::memcpy(&value, bytes.data() + at, sizeof value);
  return value;
}

std::uint64_t u64(const std::vector<std::uint8_t>& bytes, std::size_t at) {
  std::uint64_t value;
  std::memcpy(&value, bytes.data() + at, sizeof value);
  return value;
}

// Follows the tables as a guest does, by address relative to `base`.
struct AcpiView {
  std::uint64_t base;
  const std::vector<std::uint8_t>& bytes;
  std::size_t at(std::uint64_t address) const { return static_cast<std::size_t>(address - base); }
  std::span<const std::uint8_t> table(std::uint64_t address) const {
    return {bytes.data() + at(address), u32(bytes, at(address) + 4)};
  }
};

TEST(AcpiTables, RsdpChecksumsAndPointers) {
  constexpr std::uint64_t kBase = 0xe0000;
  const auto bytes = build_acpi_tables(kBase, 1);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes.data()), 8), "RSD PTR ");
  EXPECT_EQ(acpi_sum({bytes.data(), 20}), 0);
  EXPECT_EQ(acpi_sum({bytes.data(), 36}), 0);
  EXPECT_EQ(bytes[15], 2);
  EXPECT_EQ(u32(bytes, 20), 36u);
  const AcpiView view{kBase, bytes};
  const auto rsdt = view.table(u32(bytes, 16));
  const auto xsdt = view.table(u64(bytes, 24));
  EXPECT_EQ(acpi_sum(rsdt), 0);
  EXPECT_EQ(acpi_sum(xsdt), 0);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(xsdt.data()), 4), "XSDT");
  ASSERT_EQ(xsdt.size(), 36u + 2 * 8);
  std::vector<std::string> listed;
  for (std::size_t i = 0; i < 2; ++i) {
    std::uint64_t address;
    std::memcpy(&address, xsdt.data() + 36 + 8 * i, 8);
    EXPECT_EQ(u32({rsdt.begin(), rsdt.end()}, 36 + 4 * i), address);
    const auto table = view.table(address);
    EXPECT_EQ(acpi_sum(table), 0);
    listed.emplace_back(reinterpret_cast<const char*>(table.data()), 4);
  }
  EXPECT_EQ(listed, (std::vector<std::string>{"FACP", "APIC"}));
}

TEST(AcpiTables, FadtIsHardwareReducedWithAValidDsdt) {
  constexpr std::uint64_t kBase = 0xe0000;
  const auto bytes = build_acpi_tables(kBase, 1);
  const AcpiView view{kBase, bytes};
  std::uint64_t fadt_address;
  std::memcpy(&fadt_address, bytes.data() + view.at(u64(bytes, 24)) + 36, 8);
  const auto fadt = view.table(fadt_address);
  ASSERT_EQ(fadt.size(), 276u);
  std::uint32_t flags;
  std::memcpy(&flags, fadt.data() + 112, 4);
  EXPECT_NE(flags & (1u << 20), 0u);  // HW_REDUCED_ACPI
  std::uint64_t dsdt_address;
  std::memcpy(&dsdt_address, fadt.data() + 140, 8);
  const auto dsdt = view.table(dsdt_address);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(dsdt.data()), 4), "DSDT");
  EXPECT_EQ(acpi_sum(dsdt), 0);
}

TEST(AcpiTables, MadtListsEveryCpuTheIoapicAndTheTimerOverride) {
  constexpr std::uint64_t kBase = 0xe0000;
  const auto bytes = build_acpi_tables(kBase, 2);
  const AcpiView view{kBase, bytes};
  std::uint64_t madt_address;
  std::memcpy(&madt_address, bytes.data() + view.at(u64(bytes, 24)) + 36 + 8, 8);
  const auto madt = view.table(madt_address);
  ASSERT_EQ(acpi_sum(madt), 0);
  const std::vector<std::uint8_t> m(madt.begin(), madt.end());
  EXPECT_EQ(u32(m, 36), 0xfee00000u);
  EXPECT_EQ(u32(m, 40), 1u);  // PCAT_COMPAT
  std::vector<std::string> entries;
  for (std::size_t at = 44; at < m.size(); at += m[at + 1]) {
    ASSERT_GE(m[at + 1], 2);
    switch (m[at]) {
      case 0:
        entries.push_back("lapic " + std::to_string(m[at + 2]) + " " + std::to_string(m[at + 3]) +
                          " " + std::to_string(u32(m, at + 4)));
        break;
      case 1:
        entries.push_back("ioapic " + std::to_string(m[at + 2]) + " " +
                          std::to_string(u32(m, at + 4)) + " " + std::to_string(u32(m, at + 8)));
        break;
      case 2:
        entries.push_back("override " + std::to_string(m[at + 3]) + "->" +
                          std::to_string(u32(m, at + 4)));
        break;
      case 4:
        entries.push_back("nmi lint" + std::to_string(m[at + 5]));
        break;
      default:
        entries.push_back("type " + std::to_string(m[at]));
    }
  }
  EXPECT_EQ(entries,
            (std::vector<std::string>{"lapic 0 0 1", "lapic 1 1 1", "ioapic 0 4273995776 0",
                                      "override 0->2", "nmi lint1"}));
}

TEST(AcpiTables, FitInTheLegacyScanArea) {
  const auto bytes = build_acpi_tables(0xe0000, 255);
  EXPECT_LT(0xe0000 + bytes.size(), 0x100000u);
  EXPECT_THROW(build_acpi_tables(0xe0000, 0), std::invalid_argument);
}

}  // namespace
}  // namespace drvm::vmm

/* acpi.elf: finds the ACPI RSDP (PVH start_info.rsdp_paddr, else the legacy scan of
 * 0xE0000-0xFFFFF), checks every checksum on the way, follows the XSDT (or the RSDT) to the MADT
 * and prints its local APIC, I/O APIC and local APIC NMI entries. */
#include "guestfw/guestfw.h"

struct acpi_header {
  char signature[4];
  uint32_t length;
  uint8_t revision;
  uint8_t checksum;
  char oem_id[6];
  char oem_table_id[8];
  uint32_t oem_revision;
  uint32_t creator_id;
  uint32_t creator_revision;
} __attribute__((packed));

struct acpi_rsdp {
  char signature[8];
  uint8_t checksum;
  char oem_id[6];
  uint8_t revision;
  uint32_t rsdt_address;
  uint32_t length;
  uint64_t xsdt_address;
  uint8_t extended_checksum;
  uint8_t reserved[3];
} __attribute__((packed));

static bool sums_to_zero(const void* data, size_t length) {
  uint8_t sum = 0;
  for (size_t i = 0; i < length; ++i) sum = (uint8_t)(sum + ((const uint8_t*)data)[i]);
  return sum == 0;
}

static bool valid_rsdp(const struct acpi_rsdp* rsdp) {
  if (memcmp(rsdp->signature, "RSD PTR ", 8) != 0 || !sums_to_zero(rsdp, 20)) return false;
  return rsdp->revision < 2 || sums_to_zero(rsdp, rsdp->length);
}

static const struct acpi_rsdp* find_rsdp(void) {
  const struct hvm_start_info* info = guest_start_info();
  if (info != NULL && info->rsdp_paddr != 0) {
    const struct acpi_rsdp* rsdp = (const struct acpi_rsdp*)(uintptr_t)info->rsdp_paddr;
    if (valid_rsdp(rsdp)) return rsdp;
  }
  for (uintptr_t address = 0xe0000; address < 0x100000; address += 16) {
    const struct acpi_rsdp* rsdp = (const struct acpi_rsdp*)address;
    if (valid_rsdp(rsdp)) return rsdp;
  }
  return NULL;
}

static const struct acpi_header* find_table(const struct acpi_rsdp* rsdp, const char* signature) {
  const bool xsdt = rsdp->revision >= 2 && rsdp->xsdt_address != 0;
  const struct acpi_header* root =
      (const struct acpi_header*)(uintptr_t)(xsdt ? rsdp->xsdt_address : rsdp->rsdt_address);
  if (!sums_to_zero(root, root->length)) {
    guest_printf("acpi.elf: bad %.4s checksum\n", root->signature);
    return NULL;
  }
  const size_t entry_size = xsdt ? 8 : 4;
  const size_t count = (root->length - sizeof *root) / entry_size;
  const uint8_t* entries = (const uint8_t*)(root + 1);
  for (size_t i = 0; i < count; ++i) {
    uint64_t address = 0;
    memcpy(&address, entries + i * entry_size, entry_size);
    const struct acpi_header* table = (const struct acpi_header*)(uintptr_t)address;
    if (memcmp(table->signature, signature, 4) != 0) continue;
    if (!sums_to_zero(table, table->length)) {
      guest_printf("acpi.elf: bad %.4s checksum\n", signature);
      return NULL;
    }
    return table;
  }
  return NULL;
}

static uint32_t read32(const uint8_t* at) {
  uint32_t value;
  memcpy(&value, at, sizeof value);
  return value;
}

static uint16_t read16(const uint8_t* at) {
  uint16_t value;
  memcpy(&value, at, sizeof value);
  return value;
}

int guest_main(void) {
  const struct acpi_rsdp* rsdp = find_rsdp();
  if (rsdp == NULL) {
    guest_printf("acpi.elf: no RSDP\n");
    return GUESTFW_EXIT_TEST_FAILURE;
  }
  guest_printf("acpi.elf: RSDP revision %u, checksums good\n", rsdp->revision);
  const struct acpi_header* fadt = find_table(rsdp, "FACP");
  guest_printf("acpi.elf: FADT %s\n", fadt != NULL ? "present" : "absent");
  const struct acpi_header* madt = find_table(rsdp, "APIC");
  if (madt == NULL) {
    guest_printf("acpi.elf: no MADT\n");
    return GUESTFW_EXIT_TEST_FAILURE;
  }
  const uint8_t* base = (const uint8_t*)madt;
  guest_printf("MADT: local APIC address 0x%x\n", read32(base + 36));
  for (uint32_t at = 44; at + 2 <= madt->length && base[at + 1] >= 2; at += base[at + 1]) {
    const uint8_t* entry = base + at;
    switch (entry[0]) {
      case 0:
        guest_printf("MADT: local APIC: processor %u, APIC ID %u, flags 0x%x\n", entry[2], entry[3],
                     read32(entry + 4));
        break;
      case 1:
        guest_printf("MADT: I/O APIC: ID %u, address 0x%x, GSI base %u\n", entry[2],
                     read32(entry + 4), read32(entry + 8));
        break;
      case 2:
        /* Not printed: QEMU's PC machine lists IRQ 0 -> GSI 2 (as drvm does), microvm lists
         * nothing although its I/O APIC wires IRQ 0 to pin 2 all the same. */
        break;
      case 4:
        guest_printf("MADT: local APIC NMI: processor 0x%x, flags 0x%x, LINT%u\n", entry[2],
                     read16(entry + 3), entry[5]);
        break;
      default:
        guest_printf("MADT: entry type %u\n", entry[0]);
        break;
    }
  }
  return GUESTFW_EXIT_SUCCESS;
}

/* acpi.elf: finds the ACPI RSDP (PVH start_info.rsdp_paddr, else the legacy scan of
 * 0xE0000-0xFFFFF), checks every checksum on the way, follows the XSDT (or the RSDT) to the MADT
 * and prints its local APIC, I/O APIC and local APIC NMI entries. */
#include "guestfw/acpi.h"
#include "guestfw/guestfw.h"

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
  const struct acpi_rsdp* rsdp = guest_acpi_rsdp();
  if (rsdp == NULL) {
    guest_printf("acpi.elf: no RSDP\n");
    return GUESTFW_EXIT_TEST_FAILURE;
  }
  guest_printf("acpi.elf: RSDP revision %u, checksums good\n", rsdp->revision);
  const struct acpi_header* fadt = guest_acpi_table(rsdp, "FACP");
  guest_printf("acpi.elf: FADT %s\n", fadt != NULL ? "present" : "absent");
  const struct acpi_header* madt = guest_acpi_table(rsdp, "APIC");
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

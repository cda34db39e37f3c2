/* Finding the RSDP and the ACPI tables (guestfw/acpi.h). */
#include "guestfw/acpi.h"

#include "guestfw/format.h"
#include "guestfw/start_info.h"
#include "guestfw/string.h"

static bool sums_to_zero(const void* data, size_t length) {
  uint8_t sum = 0;
  for (size_t i = 0; i < length; ++i) sum = (uint8_t)(sum + ((const uint8_t*)data)[i]);
  return sum == 0;
}

static bool valid_rsdp(const struct acpi_rsdp* rsdp) {
  if (memcmp(rsdp->signature, "RSD PTR ", 8) != 0 || !sums_to_zero(rsdp, 20)) return false;
  return rsdp->revision < 2 || sums_to_zero(rsdp, rsdp->length);
}

const struct acpi_rsdp* guest_acpi_rsdp(void) {
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

const struct acpi_header* guest_acpi_table(const struct acpi_rsdp* rsdp, const char* signature) {
  const bool xsdt = rsdp->revision >= 2 && rsdp->xsdt_address != 0;
  const struct acpi_header* root =
      (const struct acpi_header*)(uintptr_t)(xsdt ? rsdp->xsdt_address : rsdp->rsdt_address);
  if (!sums_to_zero(root, root->length)) {
    guest_printf("guestfw: acpi: bad %.4s checksum\n", root->signature);
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
      guest_printf("guestfw: acpi: bad %.4s checksum\n", signature);
      return NULL;
    }
    return table;
  }
  return NULL;
}

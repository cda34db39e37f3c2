/* The ACPI tables a PVH loader provides: the RSDP (PVH start_info.rsdp_paddr, else the legacy
 * scan of 0xE0000-0xFFFFF) and the tables the XSDT (or the RSDT) lists, each checksum checked. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

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

/* The RSDP with good checksums, or NULL. */
const struct acpi_rsdp* guest_acpi_rsdp(void);

/* The table with this signature ("APIC", "FACP", ...) through rsdp's XSDT (or RSDT), or NULL when
 * absent; a bad checksum prints a line naming the table and gives NULL. */
const struct acpi_header* guest_acpi_table(const struct acpi_rsdp* rsdp, const char* signature);

/* The PVH boot information (xen/include/public/arch-x86/hvm/start_info.h layout) and the command
 * line, memory map and modules it carries. Under Multiboot guestfw builds the same structure from
 * the Multiboot information (multiboot.h): the command line without its first word (the kernel's
 * name, which Multiboot loaders put first), the memory map and the modules with their strings. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HVM_START_MAGIC_VALUE 0x336ec578

struct hvm_start_info {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  /* version >= 1 */
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};

#define HVM_MEMMAP_TYPE_RAM 1

struct hvm_memmap_table_entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};

struct hvm_modlist_entry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};

/* The start_info the VMM passed (or guestfw built from the Multiboot information), or NULL (ELF64
 * boot, or a bad magic). */
const struct hvm_start_info* guest_start_info(void);
/* The memory map entries (count in *count), or NULL when there is none. */
const struct hvm_memmap_table_entry* guest_memmap(uint32_t* count);
/* The boot modules (count in *count), or NULL when there are none. */
const struct hvm_modlist_entry* guest_modules(uint32_t* count);
/* A module's command line ("" when it has none). */
const char* guest_module_cmdline(const struct hvm_modlist_entry* module);
/* The command line; "" when there is none. */
const char* guest_cmdline(void);
/* Finds "key=value" among the space-separated words of the command line and copies value into
 * buffer (truncated to size - 1 characters). Returns false when key is absent. */
bool guest_cmdline_option(const char* key, char* buffer, size_t size);
/* The decimal number of "key=N" (its leading digits; 0 when there are none), or fallback when key
 * is absent. */
uint64_t guest_cmdline_number(const char* key, uint64_t fallback);

/* The Multiboot (v1) information a Multiboot loader passes (Multiboot 0.6.96, section 3.3). guestfw
 * turns it into the PVH-style interface of start_info.h (command line, memory map, modules), so
 * images read both boot protocols the same way; images that test the loader read it here. */
#pragma once

#include <stdint.h>

#define MULTIBOOT_BOOT_MAGIC 0x2badb002

#define MULTIBOOT_INFO_MEMORY (1u << 0)
#define MULTIBOOT_INFO_BOOT_DEVICE (1u << 1)
#define MULTIBOOT_INFO_CMDLINE (1u << 2)
#define MULTIBOOT_INFO_MODULES (1u << 3)
#define MULTIBOOT_INFO_MMAP (1u << 6)
#define MULTIBOOT_INFO_LOADER_NAME (1u << 9)

struct multiboot_info {
  uint32_t flags;
  uint32_t mem_lower;
  uint32_t mem_upper;
  uint32_t boot_device;
  uint32_t cmdline;
  uint32_t mods_count;
  uint32_t mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length;
  uint32_t mmap_addr;
  uint32_t drives_length;
  uint32_t drives_addr;
  uint32_t config_table;
  uint32_t boot_loader_name;
  uint32_t apm_table;
  uint32_t vbe[4];
};

/* size counts the bytes after itself: the next entry is at (char*)entry + size + 4. */
struct __attribute__((packed)) multiboot_mmap_entry {
  uint32_t size;
  uint64_t addr;
  uint64_t len;
  uint32_t type;
};

struct multiboot_module {
  uint32_t mod_start;
  uint32_t mod_end;
  uint32_t string;
  uint32_t reserved;
};

/* The information the loader passed, or NULL when the image was not booted by Multiboot. */
const struct multiboot_info* guest_multiboot_info(void);

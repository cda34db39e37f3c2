/* bootinfo.elf / bootinfo.mb.elf / bootinfo.aout.bin: prints what the loader passed, field by
 * field, so tests can check each one: the command line, the modules (address range, string, size,
 * FNV-1a checksum and first bytes), the memory map, and under Multiboot the raw information (flags,
 * mem_lower/mem_upper, boot device, command line, boot loader name, memory map entries).
 * Command line option only=modules prints the protocol, the command line and the modules alone:
 * what QEMU and drvm pass alike (tests/guestfw compares the two). */
#include "guestfw/guestfw.h"

static uint32_t fnv1a(const uint8_t* bytes, uint64_t size) {
  uint32_t hash = 2166136261u;
  for (uint64_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 16777619u;
  return hash;
}

/* Up to 8 bytes in hex: enough to see which file a module came from. */
static void print_first_bytes(const uint8_t* bytes, uint64_t size) {
  guest_printf(" first");
  for (uint64_t i = 0; i < size && i < 8; ++i) guest_printf(" %02x", bytes[i]);
}

static void print_modules(void) {
  uint32_t count;
  const struct hvm_modlist_entry* modules = guest_modules(&count);
  guest_printf("modules: %u\n", count);
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* bytes = (const uint8_t*)modules[i].paddr;
    guest_printf("module %u: %#llx-%#llx size %llu string \"%s\" fnv1a %08x", i,
                 (unsigned long long)modules[i].paddr,
                 (unsigned long long)(modules[i].paddr + modules[i].size),
                 (unsigned long long)modules[i].size, guest_module_cmdline(&modules[i]),
                 fnv1a(bytes, modules[i].size));
    print_first_bytes(bytes, modules[i].size);
    guest_printf("%s\n", modules[i].paddr % 4096 == 0 ? " aligned" : " UNALIGNED");
  }
}

static void print_memmap(void) {
  uint32_t count;
  const struct hvm_memmap_table_entry* map = guest_memmap(&count);
  guest_printf("memmap: %u entries\n", count);
  for (uint32_t i = 0; i < count; ++i) {
    guest_printf("memmap %u: %#llx-%#llx type %u\n", i, (unsigned long long)map[i].addr,
                 (unsigned long long)(map[i].addr + map[i].size), map[i].type);
  }
}

static void print_multiboot(const struct multiboot_info* info) {
  guest_printf("multiboot info at %p\n", (const void*)info);
  guest_printf("multiboot flags %#x\n", info->flags);
  if (info->flags & MULTIBOOT_INFO_MEMORY) {
    guest_printf("multiboot mem_lower %u KiB mem_upper %u KiB\n", info->mem_lower, info->mem_upper);
  }
  if (info->flags & MULTIBOOT_INFO_BOOT_DEVICE) {
    guest_printf("multiboot boot_device %#x\n", info->boot_device);
  }
  if (info->flags & MULTIBOOT_INFO_CMDLINE) {
    guest_printf("multiboot cmdline \"%s\"\n", (const char*)(uint64_t)info->cmdline);
  }
  if (info->flags & MULTIBOOT_INFO_LOADER_NAME) {
    guest_printf("multiboot boot_loader_name \"%s\"\n",
                 (const char*)(uint64_t)info->boot_loader_name);
  }
  if (info->flags & MULTIBOOT_INFO_MODULES) {
    guest_printf("multiboot mods_count %u\n", info->mods_count);
  }
  if (info->flags & MULTIBOOT_INFO_MMAP) {
    guest_printf("multiboot mmap_length %u\n", info->mmap_length);
    uint64_t at = info->mmap_addr;
    while (at < (uint64_t)info->mmap_addr + info->mmap_length) {
      const struct multiboot_mmap_entry* entry = (const struct multiboot_mmap_entry*)at;
      guest_printf("multiboot mmap size %u %#llx-%#llx type %u\n", entry->size,
                   (unsigned long long)entry->addr, (unsigned long long)(entry->addr + entry->len),
                   entry->type);
      at += entry->size + 4;
    }
  }
}

int guest_main(void) {
  const struct multiboot_info* multiboot = guest_multiboot_info();
  guest_printf("bootinfo: %s\n", multiboot != NULL ? "multiboot" : "pvh");
  guest_printf("cmdline: %s\n", guest_cmdline());
  print_modules();
  char only[16];
  if (guest_cmdline_option("only", only, sizeof only) && strcmp(only, "modules") == 0) {
    return GUESTFW_EXIT_SUCCESS;
  }
  print_memmap();
  if (multiboot != NULL) print_multiboot(multiboot);
  return GUESTFW_EXIT_SUCCESS;
}

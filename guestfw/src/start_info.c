/* Access to the boot information: PVH's start_info, or the Multiboot information translated into
 * one. Physical addresses are usable as pointers: guestfw identity-maps the first 4 GiB, where
 * VMMs place these structures. */
#include "guestfw/start_info.h"

#include "guestfw/multiboot.h"
#include "guestfw/string.h"
#include "start_info_internal.h"

/* Room for what a VMM reports; more entries or modules than this are dropped. */
#define MULTIBOOT_MAX_MEMMAP 32
#define MULTIBOOT_MAX_MODULES 32

static const struct hvm_start_info* start_info;
static const struct multiboot_info* multiboot_info;
/* The start_info built from the Multiboot information. */
static struct hvm_start_info translated_info;
static struct hvm_memmap_table_entry translated_memmap[MULTIBOOT_MAX_MEMMAP];
static struct hvm_modlist_entry translated_modules[MULTIBOOT_MAX_MODULES];

/* Multiboot loaders put the kernel's name first on its command line: the rest is the image's. */
static const char* skip_first_word(const char* cmdline) {
  while (*cmdline == ' ') ++cmdline;
  while (*cmdline != '\0' && *cmdline != ' ') ++cmdline;
  while (*cmdline == ' ') ++cmdline;
  return cmdline;
}

static void translate_multiboot(const struct multiboot_info* info) {
  struct hvm_start_info* out = &translated_info;
  out->magic = HVM_START_MAGIC_VALUE;
  out->version = 1;
  if ((info->flags & MULTIBOOT_INFO_CMDLINE) && info->cmdline != 0) {
    out->cmdline_paddr = (uint64_t)skip_first_word((const char*)(uint64_t)info->cmdline);
  }
  if (info->flags & MULTIBOOT_INFO_MMAP) {
    uint32_t count = 0;
    uint64_t at = info->mmap_addr;
    const uint64_t end = at + info->mmap_length;
    while (at < end && count < MULTIBOOT_MAX_MEMMAP) {
      const struct multiboot_mmap_entry* entry = (const struct multiboot_mmap_entry*)at;
      translated_memmap[count].addr = entry->addr;
      translated_memmap[count].size = entry->len;
      translated_memmap[count].type = entry->type;
      ++count;
      at += entry->size + 4;
    }
    out->memmap_paddr = (uint64_t)translated_memmap;
    out->memmap_entries = count;
  }
  if ((info->flags & MULTIBOOT_INFO_MODULES) && info->mods_count != 0) {
    const struct multiboot_module* modules =
        (const struct multiboot_module*)(uint64_t)info->mods_addr;
    uint32_t count = info->mods_count;
    if (count > MULTIBOOT_MAX_MODULES) count = MULTIBOOT_MAX_MODULES;
    for (uint32_t i = 0; i < count; ++i) {
      translated_modules[i].paddr = modules[i].mod_start;
      translated_modules[i].size = modules[i].mod_end - modules[i].mod_start;
      translated_modules[i].cmdline_paddr = modules[i].string;
    }
    out->nr_modules = count;
    out->modlist_paddr = (uint64_t)translated_modules;
  }
  start_info = out;
}

void guestfw_start_info_init(uint64_t paddr, uint32_t protocol) {
  if (paddr == 0) return;
  if (protocol == GUESTFW_BOOT_MULTIBOOT) {
    multiboot_info = (const struct multiboot_info*)paddr;
    translate_multiboot(multiboot_info);
    return;
  }
  const struct hvm_start_info* candidate = (const struct hvm_start_info*)paddr;
  if (candidate->magic == HVM_START_MAGIC_VALUE) start_info = candidate;
}

const struct hvm_start_info* guest_start_info(void) {
  return start_info;
}

const struct multiboot_info* guest_multiboot_info(void) {
  return multiboot_info;
}

const struct hvm_memmap_table_entry* guest_memmap(uint32_t* count) {
  *count = 0;
  if (start_info == NULL || start_info->version < 1 || start_info->memmap_paddr == 0) return NULL;
  *count = start_info->memmap_entries;
  return (const struct hvm_memmap_table_entry*)start_info->memmap_paddr;
}

const struct hvm_modlist_entry* guest_modules(uint32_t* count) {
  *count = 0;
  if (start_info == NULL || start_info->nr_modules == 0 || start_info->modlist_paddr == 0) {
    return NULL;
  }
  *count = start_info->nr_modules;
  return (const struct hvm_modlist_entry*)start_info->modlist_paddr;
}

const char* guest_module_cmdline(const struct hvm_modlist_entry* module) {
  return module->cmdline_paddr == 0 ? "" : (const char*)module->cmdline_paddr;
}

const char* guest_cmdline(void) {
  if (start_info == NULL || start_info->cmdline_paddr == 0) return "";
  return (const char*)start_info->cmdline_paddr;
}

bool guest_cmdline_option(const char* key, char* buffer, size_t size) {
  const size_t key_length = strlen(key);
  const char* word = guest_cmdline();
  while (*word != '\0') {
    while (*word == ' ') ++word;
    size_t word_length = 0;
    while (word[word_length] != '\0' && word[word_length] != ' ') ++word_length;
    if (word_length > key_length && strncmp(word, key, key_length) == 0 &&
        word[key_length] == '=') {
      const char* value = word + key_length + 1;
      size_t value_length = word_length - key_length - 1;
      if (size == 0) return true;
      if (value_length > size - 1) value_length = size - 1;
      memcpy(buffer, value, value_length);
      buffer[value_length] = '\0';
      return true;
    }
    word += word_length;
  }
  return false;
}

uint64_t guest_cmdline_number(const char* key, uint64_t fallback) {
  char text[24];
  if (!guest_cmdline_option(key, text, sizeof text)) return fallback;
  uint64_t value = 0;
  for (const char* c = text; *c >= '0' && *c <= '9'; ++c) value = value * 10 + (uint64_t)(*c - '0');
  return value;
}

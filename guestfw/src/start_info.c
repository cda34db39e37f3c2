/* Access to the PVH start_info. Physical addresses are usable as pointers: guestfw identity-maps
 * the first 4 GiB, where VMMs place these structures. */
#include "guestfw/start_info.h"

#include "guestfw/string.h"
#include "start_info_internal.h"

static const struct hvm_start_info* start_info;

void guestfw_start_info_init(uint64_t paddr) {
  const struct hvm_start_info* candidate = (const struct hvm_start_info*)paddr;
  if (candidate != NULL && candidate->magic == HVM_START_MAGIC_VALUE) start_info = candidate;
}

const struct hvm_start_info* guest_start_info(void) {
  return start_info;
}

const struct hvm_memmap_table_entry* guest_memmap(uint32_t* count) {
  *count = 0;
  if (start_info == NULL || start_info->version < 1 || start_info->memmap_paddr == 0) return NULL;
  *count = start_info->memmap_entries;
  return (const struct hvm_memmap_table_entry*)start_info->memmap_paddr;
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

/* selftest.elf, boot: the state guestfw's entry code promises. */
#include "guestfw/boot_state.h"
#include "guestfw/guestfw.h"
#include "guestfw/test.h"

GUEST_TEST(boot_long_mode_active) {
  const uint64_t efer = rdmsr(GUESTFW_MSR_EFER);
  GUEST_ASSERT_EQ(efer & (X86_EFER_LME | X86_EFER_LMA), X86_EFER_LME | X86_EFER_LMA);
  GUEST_ASSERT_EQ(read_cr0(), GUESTFW_CR0);
  GUEST_ASSERT_EQ(read_cr4(), GUESTFW_CR4);
  GUEST_ASSERT_EQ(read_cs(), GUESTFW_CODE_SELECTOR);
  GUEST_ASSERT_EQ(read_ss(), GUESTFW_DATA_SELECTOR);
  GUEST_ASSERT_EQ(read_rflags() & X86_RFLAGS_IF, 0);
}

GUEST_TEST(boot_identity_page_tables) {
  extern char guestfw_pml4[];
  GUEST_ASSERT_EQ(read_cr3(), (uint64_t)guestfw_pml4);
  GUEST_ASSERT_EQ((uint64_t)__image_start, 0x100000);
  /* Walk the tables: 0-4 GiB mapped 1:1 with 2 MiB pages, nothing above. */
  const uint64_t address_bits = 0x000ffffffffff000ULL;
  const uint64_t* pml4 = (const uint64_t*)read_cr3();
  GUEST_ASSERT_EQ(pml4[0] & 0x3, 0x3);
  const uint64_t* pdpt = (const uint64_t*)(pml4[0] & address_bits);
  for (int i = 0; i < 4; ++i) GUEST_ASSERT_EQ(pdpt[i] & 0x83, 0x3);
  GUEST_ASSERT_EQ(pdpt[4], 0);
  const uint64_t* last_pd = (const uint64_t*)(pdpt[3] & address_bits);
  GUEST_ASSERT_EQ(last_pd[511] & 0xfffffffffff0009fULL, 0xffe00083ULL); /* ignore A, D */
  const uint64_t* first_pd = (const uint64_t*)(pdpt[0] & address_bits);
  GUEST_ASSERT_EQ(first_pd[0] & 0xfffffffffff0009fULL, 0x83ULL);
}

static __attribute__((noinline)) uint64_t sum_with_stack_frames(uint64_t depth) {
  volatile uint64_t local[8];
  for (int i = 0; i < 8; ++i) local[i] = depth + (uint64_t)i;
  if (depth == 0) return local[0];
  return local[7] + sum_with_stack_frames(depth - 1);
}

GUEST_TEST(boot_stack_works) {
  const uint64_t rsp = read_rsp();
  GUEST_ASSERT_TRUE(rsp > (uint64_t)__stack_bottom && rsp <= (uint64_t)__stack_top);
  /* Each level adds depth + 7: 32 levels of frames exercise push, call and ret. */
  GUEST_ASSERT_EQ(sum_with_stack_frames(32), 32 * 33 / 2 + 32 * 7);
}

static uint64_t zeroed_by_boot[16];
static uint64_t initialized_data = 0x0123456789abcdefULL;

GUEST_TEST(boot_bss_zeroed_and_data_loaded) {
  GUEST_ASSERT_TRUE((char*)zeroed_by_boot >= __bss_start &&
                    (char*)(zeroed_by_boot + 16) <= __bss_end);
  for (int i = 0; i < 16; ++i) GUEST_ASSERT_EQ(zeroed_by_boot[i], 0);
  GUEST_ASSERT_EQ(initialized_data, 0x0123456789abcdefULL);
}

GUEST_TEST(boot_start_info_magic) {
  const struct hvm_start_info* info = guest_start_info();
  GUEST_ASSERT_TRUE(info != NULL);
  GUEST_ASSERT_EQ(info->magic, HVM_START_MAGIC_VALUE);
  GUEST_ASSERT_TRUE(info->version >= 1);
  /* Boot structures live below the image, where the VMM put them (under Multiboot guestfw builds
   * the start_info from the Multiboot information, which the loader put there). */
  const struct multiboot_info* multiboot = guest_multiboot_info();
  GUEST_ASSERT_TRUE((uint64_t)(multiboot != NULL ? (const void*)multiboot : (const void*)info) <
                    (uint64_t)__image_start);
}

GUEST_TEST(boot_memmap_covers_image) {
  uint32_t count;
  const struct hvm_memmap_table_entry* map = guest_memmap(&count);
  GUEST_ASSERT_TRUE(map != NULL);
  GUEST_ASSERT_TRUE(count > 0 && count < 128);
  /* (QEMU 7.2 appends an all-zero entry, so empty entries are not an error.) */
  bool image_in_ram = false;
  for (uint32_t i = 0; i < count; ++i) {
    if (map[i].type == HVM_MEMMAP_TYPE_RAM && map[i].addr <= (uint64_t)__image_start &&
        map[i].addr + map[i].size >= (uint64_t)__image_end) {
      image_in_ram = true;
    }
  }
  GUEST_ASSERT_TRUE(image_in_ram);
}

GUEST_TEST(boot_cmdline_readable) {
  const char* cmdline = guest_cmdline();
  GUEST_ASSERT_TRUE(cmdline != NULL);
  GUEST_ASSERT_TRUE(strlen(cmdline) < 4096);
  char value[8];
  GUEST_ASSERT_TRUE(!guest_cmdline_option("no-such-option", value, sizeof value));
  GUEST_ASSERT_EQ(guest_cmdline_number("no-such-option", 7), 7);
}

GUEST_TEST(serial_transmitter_ready) {
  GUEST_ASSERT_EQ(inb(GUESTFW_COM1 + 5) & 0x20, 0x20); /* LSR: THR empty */
}

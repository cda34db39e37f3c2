/* debugwork.elf: the guest side of drvm's debug-register virtualization tests (tests/debug).
 *
 * Without a "work=" option it runs test cases that use the guest's own debug registers (read-back,
 * data and instruction breakpoints, RF, GD, TF, INT3) and check what the SDM says the guest sees.
 * With "work=NAME" it runs one workload whose memory accesses the host watches and counts. */
#include "guestfw/guestfw.h"
#include "guestfw/test.h"

#define PAGE 4096
#define DR7_L(n) (1ull << (2 * (n)))
#define DR7_RW(n, rw) ((uint64_t)(rw) << (16 + 4 * (n)))
#define DR7_LEN(n, len) ((uint64_t)(len) << (18 + 4 * (n)))
#define DR7_GD (1ull << 13)
#define RW_EXEC 0
#define RW_WRITE 1
#define RW_RDWR 3
#define DR6_BD (1ull << 13)
#define DR6_BS (1ull << 14)

/* Pages of their own, so page-protection engines touch nothing else; initialised, so that the
 * boot code's clearing of .bss does not touch them. */
__attribute__((aligned(PAGE))) volatile uint8_t watched[2 * PAGE] = {1};
__attribute__((aligned(PAGE))) volatile uint64_t host_write_target = 1;
__attribute__((aligned(PAGE))) volatile uint64_t host_read_target = 1;
__attribute__((aligned(PAGE))) volatile uint8_t host_block[PAGE] = {1};

static volatile unsigned db_count;
static volatile uint64_t db_dr6;
static volatile uint64_t db_rip;

static bool on_db(struct guest_frame* frame) {
  db_count++;
  db_dr6 = read_dr6();
  db_rip = frame->rip;
  write_dr6(0);
  frame->rflags |= X86_RFLAGS_RF; /* instruction breakpoints: run the instruction this time */
  frame->rflags &= ~X86_RFLAGS_TF;
  return true;
}

static void arm(unsigned slot, const volatile void* address, unsigned rw, unsigned len_bits) {
  switch (slot) {
    case 0:
      write_dr0((uint64_t)address);
      break;
    case 1:
      write_dr1((uint64_t)address);
      break;
    case 2:
      write_dr2((uint64_t)address);
      break;
    default:
      write_dr3((uint64_t)address);
      break;
  }
  write_dr7(read_dr7() | DR7_L(slot) | DR7_RW(slot, rw) | DR7_LEN(slot, len_bits));
}

static void reset_debug(void) {
  write_dr7(0);
  write_dr6(0);
  db_count = 0;
  db_dr6 = 0;
  db_rip = 0;
  guest_set_exception_handler(X86_VECTOR_DB, on_db);
}

GUEST_TEST(readback_every_register) {
  reset_debug();
  write_dr0(0x1111000);
  write_dr1(0xffff800000002222ull);
  write_dr2(0x3333);
  write_dr3(0x4444);
  /* Active-low bits 11 and 16 written as 1: they read 1 with or without RTM and bus-lock detection
   * (where those make them writable). */
  write_dr6(0x1080f);
  write_dr7(0x0f0000a0ull);
  guest_printf("dr0=%lx dr1=%lx dr2=%lx dr3=%lx dr6=%lx dr7=%lx\n", read_dr0(), read_dr1(),
               read_dr2(), read_dr3(), read_dr6(), read_dr7());
  GUEST_ASSERT_EQ(read_dr0(), 0x1111000);
  GUEST_ASSERT_EQ(read_dr1(), 0xffff800000002222ull);
  GUEST_ASSERT_EQ(read_dr2(), 0x3333);
  GUEST_ASSERT_EQ(read_dr3(), 0x4444);
  GUEST_ASSERT_EQ(read_dr6(), 0xffff0fffull);
  GUEST_ASSERT_EQ(read_dr7(), 0x0f0004a0ull);
  uint64_t dr4, dr5;
  __asm__ volatile("mov %%db4, %0" : "=r"(dr4)); /* CR4.DE = 0: DR4/DR5 alias DR6/DR7 */
  __asm__ volatile("mov %%db5, %0" : "=r"(dr5));
  GUEST_ASSERT_EQ(dr4, 0xffff0fffull);
  GUEST_ASSERT_EQ(dr5, 0x0f0004a0ull);
  write_dr6(0x10800);
  GUEST_ASSERT_EQ(read_dr6(), 0xffff0ff0ull);
  write_dr7(0);
  GUEST_ASSERT_EQ(read_dr7(), 0x400);
}

GUEST_TEST(write_watch_every_length) {
  static const unsigned len_bits[4] = {0, 1, 3, 2}; /* 1, 2, 4, 8 bytes */
  for (unsigned i = 0; i < 4; ++i) {
    const unsigned len = 1u << i;
    reset_debug();
    arm(0, &watched[64], RW_WRITE, len_bits[i]);
    watched[64 + len] = 1; /* just past: no hit */
    (void)watched[64];     /* a read: no hit for a write watch */
    GUEST_ASSERT_EQ(db_count, 0);
    watched[64 + len - 1] = 2;
    GUEST_ASSERT_EQ(db_count, 1);
    GUEST_ASSERT_EQ(db_dr6 & 0xf, 1);
  }
  write_dr7(0);
}

GUEST_TEST(read_write_watch_sees_reads) {
  reset_debug();
  arm(1, &watched[128], RW_RDWR, 3);
  (void)*(volatile uint32_t*)&watched[128];
  GUEST_ASSERT_EQ(db_count, 1);
  GUEST_ASSERT_EQ(db_dr6 & 0xf, 2);
  write_dr7(0);
}

GUEST_TEST(straddling_access_hits) {
  reset_debug();
  arm(0, &watched[PAGE], RW_WRITE, 0);
  *(volatile uint32_t*)&watched[PAGE - 2] = 0x01020304; /* crosses into the watched byte */
  GUEST_ASSERT_EQ(db_count, 1);
  write_dr7(0);
}

GUEST_TEST(rep_stos_hits_once) {
  reset_debug();
  arm(0, &watched[200], RW_WRITE, 0);
  uint64_t count = 64;
  volatile uint8_t* destination = &watched[160];
  __asm__ volatile("rep stosb" : "+D"(destination), "+c"(count) : "a"(0x5a) : "memory");
  GUEST_ASSERT_EQ(db_count, 1);
  GUEST_ASSERT_EQ(watched[223], 0x5a);
  write_dr7(0);
}

GUEST_TEST(rep_movs_hits_once) {
  reset_debug();
  arm(2, &watched[300], RW_WRITE, 0);
  uint64_t count = 32;
  volatile uint8_t* destination = &watched[288];
  const volatile uint8_t* source = &watched[512];
  __asm__ volatile("rep movsb" : "+D"(destination), "+S"(source), "+c"(count) : : "memory");
  GUEST_ASSERT_EQ(db_count, 1);
  GUEST_ASSERT_EQ(db_dr6 & 0xf, 4);
  write_dr7(0);
}

GUEST_TEST(stack_push_hits) {
  reset_debug();
  const uint64_t slot = (read_rsp() - 64) & ~7ull;
  arm(0, (const void*)slot, RW_WRITE, 2);
  __asm__ volatile(
      "mov %%rsp, %%rbx\n\t"
      "lea 8(%0), %%rsp\n\t"
      "push %%rax\n\t"
      "mov %%rbx, %%rsp"
      :
      : "r"(slot)
      : "rbx", "memory");
  GUEST_ASSERT_EQ(db_count, 1);
  write_dr7(0);
}

GUEST_TEST(two_slots_one_exception) {
  reset_debug();
  arm(0, &watched[400], RW_WRITE, 0);
  arm(3, &watched[400], RW_RDWR, 3);
  watched[400] = 7;
  GUEST_ASSERT_EQ(db_count, 1);
  GUEST_ASSERT_EQ(db_dr6 & 0xf, 9);
  write_dr7(0);
}

__attribute__((noinline)) static int breakpoint_target(int x) {
  __asm__ volatile("");
  return x + 1;
}

GUEST_TEST(instruction_breakpoint_with_rf) {
  reset_debug();
  arm(1, (const void*)breakpoint_target, RW_EXEC, 0);
  int total = 0;
  for (int i = 0; i < 3; ++i) total += breakpoint_target(i);
  GUEST_ASSERT_EQ(total, 6);
  GUEST_ASSERT_EQ(db_count, 3);
  GUEST_ASSERT_EQ(db_rip, (uint64_t)breakpoint_target);
  GUEST_ASSERT_EQ(db_dr6 & 0xf, 2);
  write_dr7(0);
}

GUEST_TEST(general_detect_faults_before_the_mov) {
  reset_debug();
  write_dr7(DR7_GD);
  write_dr0(0x1234); /* faults with BD; the handler returns to it with GD clear */
  GUEST_ASSERT_EQ(db_count, 1);
  GUEST_ASSERT_TRUE((db_dr6 & DR6_BD) != 0);
  GUEST_ASSERT_EQ(read_dr0(), 0x1234);
  GUEST_ASSERT_EQ(read_dr7() & DR7_GD, 0);
}

GUEST_TEST(trap_flag_single_step) {
  reset_debug();
  __asm__ volatile(
      "pushfq\n\t"
      "orq $0x100, (%%rsp)\n\t"
      "popfq\n\t"
      "nop" ::
          : "memory");
  GUEST_ASSERT_EQ(db_count, 1);
  GUEST_ASSERT_TRUE((db_dr6 & DR6_BS) != 0);
}

static volatile unsigned bp_count;
static bool on_bp(struct guest_frame* frame) {
  (void)frame;
  bp_count++;
  return true;
}

GUEST_TEST(int3_reaches_the_guest) {
  bp_count = 0;
  guest_set_exception_handler(X86_VECTOR_BP, on_bp);
  __asm__ volatile("int3");
  GUEST_ASSERT_EQ(bp_count, 1);
}

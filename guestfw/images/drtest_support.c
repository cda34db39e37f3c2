/* drtest.elf: the machinery every case uses (drtest.h): debug registers by number, DR7 encoding,
 * arming, the recording #DB handler and the watched pages. */
#include <stddef.h>

#include "drtest.h"

uint8_t drtest_area[2 * DRTEST_PAGE] __attribute__((aligned(DRTEST_PAGE)));

struct drtest_config drtest_config;
struct drtest_record drtest_record;

/* What drtest_arm has put in DR7, so arming a slot needs no DR7 read. */
static uint64_t armed_dr7;

/* LENn (SDM 17.2.5): 00 = 1 byte, 01 = 2, 11 = 4, 10 = 8 (8 only in 64-bit mode). */
static uint64_t length_encoding(unsigned length) {
  switch (length) {
    case 2:
      return 1;
    case 4:
      return 3;
    case 8:
      return 2;
    default:
      return 0;
  }
}

uint64_t drtest_dr7_bits(unsigned slot, enum drtest_type type, unsigned length,
                         enum drtest_enable enable) {
  uint64_t bits = ((uint64_t)type | length_encoding(length) << 2) << (16 + 4 * slot);
  if (enable == DRTEST_LOCAL) bits |= DR7_L(slot);
  if (enable == DRTEST_GLOBAL) bits |= DR7_G(slot);
  return bits;
}

void drtest_arm(unsigned slot, const volatile void* address, enum drtest_type type, unsigned length,
                enum drtest_enable enable) {
  write_dr(slot, (uint64_t)(uintptr_t)address);
  armed_dr7 |= drtest_dr7_bits(slot, type, length, enable);
  write_dr7(armed_dr7);
}

void drtest_disarm(void) {
  write_dr7(0);
  armed_dr7 = 0;
  write_dr6(DR6_CLEAN);
}

static uint64_t read_sized(const volatile void* address, unsigned size) {
  switch (size) {
    case 0:
      return 0;
    case 1:
      return *(const volatile uint8_t*)address;
    case 2:
      return *(const volatile uint16_t*)address;
    case 4:
      return *(const volatile uint32_t*)address;
    default:
      return *(const volatile uint64_t*)address;
  }
}

/* The slots DR7 enables as instruction breakpoints (R/Wn = 00). */
static uint64_t enabled_execute_slots(uint64_t dr7) {
  uint64_t slots = 0;
  for (unsigned slot = 0; slot < 4; ++slot) {
    const bool enabled = (dr7 & (DR7_L(slot) | DR7_G(slot))) != 0;
    const bool execute = ((dr7 >> (16 + 4 * slot)) & 3) == DRTEST_EXECUTE;
    if (enabled && execute) slots |= DR6_B(slot);
  }
  return slots;
}

/* Records the #DB and cleans DR6 (the processor never clears DR6's status bits for software, SDM
 * 17.2.3). DR7 stays armed, except while reading the snapshot, which might be watched. */
static bool record_debug_exception(struct guest_frame* frame) {
  const uint64_t dr6 = read_dr6();
  write_dr6(DR6_CLEAN);
  const uint64_t dr7 = read_dr7();
  uint64_t snapshot[2] = {0, 0};
  if (drtest_config.snapshot_address != NULL) {
    const volatile uint8_t* const address = drtest_config.snapshot_address;
    const unsigned size = drtest_config.snapshot_size;
    write_dr7(0);
    snapshot[0] = read_sized(address, size > 8 ? 8 : size);
    snapshot[1] = read_sized(address + 8, size > 8 ? size - 8 : 0);
    write_dr7(dr7);
  }

  const unsigned hit = ++drtest_record.hits;
  if (hit <= DRTEST_LOG_SIZE) {
    drtest_record.log[hit - 1] = (struct drtest_hit){
        .rip = frame->rip,
        .rflags = frame->rflags,
        .rsp = frame->rsp,
        .rax = frame->rax,
        .rcx = frame->rcx,
        .rsi = frame->rsi,
        .rdi = frame->rdi,
        .dr6 = dr6,
        .stack_top = *(const uint64_t*)frame->rsp,
        .snapshot = {snapshot[0], snapshot[1]},
    };
  }

  /* SDM 17.3.1.1: RF lets the faulting instruction run once without its breakpoint refiring. Only
   * for a #DB that reports instruction breakpoints alone: a trap (data breakpoint, single step)
   * returning with RF would hide a breakpoint on the instruction it returns to. */
  const uint64_t execute_slots = enabled_execute_slots(dr7);
  const uint64_t trap_bits = (DR6_B(0) | DR6_B(1) | DR6_B(2) | DR6_B(3) | DR6_BS) & ~execute_slots;
  const bool instruction_fault = (dr6 & execute_slots) != 0 && (dr6 & trap_bits) == 0;
  if (instruction_fault && drtest_config.rf_from_hit != 0 && hit >= drtest_config.rf_from_hit)
    frame->rflags |= X86_RFLAGS_RF;
  if (drtest_config.stop_stepping_at != 0 && frame->rip == drtest_config.stop_stepping_at)
    frame->rflags &= ~X86_RFLAGS_TF;
  if (hit >= DRTEST_RUNAWAY_HITS) {
    write_dr7(0);
    frame->rflags &= ~X86_RFLAGS_TF;
  }
  return true;
}

void drtest_reset(void) {
  write_dr7(0);
  armed_dr7 = 0;
  for (unsigned slot = 0; slot < 4; ++slot) write_dr(slot, 0);
  write_dr6(DR6_CLEAN);
  drtest_config = (struct drtest_config){.rf_from_hit = 1};
  drtest_record.hits = 0;
  memset(drtest_record.log, 0, sizeof drtest_record.log);
  guest_set_exception_handler(X86_VECTOR_DB, record_debug_exception);
}

bool drtest_under_qemu_tcg(void) {
  char vmm[16];
  return guest_cmdline_option("drtest.vmm", vmm, sizeof vmm) && strcmp(vmm, "qemu-tcg") == 0;
}

static void cpuid_leaf7(uint32_t* ebx, uint32_t* ecx) {
  uint32_t max_leaf, eax, edx, unused_b, unused_c;
  __asm__ volatile("cpuid" : "=a"(max_leaf), "=b"(unused_b), "=c"(unused_c), "=d"(edx) : "a"(0));
  *ebx = *ecx = 0;
  if (max_leaf < 7) return;
  __asm__ volatile("cpuid" : "=a"(eax), "=b"(*ebx), "=c"(*ecx), "=d"(edx) : "a"(7), "c"(0));
}

bool drtest_cpu_has_rtm(void) {
  uint32_t ebx, ecx;
  cpuid_leaf7(&ebx, &ecx);
  return (ebx >> 11) & 1;
}

bool drtest_cpu_has_bus_lock_detect(void) {
  uint32_t ebx, ecx;
  cpuid_leaf7(&ebx, &ecx);
  return (ecx >> 24) & 1;
}

/* drtest.elf: the guest-side self-test of debug-register semantics (Intel SDM Vol. 3, chapter 17).
 * This header holds what every drtest case file shares: DR6/DR7 encodings, the recording #DB
 * handler, arming helpers, the page the cases watch, and the labelled code in drtest_code.S whose
 * exact addresses the cases compare saved RIPs against. docs/drtest.md lists the cases. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "guestfw/guestfw.h"
#include "guestfw/test.h"

/* ---- DR6 (SDM 17.2.3) ---- */
/* The value that makes DR6 "clean" on every processor: the read-as-1 bits plus the active-low bits
 * (RTM, bit 16; bus-lock detect, bit 11) left at 1, so that B0-B3/BD/BS/BT all read 0. */
#define DR6_CLEAN 0xffff0ff0ULL
#define DR6_B(slot) (1ULL << (slot))
#define DR6_BLD (1ULL << 11)
#define DR6_BD (1ULL << 13)
#define DR6_BS (1ULL << 14)
#define DR6_BT (1ULL << 15)
#define DR6_RTM (1ULL << 16)

/* ---- DR7 (SDM 17.2.4) ---- */
#define DR7_FIXED_1 (1ULL << 10)
#define DR7_L(slot) (1ULL << (2 * (slot)))
#define DR7_G(slot) (2ULL << (2 * (slot)))

/* The R/Wn encodings (10, I/O, needs CR4.DE and is not used). */
enum drtest_type { DRTEST_EXECUTE = 0, DRTEST_WRITE = 1, DRTEST_READ_WRITE = 3 };
enum drtest_enable { DRTEST_DISABLED, DRTEST_LOCAL, DRTEST_GLOBAL };

/* DR7's R/Wn, LENn and Ln/Gn bits for one slot; length is 1, 2, 4 or 8 bytes. */
uint64_t drtest_dr7_bits(unsigned slot, enum drtest_type type, unsigned length,
                         enum drtest_enable enable);

/* ---- debug registers by number ---- */
/* read_dr(n) / write_dr(n, value) for n = 0-3, 6, 7 come from guestfw/x86.h. */

static inline uint64_t drtest_read_cr4(void) {
  uint64_t value;
  __asm__ volatile("mov %%cr4, %0" : "=r"(value));
  return value;
}
static inline void drtest_write_cr4(uint64_t value) {
  __asm__ volatile("mov %0, %%cr4" : : "r"(value) : "memory");
}
#define X86_CR4_DE (1ULL << 3)

/* ---- the recording #DB handler ---- */
#define DRTEST_LOG_SIZE 8
/* A handler that sees this many #DBs in one case disarms DR7 and clears TF, so a broken VMM cannot
 * loop forever; the case then fails on the count. */
#define DRTEST_RUNAWAY_HITS 1000

struct drtest_hit {
  uint64_t rip, rflags, rsp, rax, rcx, rsi, rdi;
  uint64_t dr6;         /* as the handler found it, before it cleaned DR6 */
  uint64_t stack_top;   /* the quadword at the interrupted RSP */
  uint64_t snapshot[2]; /* memory at delivery (drtest_config.snapshot_address), zero-extended */
};

struct drtest_config {
  /* Instruction-breakpoint hits from this hit number on (1 = the first) resume with RF set; 0 never
   * sets RF. */
  unsigned rf_from_hit;
  /* The handler clears TF in the frame when it sees this RIP (single-step cases). */
  uint64_t stop_stepping_at;
  /* Read (with DR7 disarmed) at each hit; size 1, 2, 4, 8 or 16. */
  const volatile void* snapshot_address;
  unsigned snapshot_size;
};

struct drtest_record {
  unsigned hits;
  struct drtest_hit log[DRTEST_LOG_SIZE]; /* the first hits */
};
extern struct drtest_config drtest_config;
extern struct drtest_record drtest_record;

/* Installs the recording #DB handler with rf_from_hit = 1 and empties the record; every DR is
 * zeroed and DR6 cleaned. DRTEST_CASE calls it before each body. */
void drtest_reset(void);
/* DR7 = 0 and DR6 clean: every case disarms before it asserts, so a failed assertion leaves no
 * breakpoint armed for the framework's own code. */
void drtest_disarm(void);

/* Writes DRn = address and adds the slot to DR7 (the other slots stay as they are). */
void drtest_arm(unsigned slot, const volatile void* address, enum drtest_type type, unsigned length,
                enum drtest_enable enable);

/* True when the command line says the VMM is QEMU TCG ("drtest.vmm=qemu-tcg"), which does not
 * implement every rule checked here (docs/drtest.md, "Known to differ"). */
bool drtest_under_qemu_tcg(void);
#define DRTEST_SKIP_UNDER_QEMU_TCG(what)                                          \
  do {                                                                            \
    if (drtest_under_qemu_tcg()) GUEST_SKIP("QEMU TCG does not implement " what); \
  } while (0)

/* A case: resets the debug state, runs the body, disarms. */
#define DRTEST_CASE(name)               \
  static void drtest_body_##name(void); \
  GUEST_TEST(name) {                    \
    drtest_reset();                     \
    drtest_body_##name();               \
    drtest_disarm();                    \
  }                                     \
  static void drtest_body_##name(void)

/* The number of #DBs the recording handler saw. */
#define DRTEST_ASSERT_HITS(expected) GUEST_ASSERT_EQ(drtest_record.hits, (expected))
/* Logged #DB number index (0 = the first) was saved at expected_rip with exactly expected_dr6. */
#define DRTEST_ASSERT_HIT(index, expected_rip, expected_dr6)                            \
  do {                                                                                  \
    GUEST_ASSERT_EQ(drtest_record.log[index].rip, (uint64_t)(uintptr_t)(expected_rip)); \
    GUEST_ASSERT_EQ(drtest_record.log[index].dr6, (expected_dr6));                      \
  } while (0)

/* ---- the watched memory ---- */
/* Two pages nothing else uses, so a VMM that emulates watchpoints by page protection only traps
 * the cases' own accesses. Cases watch offsets in it; DRTEST_PAGE is the boundary between them. */
#define DRTEST_PAGE 4096
extern uint8_t drtest_area[2 * DRTEST_PAGE];

/* CPUID.(EAX=7,ECX=0): RTM (EBX bit 11) and bus-lock detection (ECX bit 24) make DR6 bits 16 and
 * 11 writable. */
bool drtest_cpu_has_rtm(void);
bool drtest_cpu_has_bus_lock_detect(void);

/* ---- drtest_code.S: each access at a known address; *_done is the next instruction ---- */
void drtest_store8(volatile void* address, uint8_t value);
void drtest_store16(volatile void* address, uint16_t value);
void drtest_store32(volatile void* address, uint32_t value);
void drtest_store64(volatile void* address, uint64_t value);
uint8_t drtest_load8(const volatile void* address);
uint16_t drtest_load16(const volatile void* address);
uint32_t drtest_load32(const volatile void* address);
uint64_t drtest_load64(const volatile void* address);
extern const char drtest_store8_done[], drtest_store16_done[], drtest_store32_done[],
    drtest_store64_done[];
extern const char drtest_load8_done[], drtest_load16_done[], drtest_load32_done[],
    drtest_load64_done[];
/* incl (address): one read-modify-write instruction. */
void drtest_increment32(volatile void* address);
extern const char drtest_increment32_done[];
/* count stores of the loop counter to *address, one instruction each. */
void drtest_store_loop(volatile void* address, uint32_t count);
extern const char drtest_store_loop_done[];
/* Returns value + 1 computed by the instruction at drtest_increment_insn (inc %rax). */
uint64_t drtest_increment(uint64_t value);
extern const char drtest_increment_insn[], drtest_increment_done[];
/* Runs the instruction at drtest_counting_loop_insn (inc %eax) count times; returns the count. */
uint32_t drtest_counting_loop(uint32_t count);
extern const char drtest_counting_loop_insn[];
/* mov $0x12345678, %eax (5 bytes at drtest_mov_imm_insn); returns EAX. */
uint32_t drtest_mov_imm(void);
extern const char drtest_mov_imm_insn[];
/* In a page of its own: returns 0x5a; a read/write watch on its bytes must not see the fetch. */
uint32_t drtest_isolated_function(void);
/* Sets TF with POPF, then three NOPs at drtest_step_nop1..3, then clears TF; returns after. */
void drtest_step_after_popf(void);
extern const char drtest_step_nop1[], drtest_step_nop2[], drtest_step_nop3[], drtest_step_end[];
/* int3 at drtest_int3_insn; then two NOPs at drtest_after_int3 and drtest_after_int3_nop2. */
void drtest_int3_then_nops(void);
extern const char drtest_int3_insn[], drtest_after_int3[], drtest_after_int3_nop2[],
    drtest_after_int3_end[];
/* Sets TF with POPF, then a NOP and drtest_step_store_insn: movq RSI, (RDI); then clears TF. */
void drtest_step_into_store(volatile void* address, uint64_t value);
extern const char drtest_step_store_insn[], drtest_step_store_done[];
/* Sets DR7 = GD | bit 10, then mov RDI to DR0 at drtest_gd_mov_to_dr0. */
void drtest_gd_write_dr0(uint64_t value);
extern const char drtest_gd_mov_to_dr0[];
/* Sets DR7 = GD | bit 10 and RAX = sentinel, then mov DR0 to RAX at drtest_gd_mov_from_dr0. */
uint64_t drtest_gd_read_dr0(uint64_t sentinel);
extern const char drtest_gd_mov_from_dr0[];
/* DR4/DR5 moves, each a labelled instruction (for the #UD RIP when CR4.DE = 1). */
void drtest_write_dr4(uint64_t value);
uint64_t drtest_read_dr4(void);
void drtest_write_dr5(uint64_t value);
uint64_t drtest_read_dr5(void);
extern const char drtest_write_dr4_insn[], drtest_read_dr4_insn[], drtest_write_dr5_insn[],
    drtest_read_dr5_insn[];
/* mov RDI to DR6 / DR7 at a labelled instruction, for guest_catch_exception (arg = the value). */
void drtest_write_dr6_arg(void* value);
void drtest_write_dr7_arg(void* value);
extern const char drtest_write_dr6_insn[], drtest_write_dr7_insn[];
/* Arms a write watch (DR0, 8 bytes, local) on the stack slot its PUSH writes, pushes, disarms;
 * returns the slot's address. drtest_push_done follows the PUSH. */
uint64_t drtest_push_under_watch(uint64_t pushed_value);
extern const char drtest_push_done[];
/* The same for the slot a CALL writes its return address to: the CALL at drtest_call_insn goes to
 * drtest_call_target, whose RET returns to drtest_call_return. */
uint64_t drtest_call_under_watch(void);
extern const char drtest_call_target[], drtest_call_return[];
/* rep movsb / rep stosq at a labelled instruction. */
void drtest_rep_movsb(volatile void* destination, const volatile void* source, uint64_t count);
extern const char drtest_rep_movsb_insn[], drtest_rep_movsb_done[];
void drtest_rep_stosq(volatile void* destination, uint64_t value, uint64_t count);
extern const char drtest_rep_stosq_insn[], drtest_rep_stosq_done[];
/* pushfq at drtest_pushf_insn, then popq %rax at drtest_pushf_next; returns the flags image. */
uint64_t drtest_pushf_pop(void);
extern const char drtest_pushf_insn[], drtest_pushf_next[];
/* ud2 (2 bytes) at drtest_ud_insn. */
void drtest_raise_ud(void);
extern const char drtest_ud_insn[];
/* drtest_cpus.c's wait: HLT with interrupts disabled until *flag != 0 (set by an NMI's handler). An
 * NMI that interrupts it at any RIP from drtest_wait_check to drtest_wait_hlt must resume at
 * drtest_wait_check. */
void drtest_wait_for_flag(const volatile uint32_t* flag);
extern const char drtest_wait_check[], drtest_wait_hlt[];

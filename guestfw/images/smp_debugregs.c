/* smp-debugregs.elf: every CPU has debug registers of its own. Each CPU `c` arms, in its own
 * DRs, a read/write watch on its own variable watched[c] in DR(c % 4) and an instruction
 * breakpoint on cpu<c>_work() (a function only it calls) in DR((c + 1) % 4); CPU 0 also breaks
 * on shared_work() (which every CPU calls) in DR2. With every CPU armed at once, each CPU writes
 * its variable 3 + c times, calls its function 2 + c times, reads every other CPU's watched
 * variable twice, calls shared_work() 3 times and increments shared_counter 10 + c times under a
 * spin lock. Its #DB handler counts the #DBs that are its own (DR6 names exactly its slot, RIP is
 * the right instruction) and any other; every CPU then checks that its DRs read back its own
 * values. The BSP prints one line per CPU in index order and exits 0 when every count is exact.
 * With drs=off on the command line no CPU touches a debug register (the same accesses, for the
 * host's events alone) and every CPU must see no #DB at all.
 * Run with drvm --cpus N or QEMU -smp N; the host's events on shared_counter and watched[c] count
 * exactly known numbers (tests/session/smp_events_test.cpp). */
#include "guestfw/guestfw.h"
#include "guestfw/smp.h"

#define DR7_L(n) (1ull << (2 * (n)))
#define DR7_RW_ACCESS(n) (3ull << (16 + 4 * (n))) /* RW = 11: reads and writes */
#define DR7_LEN_4(n) (3ull << (18 + 4 * (n)))     /* LEN = 11: 4 bytes */
#define DR7_RESERVED_ONE 0x400ull
#define DR6_CLEAR 0xffff0ff0ull
#define DR6_HITS 0xf00full /* B0-B3, BD, BS, BT */
#define SHARED_WORK_SLOT 2u

#define OWN_WRITES(cpu) (3u + (cpu))
#define OWN_CALLS(cpu) (2u + (cpu))
#define SHARED_WRITES(cpu) (10u + (cpu))
#define FOREIGN_READS 2u
#define SHARED_CALLS 3u
/* Non-zero so that it lives in .data: the boot's .bss clearing would be a write the host counts. */
#define SHARED_START 1000u

/* The data the CPUs watch and share: ordinary globals, side by side as the compiler lays them. */
volatile uint32_t watched[GUEST_MAX_CPUS];
volatile uint32_t shared_counter = SHARED_START;
volatile uint32_t work_calls[GUEST_MAX_CPUS];
volatile uint32_t shared_work_calls;
struct guest_spinlock shared_lock;
struct guest_barrier phase;

/* What each CPU's #DB handler and checks found, written only by that CPU. */
struct cpu_result {
  uint32_t watch_dbs;
  uint32_t work_dbs;
  uint32_t shared_work_dbs;
  uint32_t shared_writes;
  uint32_t other_dbs;
  uint64_t first_other_dr6;
  uint64_t first_other_rip;
  bool registers_own;
  uint64_t bad_register_number;
  uint64_t bad_register_value;
};
struct cpu_result results[GUEST_MAX_CPUS];
static unsigned cpu_total;
static bool use_drs = true; /* false with drs=off */

/* The write whose data #DB arrives at smp_dr_after_own_write (a trap: RIP after the access). */
extern const char smp_dr_after_own_write[];
__attribute__((noinline, noclone)) void own_write(volatile uint32_t* variable, uint32_t value) {
  __asm__ volatile(
      "movl %1, (%0)\n\t"
      ".globl smp_dr_after_own_write\n"
      "smp_dr_after_own_write:"
      :
      : "r"(variable), "r"(value)
      : "memory");
}

__attribute__((noinline)) void shared_work(void) {
  __atomic_add_fetch(&shared_work_calls, 1, __ATOMIC_RELAXED);
}

__attribute__((noinline)) void shared_increment(void) {
  guest_spin_lock(&shared_lock);
  shared_counter = shared_counter + 1;
  guest_spin_unlock(&shared_lock);
}

/* cpu<N>_work: called by CPU N only (its instruction breakpoint's target). */
#define CPU_WORK(n)                                    \
  __attribute__((noinline)) void cpu##n##_work(void) { \
    work_calls[n] = work_calls[n] + 1;                 \
  }
CPU_WORK(0)
CPU_WORK(1)
CPU_WORK(2)
CPU_WORK(3)
CPU_WORK(4)
CPU_WORK(5)
CPU_WORK(6)
CPU_WORK(7)
CPU_WORK(8)
CPU_WORK(9)
CPU_WORK(10)
CPU_WORK(11)
CPU_WORK(12)
CPU_WORK(13)
CPU_WORK(14)
CPU_WORK(15)
_Static_assert(GUEST_MAX_CPUS == 16, "one cpu<N>_work per CPU");
static void (*const cpu_work[GUEST_MAX_CPUS])(void) = {
    cpu0_work, cpu1_work, cpu2_work,  cpu3_work,  cpu4_work,  cpu5_work,  cpu6_work,  cpu7_work,
    cpu8_work, cpu9_work, cpu10_work, cpu11_work, cpu12_work, cpu13_work, cpu14_work, cpu15_work};

static unsigned watch_slot(unsigned cpu) {
  return cpu % 4;
}
static unsigned work_slot(unsigned cpu) {
  return (cpu + 1) % 4;
}

/* The DR0-DR3 values CPU `cpu` arms (0 in the slots it leaves alone), and its DR7. */
static uint64_t armed_address(unsigned cpu, unsigned slot) {
  if (slot == watch_slot(cpu)) return (uint64_t)(uintptr_t)&watched[cpu];
  if (slot == work_slot(cpu)) return (uint64_t)(uintptr_t)cpu_work[cpu];
  if (cpu == 0 && slot == SHARED_WORK_SLOT) return (uint64_t)(uintptr_t)shared_work;
  return 0;
}
static uint64_t armed_dr7(unsigned cpu) {
  const unsigned watch = watch_slot(cpu);
  uint64_t dr7 = DR7_RESERVED_ONE | DR7_L(watch) | DR7_RW_ACCESS(watch) | DR7_LEN_4(watch) |
                 DR7_L(work_slot(cpu)); /* RW = 00, LEN = 00: instruction execution */
  if (cpu == 0) dr7 |= DR7_L(SHARED_WORK_SLOT);
  return dr7;
}

static bool is_hit(uint64_t dr6, unsigned slot) {
  return (dr6 & DR6_HITS) == (1ull << slot);
}

static bool on_debug(struct guest_frame* frame) {
  const unsigned cpu = guest_this_cpu();
  struct cpu_result* const result = &results[cpu];
  const uint64_t dr6 = read_dr6();
  write_dr6(DR6_CLEAR);
  if (is_hit(dr6, watch_slot(cpu)) && frame->rip == (uint64_t)(uintptr_t)smp_dr_after_own_write) {
    ++result->watch_dbs;
    return true;
  }
  /* Instruction breakpoints are faults: RF lets the instruction run when IRETQ returns to it. */
  frame->rflags |= X86_RFLAGS_RF;
  if (is_hit(dr6, work_slot(cpu)) && frame->rip == (uint64_t)(uintptr_t)cpu_work[cpu]) {
    ++result->work_dbs;
  } else if (cpu == 0 && is_hit(dr6, SHARED_WORK_SLOT) &&
             frame->rip == (uint64_t)(uintptr_t)shared_work) {
    ++result->shared_work_dbs;
  } else if (result->other_dbs++ == 0) {
    result->first_other_dr6 = dr6;
    result->first_other_rip = frame->rip;
  }
  return true;
}

static void arm(unsigned cpu) {
  for (unsigned slot = 0; slot < 4; ++slot) write_dr(slot, armed_address(cpu, slot));
  write_dr7(armed_dr7(cpu));
}

/* Run while every CPU is armed: the accesses each CPU's DRs must see, and those they must not. */
static void work(unsigned cpu) {
  for (uint32_t i = 1; i <= OWN_WRITES(cpu); ++i) own_write(&watched[cpu], i);
  for (uint32_t i = 0; i < OWN_CALLS(cpu); ++i) cpu_work[cpu]();
  for (unsigned other = 0; other < cpu_total; ++other) {
    if (other == cpu) continue;
    for (uint32_t i = 0; i < FOREIGN_READS; ++i) (void)watched[other];
  }
  for (uint32_t i = 0; i < SHARED_CALLS; ++i) shared_work();
  for (uint32_t i = 0; i < SHARED_WRITES(cpu); ++i) {
    shared_increment();
    ++results[cpu].shared_writes;
  }
}

/* After the work, still armed: this CPU's DRs hold its own values, none of another CPU's. */
static void check_registers(unsigned cpu) {
  struct cpu_result* const result = &results[cpu];
  result->registers_own = true;
  for (unsigned number = 0; number <= 7; ++number) {
    if (number == 4 || number == 5 || number == 6) continue;
    const uint64_t expected = number == 7 ? armed_dr7(cpu) : armed_address(cpu, number);
    const uint64_t value = read_dr(number);
    if (value != expected) {
      result->registers_own = false;
      result->bad_register_number = number;
      result->bad_register_value = value;
      return;
    }
  }
}

static void disarm(void) {
  write_dr7(0);
  for (unsigned slot = 0; slot < 4; ++slot) write_dr(slot, 0);
}

/* Every CPU, the BSP included; the barriers keep all of them in the same phase. */
static void run_cpu(unsigned cpu) {
  guest_barrier_wait(&phase, cpu_total);
  if (use_drs) arm(cpu);
  guest_barrier_wait(&phase, cpu_total);
  work(cpu);
  guest_barrier_wait(&phase, cpu_total);
  if (use_drs) {
    check_registers(cpu);
    disarm();
  }
  guest_barrier_wait(&phase, cpu_total);
}

static bool report_without_drs(unsigned cpu) {
  const struct cpu_result* const r = &results[cpu];
  const unsigned dbs = r->watch_dbs + r->work_dbs + r->shared_work_dbs + r->other_dbs;
  guest_printf(
      "smp-debugregs: cpu %u (APIC ID %u): DRs not armed; shared_counter: %u writes; %u #DBs\n",
      cpu, guest_cpu_apic_id(cpu), r->shared_writes, dbs);
  return dbs == 0 && r->shared_writes == SHARED_WRITES(cpu) && work_calls[cpu] == OWN_CALLS(cpu);
}

static bool report(unsigned cpu) {
  if (!use_drs) return report_without_drs(cpu);
  const struct cpu_result* const r = &results[cpu];
  char shared_part[64] = "";
  bool pass = r->watch_dbs == OWN_WRITES(cpu) && r->work_dbs == OWN_CALLS(cpu) &&
              r->shared_writes == SHARED_WRITES(cpu) && work_calls[cpu] == OWN_CALLS(cpu) &&
              r->registers_own && r->other_dbs == 0;
  if (cpu == 0) {
    guest_snprintf(shared_part, sizeof shared_part, "DR%u breaks on shared_work: %u of %u #DBs; ",
                   SHARED_WORK_SLOT, r->shared_work_dbs, SHARED_CALLS);
    pass = pass && r->shared_work_dbs == SHARED_CALLS;
  }
  char registers_part[80] = "its DRs read back its own";
  if (!r->registers_own) {
    guest_snprintf(registers_part, sizeof registers_part, "DR%llu reads 0x%llx, not its own",
                   (unsigned long long)r->bad_register_number,
                   (unsigned long long)r->bad_register_value);
  }
  char other_part[96] = "no other #DB";
  if (r->other_dbs != 0) {
    guest_snprintf(other_part, sizeof other_part, "%u other #DBs, first DR6=0x%llx RIP=0x%llx",
                   r->other_dbs, (unsigned long long)r->first_other_dr6,
                   (unsigned long long)r->first_other_rip);
  }
  guest_printf(
      "smp-debugregs: cpu %u (APIC ID %u): DR%u watches watched[%u]: %u of %u #DBs; DR%u breaks "
      "on cpu%u_work: %u of %u #DBs; %sshared_counter: %u writes; %s; %s\n",
      cpu, guest_cpu_apic_id(cpu), watch_slot(cpu), cpu, r->watch_dbs, OWN_WRITES(cpu),
      work_slot(cpu), cpu, r->work_dbs, OWN_CALLS(cpu), shared_part, r->shared_writes,
      registers_part, other_part);
  return pass;
}

int guest_main(void) {
  char option[8];
  use_drs = !(guest_cmdline_option("drs", option, sizeof option) && strcmp(option, "off") == 0);
  guest_set_exception_handler(X86_VECTOR_DB, on_debug);
  cpu_total = guest_cpu_count();
  const unsigned started = guest_start_aps(cpu_total, run_cpu);
  run_cpu(0);
  bool pass = started == cpu_total;
  unsigned expected_writes = 0;
  for (unsigned cpu = 0; cpu < cpu_total; ++cpu) {
    pass = report(cpu) && pass;
    expected_writes += SHARED_WRITES(cpu);
  }
  const uint32_t total = shared_counter;
  pass = pass && total == SHARED_START + expected_writes &&
         shared_work_calls == SHARED_CALLS * cpu_total;
  guest_printf("smp-debugregs: shared_counter %u -> %u: %u writes by %u CPUs\n", SHARED_START,
               total, total - SHARED_START, cpu_total);
  guest_printf("smp-debugregs: %u CPUs, %s\n", cpu_total, pass ? "pass" : "FAIL");
  return pass ? GUESTFW_EXIT_SUCCESS : GUESTFW_EXIT_TEST_FAILURE;
}

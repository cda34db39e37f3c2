/* smpwork.elf: SMP and interrupt workloads timed by the guest's TSC, for bench/vmm/smp_bench.cpp.
 * The command line picks one and its size:
 *   work=ipi rounds=K     CPU 0 pings CPU 1 with a fixed IPI K times (default 10000) and waits in
 *                         HLT for each answer: "smpwork: ipi: K round trips in C cycles"
 *   work=timer loops=N period=P rounds=R
 *                         a loop of N iterations (default 50000000) on CPU 0, R times (default 3)
 *                         with nothing armed and R times with the local APIC timer periodic at
 *                         initial count P (default 12500: 200 us at KVM's and QEMU's 1 GHz APIC
 *                         clock / 16, the shortest period KVM gives by default, its
 *                         min_timer_period_us) and interrupts enabled, in turn: "smpwork: timer:
 *                         T ticks, C1 cycles with the timer, C0 without"; (C1 - C0) / T is the cost
 *                         of one tick
 *   work=shared writes=N  CPUs 0 and 1 each increment smpwork_shared N times (default 100000,
 *                         LOCK INCL, one write each) at the same time: "smpwork: shared: W writes
 *                         in C cycles, value V" (V = W = 2N)
 * then exits with 0 (1 when a workload did not run as asked: fewer than 2 CPUs, lost IPIs, a wrong
 * total). Run with drvm --cpus 2 or QEMU -smp 2 (work=timer needs one CPU). */
#include <stdint.h>

#include "guestfw/guestfw.h"
#include "guestfw/interrupts.h"
#include "guestfw/smp.h"

#define PING_VECTOR 0x50u
#define PONG_VECTOR 0x51u

/* The variable both CPUs write in work=shared (bench: --event mem:smpwork_shared:w). */
volatile uint32_t smpwork_shared;

static volatile uint32_t pongs;       /* answers CPU 0 received */
static volatile uint32_t ticks;       /* timer interrupts taken */
static volatile uint32_t ap_ready;    /* CPU 1 is in its workload */
static volatile uint32_t go;          /* work=shared: both start writing */
static volatile uint32_t ap_finished; /* work=shared: CPU 1 wrote its share */

static uint64_t rdtsc(void) {
  uint32_t low, high;
  __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
  return ((uint64_t)high << 32) | low;
}

/* key=N, where 0 (or no number) also means the default. */
static uint64_t option_number(const char* key, uint64_t fallback) {
  const uint64_t value = guest_cmdline_number(key, fallback);
  return value == 0 ? fallback : value;
}

/* ---- work=ipi ---- */
static void answer_ping(unsigned vector) {
  (void)vector;
  guest_lapic_eoi();
  guest_send_ipi(guest_cpu_apic_id(0), PONG_VECTOR);
}

static void count_pong(unsigned vector) {
  (void)vector;
  ++pongs;
  guest_lapic_eoi();
}

static void serve_pings(unsigned cpu) {
  (void)cpu;
  __atomic_store_n(&ap_ready, 1, __ATOMIC_RELEASE);
  for (;;) guest_wait_for_interrupt();
}

static int ipi_round_trips(uint64_t rounds) {
  guest_interrupts_init();
  guest_set_irq_handler(PING_VECTOR, answer_ping);
  guest_set_irq_handler(PONG_VECTOR, count_pong);
  if (guest_start_aps(2, serve_pings) < 2) {
    guest_printf("smpwork: ipi needs 2 CPUs\n");
    return GUESTFW_EXIT_TEST_FAILURE;
  }
  while (__atomic_load_n(&ap_ready, __ATOMIC_ACQUIRE) == 0) cpu_pause();
  const uint32_t target = guest_cpu_apic_id(1);
  const uint64_t start = rdtsc();
  for (uint64_t round = 0; round < rounds; ++round) {
    const uint32_t before = pongs;
    guest_send_ipi(target, PING_VECTOR);
    while (pongs == before) guest_wait_for_interrupt();
  }
  const uint64_t cycles = rdtsc() - start;
  guest_printf("smpwork: ipi: %lu round trips in %lu cycles\n", rounds, cycles);
  return pongs == rounds ? GUESTFW_EXIT_SUCCESS : GUESTFW_EXIT_TEST_FAILURE;
}

/* ---- work=timer ---- */
static void count_tick(unsigned vector) {
  (void)vector;
  ++ticks;
  guest_lapic_eoi();
}

/* n iterations of a loop the compiler cannot shorten; the cycles it took. */
static uint64_t timed_loop(uint64_t n) {
  const uint64_t start = rdtsc();
  for (uint64_t i = 0; i < n; ++i) __asm__ volatile("" : : "r"(i) : "memory");
  return rdtsc() - start;
}

/* The loop runs quiet and ticking in turn, `rounds` times each, so a drift in the host's speed
 * weighs on both alike. */
static int timer_tick_cost(uint64_t loops, uint64_t period, uint64_t rounds) {
  guest_interrupts_init();
  guest_set_irq_handler(GUEST_LAPIC_TIMER_VECTOR, count_tick);
  uint64_t quiet = 0, ticking = 0;
  for (uint64_t round = 0; round < rounds; ++round) {
    quiet += timed_loop(loops);
    guest_lapic_timer_start(GUEST_LAPIC_TIMER_VECTOR, (uint32_t)period, true);
    __asm__ volatile("sti" ::: "memory");
    ticking += timed_loop(loops);
    __asm__ volatile("cli" ::: "memory");
    guest_lapic_timer_stop();
  }
  guest_printf("smpwork: timer: %u ticks, %lu cycles with the timer, %lu without\n", ticks, ticking,
               quiet);
  return ticks > 0 ? GUESTFW_EXIT_SUCCESS : GUESTFW_EXIT_TEST_FAILURE;
}

/* ---- work=shared ---- */
static uint64_t shared_writes;

static void write_shared(uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) __asm__ volatile("lock incl %0" : "+m"(smpwork_shared));
}

static void write_share_on_ap(unsigned cpu) {
  (void)cpu;
  __atomic_store_n(&ap_ready, 1, __ATOMIC_RELEASE);
  while (__atomic_load_n(&go, __ATOMIC_ACQUIRE) == 0) cpu_pause();
  write_shared(shared_writes);
  __atomic_store_n(&ap_finished, 1, __ATOMIC_RELEASE);
}

static int shared_variable(uint64_t writes) {
  shared_writes = writes;
  if (guest_start_aps(2, write_share_on_ap) < 2) {
    guest_printf("smpwork: shared needs 2 CPUs\n");
    return GUESTFW_EXIT_TEST_FAILURE;
  }
  while (__atomic_load_n(&ap_ready, __ATOMIC_ACQUIRE) == 0) cpu_pause();
  const uint64_t start = rdtsc();
  __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
  write_shared(writes);
  while (__atomic_load_n(&ap_finished, __ATOMIC_ACQUIRE) == 0) cpu_pause();
  const uint64_t cycles = rdtsc() - start;
  const uint32_t value = smpwork_shared;
  guest_printf("smpwork: shared: %lu writes in %lu cycles, value %u\n", 2 * writes, cycles, value);
  return value == 2 * writes ? GUESTFW_EXIT_SUCCESS : GUESTFW_EXIT_TEST_FAILURE;
}

int guest_main(void) {
  char work[16];
  if (!guest_cmdline_option("work", work, sizeof work)) work[0] = '\0';
  if (strcmp(work, "ipi") == 0) return ipi_round_trips(option_number("rounds", 10000));
  if (strcmp(work, "timer") == 0)
    return timer_tick_cost(option_number("loops", 50000000), option_number("period", 12500),
                           option_number("rounds", 3));
  if (strcmp(work, "shared") == 0) return shared_variable(option_number("writes", 100000));
  guest_printf("smpwork: give work=ipi, work=timer or work=shared\n");
  return GUESTFW_EXIT_TEST_FAILURE;
}

/* smp-ipi.elf: IPI round trips. Every AP waits in HLT for a "ping" IPI and answers each with a
 * "pong" IPI to the BSP; the BSP pings each AP ROUNDS times, waiting in HLT for every answer, and
 * prints the round trips per CPU. Run with drvm --cpus N or QEMU -smp N. */
#include "guestfw/guestfw.h"
#include "guestfw/interrupts.h"
#include "guestfw/smp.h"

#define PING_VECTOR 0x50u
#define PONG_VECTOR 0x51u
#define ROUNDS 100u

static volatile uint32_t pings[GUEST_MAX_CPUS]; /* received by each AP */
static volatile uint32_t pongs;                 /* received by the BSP */
static volatile uint32_t ready[GUEST_MAX_CPUS];

static void ping(unsigned vector) {
  (void)vector;
  const unsigned cpu = guest_this_cpu();
  ++pings[cpu];
  guest_lapic_eoi();
  guest_send_ipi(guest_cpu_apic_id(0), PONG_VECTOR);
}

static void pong(unsigned vector) {
  (void)vector;
  ++pongs;
  guest_lapic_eoi();
}

static void serve(unsigned cpu) {
  __atomic_store_n(&ready[cpu], 1, __ATOMIC_RELEASE);
  for (;;) guest_wait_for_interrupt();
}

int guest_main(void) {
  guest_interrupts_init();
  guest_set_irq_handler(PING_VECTOR, ping);
  guest_set_irq_handler(PONG_VECTOR, pong);
  const unsigned count = guest_start_aps(guest_cpu_count(), serve);
  unsigned failures = 0;
  for (unsigned cpu = 1; cpu < count; ++cpu) {
    while (__atomic_load_n(&ready[cpu], __ATOMIC_ACQUIRE) == 0) cpu_pause();
    unsigned trips = 0;
    for (unsigned round = 0; round < ROUNDS; ++round) {
      const uint32_t before = pongs;
      guest_send_ipi(guest_cpu_apic_id(cpu), PING_VECTOR);
      while (pongs == before) guest_wait_for_interrupt();
      ++trips;
    }
    guest_printf("smp-ipi: cpu %u (APIC ID %u): %u round trips, %u pings received\n", cpu,
                 guest_cpu_apic_id(cpu), trips, pings[cpu]);
    if (pings[cpu] != ROUNDS) ++failures;
  }
  guest_printf("smp-ipi: %u CPUs, %u round trips each, %s\n", count, ROUNDS,
               failures == 0 ? "all answered" : "some failed");
  return failures == 0 ? GUESTFW_EXIT_SUCCESS : GUESTFW_EXIT_TEST_FAILURE;
}

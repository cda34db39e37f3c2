/* timer.elf: counts ticks of the local APIC timer, then of the PIT (IRQ 0 through the I/O APIC),
 * waiting for each in HLT, and exits with 0. ticks=N on the command line sets the count (5). */
#include "guestfw/guestfw.h"
#include "guestfw/interrupts.h"

#define LAPIC_TIMER_COUNT 625000u /* 10 ms at the 1 GHz APIC bus clock / 16 of KVM and QEMU */
#define PIT_COUNT 11932u          /* 10 ms */

static volatile unsigned ticks;

static void on_tick(unsigned vector) {
  (void)vector;
  ++ticks;
  guest_lapic_eoi();
}

static void wait_ticks(unsigned wanted) {
  ticks = 0;
  while (ticks < wanted) guest_wait_for_interrupt();
}

static unsigned wanted_ticks(void) {
  const unsigned n = (unsigned)guest_cmdline_number("ticks", 5);
  return n == 0 ? 5 : n;
}

int guest_main(void) {
  const unsigned wanted = wanted_ticks();
  guest_interrupts_init();

  guest_set_irq_handler(GUEST_LAPIC_TIMER_VECTOR, on_tick);
  guest_lapic_timer_start(GUEST_LAPIC_TIMER_VECTOR, LAPIC_TIMER_COUNT, true);
  wait_ticks(wanted);
  guest_lapic_timer_stop();
  guest_printf("timer.elf: local APIC timer: %u ticks\n", ticks);

  guest_set_irq_handler(GUEST_ISA_VECTOR_BASE + 0, on_tick);
  guest_route_isa_irq(0);
  guest_pit_start_periodic(PIT_COUNT);
  wait_ticks(wanted);
  guest_unroute_isa_irq(0);
  guest_pit_stop();
  guest_printf("timer.elf: PIT: %u ticks\n", ticks >= wanted ? wanted : ticks);
  return GUESTFW_EXIT_SUCCESS;
}

/* smp-halt.elf: drvm's halt rule with several vCPUs. Every AP waits in HLT with interrupts
 * enabled and nothing armed, and so does the BSP: drvm ends the run as "guest halted" (status 6)
 * once every vCPU is stopped for good. With wake=1 on the command line, CPU 1 first spins for about
 * a second (TSC) and then sends the BSP an IPI: the BSP is not stopped for good while CPU 1 runs,
 * so it wakes, says so and exits 0. QEMU waits forever in the first mode. */
#include "guestfw/guestfw.h"
#include "guestfw/interrupts.h"
#include "guestfw/smp.h"

#define WAKE_VECTOR 0x50u
#define SPIN_CYCLES 1500000000ull

static uint64_t rdtsc(void) {
  uint32_t low, high;
  __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
  return ((uint64_t)high << 32) | low;
}

static void on_wake(unsigned vector) {
  (void)vector;
  guest_lapic_eoi();
}

static void sleeper(unsigned cpu) {
  (void)cpu;
  for (;;) __asm__ volatile("sti; hlt");
}

static void waker(unsigned cpu) {
  if (cpu != 1) sleeper(cpu);
  const uint64_t start = rdtsc();
  while (rdtsc() - start < SPIN_CYCLES) cpu_pause();
  guest_send_ipi(guest_cpu_apic_id(0), WAKE_VECTOR);
  sleeper(cpu);
}

int guest_main(void) {
  char value[8];
  const bool wake = guest_cmdline_option("wake", value, sizeof value);
  guest_interrupts_init();
  guest_set_irq_handler(WAKE_VECTOR, on_wake);
  const unsigned count = guest_cpu_count();
  if (wake && count < 2) {
    guest_printf("smp-halt: wake=1 needs 2 CPUs or more\n");
    return GUESTFW_EXIT_TEST_FAILURE;
  }
  guest_start_aps(count, wake ? waker : sleeper);
  guest_printf("smp-halt: %u CPUs up, cpu 0 waits in HLT%s\n", count,
               wake ? " until cpu 1 wakes it" : "");
  guest_wait_for_interrupt();
  if (!wake)
    for (;;) __asm__ volatile("sti; hlt");
  guest_printf("smp-halt: cpu 0 woken by an IPI\n");
  return GUESTFW_EXIT_SUCCESS;
}

/* smp-hello.elf: starts every CPU the MADT lists; each AP records its APIC ID and index, and the
 * BSP then prints one line per CPU in index order (so the output does not depend on timing) and
 * exits 0. Run with drvm --cpus N or QEMU -smp N. */
#include "guestfw/guestfw.h"
#include "guestfw/smp.h"

static volatile uint32_t reported_apic_id[GUEST_MAX_CPUS];
static volatile uint32_t reported[GUEST_MAX_CPUS];
static struct guest_spinlock arrivals_lock;
static unsigned arrivals; /* under arrivals_lock */

static void record(unsigned cpu) {
  reported_apic_id[cpu] = guest_this_apic_id();
  guest_spin_lock(&arrivals_lock);
  ++arrivals;
  guest_spin_unlock(&arrivals_lock);
  __atomic_store_n(&reported[cpu], 1, __ATOMIC_RELEASE);
}

int guest_main(void) {
  const unsigned count = guest_cpu_count();
  record(0);
  const unsigned started = guest_start_aps(count, record);
  for (unsigned cpu = 1; cpu < started; ++cpu) {
    while (__atomic_load_n(&reported[cpu], __ATOMIC_ACQUIRE) == 0) cpu_pause();
  }
  for (unsigned cpu = 0; cpu < started; ++cpu) {
    guest_printf("cpu %u (APIC ID %u) up\n", cpu, reported_apic_id[cpu]);
  }
  guest_spin_lock(&arrivals_lock);
  const unsigned total = arrivals;
  guest_spin_unlock(&arrivals_lock);
  guest_printf("smp-hello: %u of %u CPUs up\n", total, count);
  return total == count ? GUESTFW_EXIT_SUCCESS : GUESTFW_EXIT_TEST_FAILURE;
}

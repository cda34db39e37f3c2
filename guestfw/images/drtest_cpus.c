/* drtest.elf's guest_main: the cases on every CPU. With one CPU they run once, with exactly the
 * output guest_run_tests() gives. With several (the MADT lists them: drvm --cpus N, QEMU -smp N)
 * the whole list runs on each CPU in turn, the BSP first (before any AP is started), then each AP
 * while every other CPU waits in HLT with interrupts disabled; each CPU's run is introduced by a
 * "drtest: cpu N" line and ends with its own summary line, and a table of every CPU's counts
 * follows. The image passes only if every CPU passed.
 *
 * The turn is handed over by NMI IPIs (they wake a HLT with interrupts disabled, and nothing else
 * can reach a CPU then): the BSP wakes one AP, which runs the cases and wakes the BSP when done.
 * A CPU takes an NMI only while it waits, never while it runs cases, so no case sees one. The
 * framework's and the cases' state (handlers, records, counters) is global and used by one CPU at
 * a time; the debug registers are per CPU and every case starts by writing all of them. */
#include "drtest.h"
#include "guestfw/smp.h"

/* woken[cpu]: set by the NMI handler on that CPU, the signal drtest_wait_for_flag waits for. */
static volatile uint32_t woken[GUEST_MAX_CPUS];
static struct guest_test_counts results[GUEST_MAX_CPUS];

static bool take_wake_up_nmi(struct guest_frame* frame) {
  __atomic_store_n(&woken[guest_this_cpu()], 1, __ATOMIC_RELEASE);
  /* Interrupted after its check but before its HLT: check again rather than sleep. */
  if (frame->rip >= (uint64_t)drtest_wait_check && frame->rip <= (uint64_t)drtest_wait_hlt)
    frame->rip = (uint64_t)drtest_wait_check;
  return true;
}

static void wait_for_wake_up(unsigned cpu) {
  drtest_wait_for_flag(&woken[cpu]);
  woken[cpu] = 0;
}

static void run_cases(unsigned cpu) {
  guest_printf("drtest: cpu %u (APIC ID %u)\n", cpu, guest_this_apic_id());
  results[cpu] = guest_run_test_cases();
}

/* An AP: its turn starts with the BSP's NMI and ends with one back. */
static void run_cases_on_ap(unsigned cpu) {
  wait_for_wake_up(cpu);
  run_cases(cpu);
  guest_send_nmi(guest_cpu_apic_id(0));
}

int guest_main(void) {
  const unsigned count = guest_cpu_count();
  if (count == 1) return guest_run_tests();

  guest_printf("drtest: %u CPUs, the cases run on each in turn\n", count);
  guest_set_exception_handler(X86_VECTOR_NMI, take_wake_up_nmi);
  run_cases(0);
  /* Every AP has loaded the IDT (and so can take the NMI) once this returns. */
  const unsigned started = guest_start_aps(count, run_cases_on_ap);
  for (unsigned cpu = 1; cpu < started; ++cpu) {
    guest_send_nmi(guest_cpu_apic_id(cpu));
    wait_for_wake_up(0);
  }

  unsigned failed_cpus = 0;
  for (unsigned cpu = 0; cpu < started; ++cpu) {
    guest_printf("drtest: cpu %u: %u passed, %u failed, %u skipped\n", cpu, results[cpu].passed,
                 results[cpu].failed, results[cpu].skipped);
    if (results[cpu].failed != 0) ++failed_cpus;
  }
  if (started != count) {
    guest_printf("drtest: only %u of %u CPUs started\n", started, count);
    return GUESTFW_EXIT_TEST_FAILURE;
  }
  if (failed_cpus == 0)
    guest_printf("drtest: every CPU passed\n");
  else
    guest_printf("drtest: %u of %u CPUs failed\n", failed_cpus, started);
  return failed_cpus == 0 ? GUESTFW_EXIT_SUCCESS : GUESTFW_EXIT_TEST_FAILURE;
}

/* Several CPUs: the CPU list from the ACPI MADT, starting the application processors (INIT, SIPI,
 * SIPI through the local APIC's ICR, as the MP specification and Intel SDM vol. 3 section 9.4
 * describe), spin locks, and inter-processor interrupts.
 *
 * CPU indices: 0 is the bootstrap processor, 1.. the other enabled local APICs in MADT order.
 * Each AP runs with the BSP's GDT, page tables and IDT (the one loaded when guest_start_aps() is
 * called: call guest_interrupts_init() first to give APs the 256-gate one), its local APIC
 * software-enabled (spurious vector 0xff, TPR 0), interrupts disabled, on its own 16 KiB stack.
 * Spin locks and barriers coordinate them. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define GUEST_MAX_CPUS 16

typedef void (*guest_ap_entry)(unsigned cpu);

/* The enabled processors the MADT lists (at most GUEST_MAX_CPUS), 1 without a MADT. */
unsigned guest_cpu_count(void);
/* The local APIC ID of CPU `cpu` (after guest_cpu_count()). */
uint32_t guest_cpu_apic_id(unsigned cpu);
/* This CPU's local APIC ID, and its index (0 on the BSP). */
uint32_t guest_this_apic_id(void);
unsigned guest_this_cpu(void);

/* Starts CPUs 1..count-1 one after the other; each runs entry(cpu), then halts with interrupts
 * disabled when entry returns. Returns once every one has arrived in long mode and signalled it
 * (before it calls entry), or ends the image with GUESTFW_EXIT_TEST_FAILURE after a line naming
 * the CPU that never came up. count is capped at guest_cpu_count(). Returns the CPUs now up. */
unsigned guest_start_aps(unsigned count, guest_ap_entry entry);

/* A fixed-delivery, physical-destination IPI with this vector to the CPU with this APIC ID. */
void guest_send_ipi(uint32_t apic_id, unsigned vector);
/* An NMI IPI to the CPU with this APIC ID: it wakes a HLT even with interrupts disabled (and is
 * delivered through IDT vector 2, which needs a handler: guest_set_exception_handler()). */
void guest_send_nmi(uint32_t apic_id);

struct guest_spinlock {
  volatile uint32_t locked;
};
void guest_spin_lock(struct guest_spinlock* lock);
void guest_spin_unlock(struct guest_spinlock* lock);

/* A reusable barrier for `count` CPUs: guest_barrier_wait() returns on each CPU once all `count`
 * have called it (every CPU must pass the same count). Zero-initialised is ready to use. */
struct guest_barrier {
  volatile uint32_t arrived;
  volatile uint32_t generation; /* bumped by the last arrival, which releases the others */
};
void guest_barrier_wait(struct guest_barrier* barrier, unsigned count);

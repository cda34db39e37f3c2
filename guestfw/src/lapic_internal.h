/* The local APIC's registers and bits, shared by the runtime's interrupt (interrupts.c) and SMP
 * (smp.c) code; the accessors are guest_lapic_read()/guest_lapic_write() (guestfw/interrupts.h). */
#pragma once

#include "guestfw/interrupts.h"

/* Register offsets from GUEST_LAPIC_ADDRESS (Intel SDM vol. 3, table 11-1). */
enum {
  LAPIC_ID = 0x20,
  LAPIC_TPR = 0x80,
  LAPIC_EOI = 0xb0,
  LAPIC_SVR = 0xf0,
  LAPIC_ICR_LOW = 0x300,
  LAPIC_ICR_HIGH = 0x310,
  LAPIC_LVT_TIMER = 0x320,
  LAPIC_TIMER_INITIAL = 0x380,
  LAPIC_TIMER_DIVIDE = 0x3e0,
};
#define LAPIC_SVR_ENABLE 0x100u
#define LAPIC_LVT_MASKED 0x10000u
#define LAPIC_LVT_TIMER_PERIODIC 0x20000u
#define LAPIC_DIVIDE_BY_16 0x3u
#define ICR_DELIVERY_FIXED 0x000u
#define ICR_DELIVERY_NMI 0x400u
#define ICR_DELIVERY_INIT 0x500u
#define ICR_DELIVERY_STARTUP 0x600u
#define ICR_SEND_PENDING 0x1000u
#define ICR_LEVEL_ASSERT 0x4000u

/* This CPU's local APIC accepts every priority and is software-enabled, with spurious interrupts
 * on GUEST_SPURIOUS_VECTOR: what the BSP (guest_interrupts_init) and each AP (guestfw_ap_main)
 * set up. */
static inline void guestfw_lapic_enable(void) {
  guest_lapic_write(LAPIC_TPR, 0);
  guest_lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | GUEST_SPURIOUS_VECTOR);
}

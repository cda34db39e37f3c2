/* External interrupts for images that wait for them: a 256-gate IDT (vectors 0-31 keep the
 * exception stubs, 32-255 get interrupt stubs that call a per-vector handler), the local APIC and
 * its timer, the I/O APIC, the legacy 8259 PIC pair, the 8254 PIT, and waiting in HLT.
 *
 * Handlers run with interrupts disabled on the interrupted stack and must acknowledge their
 * interrupt themselves (guest_lapic_eoi()). Nothing here is set up unless an image calls
 * guest_interrupts_init(): the other images keep their 32-gate IDT and their layout. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define GUEST_LAPIC_ADDRESS 0xfee00000u
#define GUEST_IOAPIC_ADDRESS 0xfec00000u
/* ISA IRQ n arrives at vector GUEST_ISA_VECTOR_BASE + n when routed by guest_route_isa_irq(). */
#define GUEST_ISA_VECTOR_BASE 0x20u
#define GUEST_LAPIC_TIMER_VECTOR 0x40u
#define GUEST_SPURIOUS_VECTOR 0xffu
#define GUEST_PIT_HZ 1193182u

typedef void (*guest_irq_handler)(unsigned vector);

/* Loads the 256-gate IDT, remaps the PIC pair to vectors 0x20-0x2f and masks all its lines, masks
 * every I/O APIC pin, and software-enables the local APIC (spurious vector 0xff, TPR 0).
 * Interrupts stay disabled (RFLAGS.IF = 0). */
void guest_interrupts_init(void);

/* Installs handler for vector (32-255); NULL removes it. An interrupt without a handler ends the
 * image with GUESTFW_EXIT_UNEXPECTED_EXCEPTION after a line naming the vector. */
void guest_set_irq_handler(unsigned vector, guest_irq_handler handler);

/* Local APIC. */
uint32_t guest_lapic_read(unsigned offset);
void guest_lapic_write(unsigned offset, uint32_t value);
void guest_lapic_eoi(void);
/* Timer: divide by 16; periodic or one-shot; initial_count 0 stops it. */
void guest_lapic_timer_start(unsigned vector, uint32_t initial_count, bool periodic);
void guest_lapic_timer_stop(void);

/* I/O APIC: pin -> vector, edge-triggered, active high, fixed delivery to APIC ID 0. */
void guest_ioapic_route(unsigned pin, unsigned vector);
void guest_ioapic_mask(unsigned pin);
uint32_t guest_ioapic_read(unsigned index);
/* Routes ISA IRQ irq (0-15) through the I/O APIC to GUEST_ISA_VECTOR_BASE + irq, using the pin
 * the MADT's interrupt source override gives (IRQ 0 -> pin 2 on PC platforms). */
void guest_route_isa_irq(unsigned irq);
void guest_unroute_isa_irq(unsigned irq);

/* PIT channel 0: rate generator (mode 2) with the given count; stop ends it with a one-shot count
 * of 1 (one last edge on IRQ 0 right away, none after). */
void guest_pit_start_periodic(uint16_t count);
void guest_pit_stop(void);

/* Enables interrupts and halts until one arrives (STI's shadow keeps the two together), then
 * disables them again. Call with interrupts disabled, after checking what you wait for. */
void guest_wait_for_interrupt(void);

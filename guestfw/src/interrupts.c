/* The 256-gate IDT, the interrupt dispatcher, and the local APIC, I/O APIC, PIC and PIT drivers
 * (guestfw/interrupts.h). */
#include "guestfw/interrupts.h"

#include "exceptions_internal.h"
#include "guestfw/boot_state.h"
#include "guestfw/exit.h"
#include "guestfw/format.h"
#include "guestfw/x86.h"
#include "lapic_internal.h"

#define IDT_VECTORS 256
#define STUB_SPACING 16

extern const uint64_t guestfw_exception_stubs[GUESTFW_EXCEPTION_VECTORS];
extern const char guestfw_interrupt_stubs[];

static struct idt_gate interrupt_idt[IDT_VECTORS] __attribute__((aligned(16)));
static guest_irq_handler irq_handlers[IDT_VECTORS];

#define IOAPIC_VERSION 0x01u
#define IOAPIC_REDIRECTION 0x10u
#define IOAPIC_MASKED 0x10000u

enum { PIC_MASTER = 0x20, PIC_SLAVE = 0xa0, PIT_CHANNEL0 = 0x40, PIT_COMMAND = 0x43 };

static void set_gate(unsigned vector, uint64_t handler) {
  interrupt_idt[vector] = guestfw_interrupt_gate(handler);
}

static void pic_init(void) {
  /* ICW1-ICW4: edge-triggered, cascaded, vectors 0x20 and 0x28, 8086 mode; then mask every line. */
  outb(PIC_MASTER, 0x11);
  outb(PIC_SLAVE, 0x11);
  outb(PIC_MASTER + 1, GUEST_ISA_VECTOR_BASE);
  outb(PIC_SLAVE + 1, GUEST_ISA_VECTOR_BASE + 8);
  outb(PIC_MASTER + 1, 0x04); /* slave on IRQ 2 */
  outb(PIC_SLAVE + 1, 0x02);
  outb(PIC_MASTER + 1, 0x01);
  outb(PIC_SLAVE + 1, 0x01);
  outb(PIC_MASTER + 1, 0xff);
  outb(PIC_SLAVE + 1, 0xff);
}

void guest_interrupts_init(void) {
  __asm__ volatile("cli");
  for (unsigned vector = 0; vector < GUESTFW_EXCEPTION_VECTORS; ++vector) {
    set_gate(vector, guestfw_exception_stubs[vector]);
  }
  for (unsigned vector = GUESTFW_EXCEPTION_VECTORS; vector < IDT_VECTORS; ++vector) {
    set_gate(vector, (uint64_t)(uintptr_t)guestfw_interrupt_stubs +
                         (vector - GUESTFW_EXCEPTION_VECTORS) * STUB_SPACING);
  }
  guestfw_load_idt(interrupt_idt, IDT_VECTORS);

  pic_init();
  const unsigned pins = ((guest_ioapic_read(IOAPIC_VERSION) >> 16) & 0xff) + 1;
  for (unsigned pin = 0; pin < pins; ++pin) guest_ioapic_mask(pin);
  guestfw_lapic_enable();
}

void guest_set_irq_handler(unsigned vector, guest_irq_handler handler) {
  if (vector >= GUESTFW_EXCEPTION_VECTORS && vector < IDT_VECTORS) irq_handlers[vector] = handler;
}

/* Called by interrupt_common (interrupt_stubs.S). */
void guestfw_interrupt_dispatch(uint64_t vector);

void guestfw_interrupt_dispatch(uint64_t vector) {
  if (irq_handlers[vector] != 0) {
    irq_handlers[vector]((unsigned)vector);
    return;
  }
  if (vector == GUEST_SPURIOUS_VECTOR) return; /* no EOI for a spurious interrupt */
  guest_printf("guestfw: unexpected interrupt, vector 0x%x\n", (unsigned)vector);
  guest_exit(GUESTFW_EXIT_UNEXPECTED_EXCEPTION);
}

static volatile uint32_t* lapic_register(unsigned offset) {
  return (volatile uint32_t*)(uintptr_t)(GUEST_LAPIC_ADDRESS + offset);
}

uint32_t guest_lapic_read(unsigned offset) {
  return *lapic_register(offset);
}

void guest_lapic_write(unsigned offset, uint32_t value) {
  *lapic_register(offset) = value;
}

void guest_lapic_eoi(void) {
  guest_lapic_write(LAPIC_EOI, 0);
}

void guest_lapic_timer_start(unsigned vector, uint32_t initial_count, bool periodic) {
  guest_lapic_write(LAPIC_TIMER_DIVIDE, LAPIC_DIVIDE_BY_16);
  guest_lapic_write(LAPIC_LVT_TIMER, vector | (periodic ? LAPIC_LVT_TIMER_PERIODIC : 0));
  guest_lapic_write(LAPIC_TIMER_INITIAL, initial_count);
}

void guest_lapic_timer_stop(void) {
  guest_lapic_write(LAPIC_TIMER_INITIAL, 0);
  guest_lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | GUEST_LAPIC_TIMER_VECTOR);
}

uint32_t guest_ioapic_read(unsigned index) {
  volatile uint32_t* const select = (volatile uint32_t*)(uintptr_t)GUEST_IOAPIC_ADDRESS;
  volatile uint32_t* const window = (volatile uint32_t*)(uintptr_t)(GUEST_IOAPIC_ADDRESS + 0x10);
  *select = index;
  return *window;
}

static void ioapic_write(unsigned index, uint32_t value) {
  volatile uint32_t* const select = (volatile uint32_t*)(uintptr_t)GUEST_IOAPIC_ADDRESS;
  volatile uint32_t* const window = (volatile uint32_t*)(uintptr_t)(GUEST_IOAPIC_ADDRESS + 0x10);
  *select = index;
  *window = value;
}

void guest_ioapic_route(unsigned pin, unsigned vector) {
  ioapic_write(IOAPIC_REDIRECTION + 2 * pin + 1, 0);  /* destination: APIC ID 0 */
  ioapic_write(IOAPIC_REDIRECTION + 2 * pin, vector); /* fixed, physical, edge, high, unmasked */
}

void guest_ioapic_mask(unsigned pin) {
  ioapic_write(IOAPIC_REDIRECTION + 2 * pin, IOAPIC_MASKED);
}

static unsigned isa_irq_pin(unsigned irq) {
  return irq == 0 ? 2 : irq;
}

void guest_route_isa_irq(unsigned irq) {
  guest_ioapic_route(isa_irq_pin(irq), GUEST_ISA_VECTOR_BASE + irq);
}

void guest_unroute_isa_irq(unsigned irq) {
  guest_ioapic_mask(isa_irq_pin(irq));
}

void guest_pit_start_periodic(uint16_t count) {
  outb(PIT_COMMAND, 0x34); /* channel 0, low then high byte, mode 2, binary */
  outb(PIT_CHANNEL0, (uint8_t)count);
  outb(PIT_CHANNEL0, (uint8_t)(count >> 8));
}

void guest_pit_stop(void) {
  /* Writing the mode alone does not stop a counting channel: a one-shot (mode 0) count of 1 ends
   * the rate generator, and the output then stays high without another interrupt. */
  outb(PIT_COMMAND, 0x30);
  outb(PIT_CHANNEL0, 1);
  outb(PIT_CHANNEL0, 0);
}

void guest_wait_for_interrupt(void) {
  __asm__ volatile("sti; hlt; cli" ::: "memory");
}

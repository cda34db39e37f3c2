/* CPU discovery, AP start-up, spin locks, barriers and IPIs (guestfw/smp.h). */
#include "guestfw/smp.h"

#include "guestfw/acpi.h"
#include "guestfw/exit.h"
#include "guestfw/format.h"
#include "guestfw/interrupts.h"
#include "guestfw/smp_layout.h"
#include "guestfw/string.h"
#include "guestfw/x86.h"
#include "lapic_internal.h"

/* How long the BSP waits for an AP after each startup IPI, in PAUSE loops: generous, as TCG is
 * slow; a real CPU needs microseconds. */
#define AP_ARRIVAL_SPINS 50000000u

extern const char guestfw_ap_trampoline[];
extern const char guestfw_ap_trampoline_end[];
extern const char guestfw_ap_trampoline_gdt_pointer[];
extern const char guestfw_gdt_pointer[]; /* long_mode.S: 16-bit limit, 64-bit base */

/* Read by guestfw_ap_start32 (ap_trampoline.S): the stack of the AP being started. */
uint64_t guestfw_ap_boot_stack;
void guestfw_ap_main(void);

static uint32_t cpu_apic_ids[GUEST_MAX_CPUS];
static unsigned cpu_count;
static guest_ap_entry ap_entry;
static volatile uint32_t ap_arrived; /* the index of the last AP that signalled */
static struct {
  uint16_t limit;
  uint64_t base;
} __attribute__((packed)) bsp_idt;
static uint8_t ap_stacks[GUEST_MAX_CPUS][GUESTFW_AP_STACK_SIZE] __attribute__((aligned(16)));

unsigned guest_cpu_count(void) {
  if (cpu_count != 0) return cpu_count;
  const uint32_t bsp = guest_this_apic_id();
  cpu_apic_ids[0] = bsp;
  cpu_count = 1;
  const struct acpi_rsdp* rsdp = guest_acpi_rsdp();
  const struct acpi_header* madt = rsdp != NULL ? guest_acpi_table(rsdp, "APIC") : NULL;
  if (madt == NULL) return cpu_count;
  const uint8_t* base = (const uint8_t*)madt;
  for (uint32_t at = 44; at + 2 <= madt->length && base[at + 1] >= 2; at += base[at + 1]) {
    const uint8_t* entry = base + at;
    if (entry[0] != 0) continue; /* processor local APIC entries only */
    uint32_t flags;
    memcpy(&flags, entry + 4, sizeof flags);
    if ((flags & 1) == 0 || entry[3] == bsp) continue; /* disabled, or the BSP (index 0) */
    if (cpu_count == GUEST_MAX_CPUS) break;
    cpu_apic_ids[cpu_count++] = entry[3];
  }
  return cpu_count;
}

uint32_t guest_cpu_apic_id(unsigned cpu) {
  return cpu < GUEST_MAX_CPUS ? cpu_apic_ids[cpu] : 0;
}

uint32_t guest_this_apic_id(void) {
  return guest_lapic_read(LAPIC_ID) >> 24;
}

unsigned guest_this_cpu(void) {
  const uint32_t id = guest_this_apic_id();
  for (unsigned cpu = 0; cpu < cpu_count; ++cpu) {
    if (cpu_apic_ids[cpu] == id) return cpu;
  }
  return 0;
}

static void wait_for_icr(void) {
  while (guest_lapic_read(LAPIC_ICR_LOW) & ICR_SEND_PENDING) cpu_pause();
}

static void send_icr(uint32_t apic_id, uint32_t command) {
  wait_for_icr();
  guest_lapic_write(LAPIC_ICR_HIGH, apic_id << 24);
  guest_lapic_write(LAPIC_ICR_LOW, command); /* the write sends */
  wait_for_icr();
}

void guest_send_ipi(uint32_t apic_id, unsigned vector) {
  send_icr(apic_id, ICR_DELIVERY_FIXED | ICR_LEVEL_ASSERT | (vector & 0xff));
}

void guest_send_nmi(uint32_t apic_id) {
  send_icr(apic_id, ICR_DELIVERY_NMI | ICR_LEVEL_ASSERT);
}

void guest_spin_lock(struct guest_spinlock* lock) {
  while (__atomic_exchange_n(&lock->locked, 1, __ATOMIC_ACQUIRE) != 0) {
    while (__atomic_load_n(&lock->locked, __ATOMIC_RELAXED) != 0) cpu_pause();
  }
}

void guest_spin_unlock(struct guest_spinlock* lock) {
  __atomic_store_n(&lock->locked, 0, __ATOMIC_RELEASE);
}

void guest_barrier_wait(struct guest_barrier* barrier, unsigned count) {
  /* Read the generation before arriving: the last CPU bumps it only after everyone arrived. */
  const uint32_t generation = __atomic_load_n(&barrier->generation, __ATOMIC_ACQUIRE);
  if (__atomic_add_fetch(&barrier->arrived, 1, __ATOMIC_ACQ_REL) == count) {
    __atomic_store_n(&barrier->arrived, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&barrier->generation, generation + 1, __ATOMIC_RELEASE);
    return;
  }
  while (__atomic_load_n(&barrier->generation, __ATOMIC_ACQUIRE) == generation) cpu_pause();
}

void guestfw_ap_main(void) {
  __asm__ volatile("lidt %0" : : "m"(bsp_idt));
  guestfw_lapic_enable();
  const unsigned cpu = guest_this_cpu();
  __atomic_store_n(&ap_arrived, cpu, __ATOMIC_RELEASE);
  ap_entry(cpu);
}

static bool wait_for_arrival(unsigned cpu) {
  for (uint32_t spin = 0; spin < AP_ARRIVAL_SPINS; ++spin) {
    if (__atomic_load_n(&ap_arrived, __ATOMIC_ACQUIRE) == cpu) return true;
    cpu_pause();
  }
  return false;
}

unsigned guest_start_aps(unsigned count, guest_ap_entry entry) {
  const unsigned available = guest_cpu_count();
  if (count > available) count = available;
  const size_t size = (size_t)(guestfw_ap_trampoline_end - guestfw_ap_trampoline);
  uint8_t* const trampoline = (uint8_t*)(uintptr_t)GUESTFW_AP_TRAMPOLINE;
  memcpy(trampoline, guestfw_ap_trampoline, size);
  /* The limit and the low 32 bits of the base (the GDT is in the image, below 4 GiB). */
  memcpy(trampoline + (guestfw_ap_trampoline_gdt_pointer - guestfw_ap_trampoline),
         guestfw_gdt_pointer, 6);
  __asm__ volatile("sidt %0" : "=m"(bsp_idt));
  ap_entry = entry;
  const uint32_t startup = ICR_DELIVERY_STARTUP | (GUESTFW_AP_TRAMPOLINE >> 12);
  for (unsigned cpu = 1; cpu < count; ++cpu) {
    guestfw_ap_boot_stack = (uint64_t)(uintptr_t)(ap_stacks[cpu] + GUESTFW_AP_STACK_SIZE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    const uint32_t id = cpu_apic_ids[cpu];
    send_icr(id, ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT);
    send_icr(id, startup);
    /* The second SIPI only if the first was lost (a started CPU ignores it anyway). */
    if (!wait_for_arrival(cpu)) {
      send_icr(id, startup);
      if (!wait_for_arrival(cpu)) {
        guest_printf("guestfw: cpu %u (APIC ID %u) did not come up\n", cpu, id);
        guest_exit(GUESTFW_EXIT_TEST_FAILURE);
      }
    }
  }
  return count;
}

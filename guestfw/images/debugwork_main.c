/* debugwork.elf entry: "work=loop" (host events count these accesses), "work=cr3" (the watched
 * linear address moves to another physical page), "work=pte" (the same move by a page-table edit),
 * otherwise the test cases. */
#include "guestfw/guestfw.h"
#include "guestfw/test.h"

#define LOOP_ITERATIONS 200

extern volatile uint64_t host_write_target;
extern volatile uint64_t host_read_target;
extern volatile uint8_t host_block[];

__attribute__((noinline)) void host_exec_target(void) {
  __asm__ volatile("");
}

static void loop_workload(void) {
  uint64_t sum = 0;
  for (unsigned i = 0; i < LOOP_ITERATIONS; ++i) {
    host_write_target = i;
    sum += host_read_target;
    host_exec_target();
  }
  uint64_t count = 64;
  volatile uint8_t* destination = host_block;
  __asm__ volatile("rep stosb" : "+D"(destination), "+c"(count) : "a"(1) : "memory");
  guest_printf("loop done %lu\n", sum);
}

/* A second PML4 equal to the boot one except that the 2 MiB page at linear 2 MiB maps physical
 * 4 MiB: the linear address CR3_WATCH_LINEAR (watched by tests/debug) reaches another page. */
#define CR3_WATCH_LINEAR 0x380000ull
__attribute__((aligned(4096))) static uint64_t alt_pml4[512];
__attribute__((aligned(4096))) static uint64_t alt_pdpt[512];
__attribute__((aligned(4096))) static uint64_t alt_pd[512];

static void cr3_workload(void) {
  volatile uint64_t* const target = (volatile uint64_t*)CR3_WATCH_LINEAR;
  const uint64_t original = read_cr3();
  const uint64_t* pml4 = (const uint64_t*)(original & ~0xfffull);
  const uint64_t* pdpt = (const uint64_t*)(pml4[0] & 0x000ffffffffff000ull);
  const uint64_t* pd = (const uint64_t*)(pdpt[0] & 0x000ffffffffff000ull);
  for (int i = 0; i < 512; ++i) {
    alt_pml4[i] = pml4[i];
    alt_pdpt[i] = pdpt[i];
    alt_pd[i] = pd[i];
  }
  alt_pd[1] = pd[1] + (2ull << 20);
  alt_pdpt[0] = (pdpt[0] & 0xfff) | (uint64_t)alt_pd;
  alt_pml4[0] = (pml4[0] & 0xfff) | (uint64_t)alt_pdpt;
  *target = 1; /* hit 1, physical 0x380000 */
  __asm__ volatile("mov %0, %%cr3" : : "r"((uint64_t)alt_pml4) : "memory");
  __asm__ volatile("outb %%al, $0x80" : : "a"(0)); /* an exit: drvm sees the new CR3 */
  *target = 2;                                     /* hit 2, physical 0x580000 */
  *target = 3;                                     /* hit 3 */
  __asm__ volatile("mov %0, %%cr3" : : "r"(original) : "memory");
  __asm__ volatile("outb %%al, $0x80" : : "a"(0));
  *target = 4; /* hit 4, physical 0x380000 again */
  guest_printf("cr3 done %lu %lu\n", *(volatile uint64_t*)0x380000, *(volatile uint64_t*)0x580000);
}

/* The same move by editing the boot page directory in place, without a CR3 switch or any other
 * exit: drvm must notice the page-table write itself. */
static void pte_workload(void) {
  volatile uint64_t* const target = (volatile uint64_t*)CR3_WATCH_LINEAR;
  const uint64_t* pml4 = (const uint64_t*)(read_cr3() & ~0xfffull);
  const uint64_t* pdpt = (const uint64_t*)(pml4[0] & 0x000ffffffffff000ull);
  volatile uint64_t* pd = (volatile uint64_t*)(pdpt[0] & 0x000ffffffffff000ull);
  const uint64_t original = pd[1];
  *target = 1; /* hit 1, physical 0x380000 */
  pd[1] = original + (2ull << 20);
  __asm__ volatile("invlpg (%0)" : : "r"(CR3_WATCH_LINEAR) : "memory");
  *target = 2; /* hit 2, physical 0x580000 */
  *target = 3; /* hit 3 */
  pd[1] = original;
  __asm__ volatile("invlpg (%0)" : : "r"(CR3_WATCH_LINEAR) : "memory");
  *target = 4; /* hit 4, physical 0x380000 again */
  guest_printf("pte done %lu %lu\n", *(volatile uint64_t*)0x380000, *(volatile uint64_t*)0x580000);
}

int guest_main(void) {
  char work[16];
  if (!guest_cmdline_option("work", work, sizeof work)) return guest_run_tests();
  if (strcmp(work, "loop") == 0) {
    loop_workload();
  } else if (strcmp(work, "cr3") == 0) {
    cr3_workload();
  } else if (strcmp(work, "pte") == 0) {
    pte_workload();
  } else {
    guest_printf("debugwork: unknown work=%s\n", work);
    return 1;
  }
  return 0;
}

/* Thin wrappers over the x86 instructions guest code needs: port I/O, control, debug and model
 * specific registers. */
#pragma once

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t value) {
  __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t value) {
  __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t value) {
  __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}
static inline uint8_t inb(uint16_t port) {
  uint8_t value;
  __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}
static inline uint16_t inw(uint16_t port) {
  uint16_t value;
  __asm__ volatile("inw %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}
static inline uint32_t inl(uint16_t port) {
  uint32_t value;
  __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}

#define GUESTFW_DEFINE_READ_REGISTER(name, reg)          \
  static inline uint64_t name(void) {                    \
    uint64_t value;                                      \
    __asm__ volatile("mov %%" reg ", %0" : "=r"(value)); \
    return value;                                        \
  }
GUESTFW_DEFINE_READ_REGISTER(read_cr0, "cr0")
GUESTFW_DEFINE_READ_REGISTER(read_cr2, "cr2")
GUESTFW_DEFINE_READ_REGISTER(read_cr3, "cr3")
GUESTFW_DEFINE_READ_REGISTER(read_cr4, "cr4")
GUESTFW_DEFINE_READ_REGISTER(read_dr0, "db0")
GUESTFW_DEFINE_READ_REGISTER(read_dr1, "db1")
GUESTFW_DEFINE_READ_REGISTER(read_dr2, "db2")
GUESTFW_DEFINE_READ_REGISTER(read_dr3, "db3")
GUESTFW_DEFINE_READ_REGISTER(read_dr6, "db6")
GUESTFW_DEFINE_READ_REGISTER(read_dr7, "db7")
#undef GUESTFW_DEFINE_READ_REGISTER

#define GUESTFW_DEFINE_WRITE_REGISTER(name, reg)                  \
  static inline void name(uint64_t value) {                       \
    __asm__ volatile("mov %0, %%" reg : : "r"(value) : "memory"); \
  }
GUESTFW_DEFINE_WRITE_REGISTER(write_cr2, "cr2")
GUESTFW_DEFINE_WRITE_REGISTER(write_dr0, "db0")
GUESTFW_DEFINE_WRITE_REGISTER(write_dr1, "db1")
GUESTFW_DEFINE_WRITE_REGISTER(write_dr2, "db2")
GUESTFW_DEFINE_WRITE_REGISTER(write_dr3, "db3")
GUESTFW_DEFINE_WRITE_REGISTER(write_dr6, "db6")
GUESTFW_DEFINE_WRITE_REGISTER(write_dr7, "db7")
#undef GUESTFW_DEFINE_WRITE_REGISTER

/* DR0-DR3, DR6 and DR7 by number (any other number means DR7). */
static inline uint64_t read_dr(unsigned number) {
  switch (number) {
    case 0:
      return read_dr0();
    case 1:
      return read_dr1();
    case 2:
      return read_dr2();
    case 3:
      return read_dr3();
    case 6:
      return read_dr6();
    default:
      return read_dr7();
  }
}
static inline void write_dr(unsigned number, uint64_t value) {
  switch (number) {
    case 0:
      write_dr0(value);
      break;
    case 1:
      write_dr1(value);
      break;
    case 2:
      write_dr2(value);
      break;
    case 3:
      write_dr3(value);
      break;
    case 6:
      write_dr6(value);
      break;
    default:
      write_dr7(value);
      break;
  }
}

static inline uint16_t read_cs(void) {
  uint16_t value;
  __asm__ volatile("mov %%cs, %0" : "=r"(value));
  return value;
}
static inline uint16_t read_ss(void) {
  uint16_t value;
  __asm__ volatile("mov %%ss, %0" : "=r"(value));
  return value;
}
static inline uint64_t read_rflags(void) {
  uint64_t value;
  __asm__ volatile("pushfq; popq %0" : "=r"(value));
  return value;
}
static inline uint64_t read_rsp(void) {
  uint64_t value;
  __asm__ volatile("mov %%rsp, %0" : "=r"(value));
  return value;
}

static inline uint64_t rdmsr(uint32_t msr) {
  uint32_t low, high;
  __asm__ volatile("rdmsr" : "=a"(low), "=d"(high) : "c"(msr));
  return ((uint64_t)high << 32) | low;
}
static inline void wrmsr(uint32_t msr, uint64_t value) {
  __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)));
}

static inline void cpu_pause(void) {
  __asm__ volatile("pause");
}

#define X86_CR0_PE (1ULL << 0)
#define X86_CR0_PG (1ULL << 31)
#define X86_CR4_PAE (1ULL << 5)
#define X86_EFER_LME (1ULL << 8)
#define X86_EFER_LMA (1ULL << 10)
#define X86_RFLAGS_TF (1ULL << 8)
#define X86_RFLAGS_IF (1ULL << 9)
#define X86_RFLAGS_RF (1ULL << 16)

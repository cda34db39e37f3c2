/* drfuzz.elf: generates, runs and reports one random debug-register program per seed (drfuzz.h,
 * docs/fuzzing.md). Command line: seed=N count=M layout=all|plain|system|<category>,...
 * verbose=1 intn=high tf=0. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drfuzz.h"
#include "guestfw/guestfw.h"

#define PAGE 4096ULL
#define DR6_CLEAN 0xffff0ff0ULL
#define DR6_BS (1ULL << 14)
#define DR7_GD (1ULL << 13)

/* ---- where fuzz variables live ---- */
/* The arena: page 0 is the live PML4 (entry 0 only; the not-present entries after it are fuzz
 * variables), page 1 holds the GDT, IDT and TSS, page 2 the #DB handler's log, pages 3 and the
 * lower half of 4 a stack region for PUSH/CALL, the upper half of 4 and page 5 the stack the
 * program runs on. Structures move to seed-dependent offsets; every other byte is a fuzz
 * variable. */
#define ARENA_PAGES 6
uint8_t drfuzz_arena[ARENA_PAGES * PAGE]
    __attribute__((aligned(4096), section(".bss.drfuzz_arena")));
/* Two plain data pages (ordinary .data, nothing else on them). */
uint8_t drfuzz_plain[2 * PAGE] __attribute__((aligned(4096), section(".data.drfuzz_plain"))) = {1};

#define ARENA_PML4 (drfuzz_arena)
#define ARENA_DESCRIPTORS (drfuzz_arena + PAGE)
#define ARENA_LOG (drfuzz_arena + 2 * PAGE)
#define ARENA_STACK_REGION (drfuzz_arena + 3 * PAGE)
#define ARENA_PROGRAM_STACK_TOP (drfuzz_arena + ARENA_PAGES * PAGE)

enum category {
  CAT_PLAIN = 1 << 0,
  CAT_CODE = 1 << 1,
  CAT_PT = 1 << 2,    /* the PML4 page */
  CAT_DESC = 1 << 3,  /* the GDT/IDT/TSS page */
  CAT_LOG = 1 << 4,   /* the #DB handler's log page */
  CAT_STACK = 1 << 5, /* the stack pages */
};
#define CAT_SYSTEM (CAT_PT | CAT_DESC | CAT_LOG | CAT_STACK)

/* ---- the handlers' log (on arena page 2, at a seed-dependent offset) ---- */
#define LOG_EVENTS 16
#define RUNAWAY_EVENTS 24
#define RUNAWAY_DEPTH 3
struct event {
  uint64_t rip, dr6;
  uint16_t step;
  uint8_t vector, flags; /* flags: RF, TF as pushed */
  uint32_t reserved;
};
struct event_log {
  uint64_t ints; /* INT DRFUZZ_INT_VECTOR count */
  uint64_t rng;  /* the #DB handler's own choices */
  uint32_t count, depth, step, runaway;
  struct event events[LOG_EVENTS];
};
static struct event_log* log_;
volatile uint64_t* drfuzz_int_counter;

/* ---- randomness ---- */
static uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static uint64_t rng_state;
static uint64_t rnd(uint64_t bound) { /* 0 .. bound-1 */
  return bound == 0 ? 0 : splitmix64(&rng_state) % bound;
}
static bool chance(unsigned percent) {
  return rnd(100) < percent;
}

/* ---- ranges of fuzz variables ---- */
struct range {
  uint64_t start, end;
  bool writable;
};
#define MAX_RANGES 16
static struct range ranges[MAX_RANGES];
static unsigned range_count;

static void add_range(uint64_t start, uint64_t end, bool writable) {
  if (end <= start) return;
  /* Merge with a writable range that ends where this one starts (page-straddling accesses). */
  if (range_count > 0 && ranges[range_count - 1].end == start &&
      ranges[range_count - 1].writable == writable) {
    ranges[range_count - 1].end = end;
    return;
  }
  if (range_count < MAX_RANGES) ranges[range_count++] = (struct range){start, end, writable};
}

static const struct range* range_of(uint64_t address, uint64_t size) {
  for (unsigned i = 0; i < range_count; ++i)
    if (address >= ranges[i].start && address + size <= ranges[i].end) return &ranges[i];
  return NULL;
}

static const struct range* random_range(bool writable) {
  unsigned candidates = 0;
  for (unsigned i = 0; i < range_count; ++i) candidates += !writable || ranges[i].writable;
  if (candidates == 0) return NULL;
  unsigned pick = (unsigned)rnd(candidates);
  for (unsigned i = 0; i < range_count; ++i)
    if (!writable || ranges[i].writable) {
      if (pick == 0) return &ranges[i];
      --pick;
    }
  return NULL;
}

/* ---- the program ---- */
enum step_kind {
  STEP_STORE,
  STEP_LOAD,
  STEP_ADD,
  STEP_STRADDLE_PAGE,
  STEP_REP_MOVSB,
  STEP_REP_STOSB,
  STEP_REP_STOSQ,
  STEP_PUSH_POP,
  STEP_CALL_RET,
  STEP_PUSH_POP_MEMORY,
  STEP_UD2,
  STEP_DIVIDE,
  STEP_INT3,
  STEP_INT_N,
  STEP_CODE,
  STEP_IRET_CODE,
  STEP_SINGLE_STEP,
  STEP_READ_DRS,
  STEP_WRITE_DR7,
  STEP_KINDS,
};
static const char* const step_names[STEP_KINDS] = {
    "store", "load", "add",  "straddle", "movsb", "stosb", "stosq", "push",   "call",     "pushm",
    "ud2",   "div0", "int3", "intn",     "code",  "iret",  "tf",    "readdr", "writedr7",
};

struct step {
  uint8_t kind, size, direction, code;
  uint8_t touched; /* bit 0: address, bit 1: extra is a writable fuzz variable (for the checksum) */
  uint32_t count;
  uint64_t address, value, extra;
};

struct watch {
  uint64_t address; /* as written to DRn (maybe unaligned) */
  uint8_t type;     /* 0 execute, 1 write, 3 read/write; 0xff: slot unused */
  uint8_t length;
};

#define MAX_STEPS 14
struct program {
  uint64_t seed;
  uint64_t dr6_initial, dr7, dr7_rewrite;
  struct watch watches[4];
  unsigned step_count;
  struct step steps[MAX_STEPS];
};
static struct program program;
static uint64_t checksum;
static unsigned categories = CAT_PLAIN | CAT_CODE | CAT_SYSTEM;
static bool verbose;
static bool int_high; /* intn=high */
/* tf=0 clears it: the same programs, with POPF and IRETQ leaving TF clear. */
static bool trap_flag = true;

static void mix(uint64_t value) {
  checksum = (checksum ^ value) * 0x100000001b3ULL;
  checksum ^= checksum >> 29;
}

/* ---- descriptor tables in the arena ---- */
struct table_register {
  uint16_t limit;
  uint64_t base;
} __attribute__((packed));
#define IDT_VECTORS 48
#define GDT_BYTES 40 /* null, code, data, 16-byte TSS descriptor */
#define IDT_BYTES (IDT_VECTORS * 16)
#define TSS_BYTES 104
#define TSS_SELECTOR 0x18
extern const uint64_t guestfw_exception_stubs[32];
extern const uint64_t guestfw_pml4[512];

/* One REP STOSB: under --exact every instruction is a VM exit, a byte loop thousands. */
static void fill_bytes(void* destination, uint8_t value, uint64_t size) {
  __asm__ volatile("rep stosb" : "+D"(destination), "+c"(size) : "a"(value) : "memory");
}

static void write_gate(uint64_t* gate, uint64_t handler) {
  gate[0] =
      (handler & 0xffff) | (0x08ULL << 16) | (0x8eULL << 40) | ((handler >> 16) & 0xffff) << 48;
  gate[1] = handler >> 32;
}

/* Places the GDT, IDT, TSS and log at seed-dependent offsets, fills every fuzz variable with a seed
 * pattern and loads the tables. Runs with every guest breakpoint disarmed. */
static void build_arena(uint64_t seed) {
  const uint64_t pattern = splitmix64(&(uint64_t){seed ^ 0x5a5a}) & ~1ULL;
  uint64_t* fill_start = (uint64_t*)(ARENA_PML4 + 16);
  const uint64_t fill_quads = ((ARENA_PAGES - 1) * PAGE + PAGE - 16) / 8;
  __asm__ volatile("rep stosq"
                   : "+D"(fill_start), "+c"((uint64_t){fill_quads})
                   : "a"(pattern)
                   : "memory");
  uint64_t* plain = (uint64_t*)drfuzz_plain;
  __asm__ volatile("rep stosq"
                   : "+D"(plain), "+c"((uint64_t){2 * PAGE / 8})
                   : "a"(~pattern)
                   : "memory");

  /* Page 1: 16 chunks of 256 bytes; the IDT takes 3 consecutive ones, the GDT and TSS one each. */
  const uint64_t idt_chunk = rnd(14);
  uint64_t gdt_chunk, tss_chunk;
  do gdt_chunk = rnd(16);
  while (gdt_chunk >= idt_chunk && gdt_chunk < idt_chunk + 3);
  do tss_chunk = rnd(16);
  while ((tss_chunk >= idt_chunk && tss_chunk < idt_chunk + 3) || tss_chunk == gdt_chunk);
  const uint64_t idt = (uint64_t)ARENA_DESCRIPTORS + idt_chunk * 256; /* exactly 3 chunks */
  const uint64_t gdt =
      (uint64_t)ARENA_DESCRIPTORS + gdt_chunk * 256 + 8 * rnd((256 - GDT_BYTES) / 8);
  const uint64_t tss =
      (uint64_t)ARENA_DESCRIPTORS + tss_chunk * 256 + 8 * rnd((256 - TSS_BYTES) / 8);
  const uint64_t log = (uint64_t)ARENA_LOG + 64 * rnd((PAGE - sizeof(struct event_log)) / 64);

  uint64_t* const g = (uint64_t*)gdt;
  g[0] = 0;
  g[1] = 0x00af9b000000ffffULL; /* 64-bit code, accessed already (no descriptor write on loads) */
  g[2] = 0x00cf93000000ffffULL; /* flat data, accessed already */
  g[3] = (TSS_BYTES - 1) | (tss & 0xffffff) << 16 | 0x89ULL << 40 | ((tss >> 24) & 0xff) << 56;
  g[4] = tss >> 32;
  uint64_t* const gates = (uint64_t*)idt;
  fill_bytes(gates, 0, IDT_BYTES);
  for (unsigned vector = 0; vector < 32; ++vector)
    write_gate(&gates[2 * vector], guestfw_exception_stubs[vector]);
  write_gate(&gates[2 * DRFUZZ_INT_VECTOR], (uint64_t)drfuzz_int_n_handler);
  write_gate(&gates[2 * DRFUZZ_INT_VECTOR_HIGH], (uint64_t)drfuzz_int_n_handler);
  fill_bytes((void*)tss, 0, TSS_BYTES);
  ((uint16_t*)tss)[51] = TSS_BYTES; /* I/O map base: none */

  log_ = (struct event_log*)log;
  fill_bytes(log_, 0, sizeof *log_);
  log_->rng = seed * 0x2545f4914f6cdd1dULL + 1;
  drfuzz_int_counter = &log_->ints;

  const struct table_register gdtr = {GDT_BYTES - 1, gdt};
  const struct table_register idtr = {IDT_BYTES - 1, idt};
  drfuzz_load_tables(&gdtr, &idtr, TSS_SELECTOR);

  /* The fuzz variables of the enabled categories, in address order (so neighbours merge). */
  range_count = 0;
  if (categories & CAT_CODE)
    add_range((uint64_t)drfuzz_code_start, (uint64_t)drfuzz_code_end, false);
  if (categories & CAT_PLAIN)
    add_range((uint64_t)drfuzz_plain, (uint64_t)drfuzz_plain + 2 * PAGE, true);
  const uint64_t arena = (uint64_t)drfuzz_arena;
  if (categories & CAT_PT) add_range(arena + 16, arena + PAGE, true);
  if (categories & CAT_DESC) {
    /* Page 1 minus the three structures, in address order. */
    uint64_t starts[3] = {gdt, idt, tss},
             ends[3] = {gdt + GDT_BYTES, idt + IDT_BYTES, tss + TSS_BYTES};
    for (unsigned i = 0; i < 3; ++i)
      for (unsigned j = i + 1; j < 3; ++j)
        if (starts[j] < starts[i]) {
          uint64_t t = starts[i];
          starts[i] = starts[j];
          starts[j] = t;
          t = ends[i];
          ends[i] = ends[j];
          ends[j] = t;
        }
    uint64_t cursor = arena + PAGE;
    for (unsigned i = 0; i < 3; ++i) {
      add_range(cursor, starts[i], true);
      cursor = ends[i];
    }
    add_range(cursor, arena + 2 * PAGE, true);
  }
  if (categories & CAT_LOG) {
    add_range(arena + 2 * PAGE, log, true);
    add_range(log + sizeof(struct event_log), arena + 3 * PAGE, true);
  }
  if (categories & CAT_STACK) add_range(arena + 3 * PAGE, arena + 4 * PAGE + PAGE / 2, true);
}

/* ---- exception handlers: log vector, RIP, DR6, step ---- */
static void record(unsigned vector, const struct guest_frame* frame, uint64_t dr6) {
  const uint32_t index = log_->count++;
  if (index < LOG_EVENTS)
    log_->events[index] = (struct event){
        .rip = frame->rip,
        .dr6 = dr6,
        .step = (uint16_t)log_->step,
        .vector = (uint8_t)vector,
        .flags = (uint8_t)(((frame->rflags & X86_RFLAGS_RF) ? 1 : 0) |
                           ((frame->rflags & X86_RFLAGS_TF) ? 2 : 0)),
    };
}

static uint64_t enabled_execute_slots(uint64_t dr7) {
  uint64_t slots = 0;
  for (unsigned slot = 0; slot < 4; ++slot)
    if ((dr7 & (3ULL << (2 * slot))) != 0 && ((dr7 >> (16 + 4 * slot)) & 3) == 0)
      slots |= 1ULL << slot;
  return slots;
}

static bool on_debug(struct guest_frame* frame) {
  const uint64_t dr6 = read_dr6();
  write_dr6(DR6_CLEAN);
  const uint64_t dr7 = read_dr7();
  ++log_->depth;
  record(1, frame, dr6);
  /* An instruction breakpoint refaults forever without RF; for traps RF is the handler's choice
   * (it hides an instruction breakpoint on the next instruction). */
  if ((dr6 & enabled_execute_slots(dr7)) != 0 || splitmix64(&log_->rng) % 4 == 0)
    frame->rflags |= X86_RFLAGS_RF;
  if (log_->count >= RUNAWAY_EVENTS || log_->depth > RUNAWAY_DEPTH) {
    write_dr7(0);
    frame->rflags &= ~X86_RFLAGS_TF;
    log_->runaway = 1;
  }
  --log_->depth;
  return true;
}

static bool on_skip_two_bytes(struct guest_frame* frame) { /* ud2, div %ecx */
  record((unsigned)frame->vector, frame, 0);
  frame->rip += 2;
  return true;
}

static bool on_breakpoint(struct guest_frame* frame) {
  record(3, frame, 0);
  return true;
}

/* ---- generating a program ---- */
static const struct watch* data_watch(void) {
  unsigned candidates = 0;
  for (unsigned slot = 0; slot < 4; ++slot)
    candidates += program.watches[slot].type == 1 || program.watches[slot].type == 3;
  if (candidates == 0) return NULL;
  unsigned pick = (unsigned)rnd(candidates);
  for (unsigned slot = 0; slot < 4; ++slot)
    if (program.watches[slot].type == 1 || program.watches[slot].type == 3) {
      if (pick == 0) return &program.watches[slot];
      --pick;
    }
  return NULL;
}

/* An address for an access of size bytes: usually overlapping or next to a watched range, else
 * anywhere among the fuzz variables; half of them unaligned. 0 when there is none. */
static uint64_t pick_address(uint64_t size, bool writable) {
  const struct watch* watch = data_watch();
  const struct range* range = NULL;
  uint64_t address = 0;
  if (watch != NULL && chance(70)) {
    const uint64_t base = watch->address & ~(uint64_t)(watch->length - 1);
    range = range_of(base, watch->length);
    if (range != NULL && writable && !range->writable) range = NULL;
    if (range != NULL) address = base - size + rnd(watch->length + 2 * size);
  }
  if (range == NULL) {
    range = random_range(writable);
    if (range == NULL || range->end - range->start < size + 16) return 0;
    address = range->start + rnd(range->end - range->start);
  }
  if (chance(50)) address &= ~(size - 1);
  /* A range shorter than the access (a small run of fuzz variables between structures) would
   * put it over a structure's own bytes: no access then. */
  if (range->end - range->start < size) return 0;
  if (address < range->start) address = range->start;
  if (address + size > range->end) address = range->end - size;
  return address;
}

/* A stack for PUSH/CALL in the arena's stack region (layout category "stack"): at least 0xa00 bytes
 * of fuzz variables below it take the exception frames of nested #DBs. Next to a watch when
 * possible. */
#define STACK_HEADROOM 0xa00
static uint64_t pick_stack(void) {
  if ((categories & CAT_STACK) == 0) return 0;
  const uint64_t low = (uint64_t)ARENA_STACK_REGION + STACK_HEADROOM;
  const uint64_t high = (uint64_t)ARENA_STACK_REGION + PAGE + PAGE / 2 - 16;
  const struct watch* watch = data_watch();
  if (watch != NULL && chance(70)) {
    const uint64_t stack = (watch->address & ~7ULL) + 8 * (1 + rnd(2));
    if (stack >= low && stack <= high) return stack;
  }
  return (low + rnd(high - low)) & ~7ULL;
}

static uint64_t code_insn_count(void) {
  return (uint64_t)(drfuzz_code_insns_end - drfuzz_code_insns);
}

static unsigned code_function_of(uint64_t address) {
  unsigned found = 0;
  for (unsigned k = 0; k < 8; ++k)
    if ((uint64_t)drfuzz_code_functions[k] <= address) found = k;
  return found;
}

/* Where the host-side fuzz drivers put their events (keep in step with kHostEvents in
 * tests/fuzz/drfuzz_differential_test.cpp and scripts/fuzz-engines.sh). */
#define HOT_ADDRESSES 6
static uint64_t hot_address(uint64_t index) {
  const uint64_t arena = (uint64_t)drfuzz_arena, plain = (uint64_t)drfuzz_plain;
  const uint64_t addresses[HOT_ADDRESSES] = {
      plain + 0x100,  plain + 0x1000,           arena + 0x800,
      arena + 0x2ff8, arena + 3 * PAGE + 0xc00, arena + 4 * PAGE + 0x100};
  return addresses[index];
}

static void generate_watches(void) {
  uint64_t dr7 = 1ULL << 10;
  for (unsigned slot = 0; slot < 4; ++slot) {
    struct watch* watch = &program.watches[slot];
    *watch = (struct watch){.address = 0, .type = 0xff, .length = 1};
    if (chance(20)) continue;
    const unsigned type_roll = (unsigned)rnd(100);
    if (type_roll < 25 && (categories & CAT_CODE)) {
      watch->type = 0;
      watch->length = 1;
      watch->address = drfuzz_code_insns[rnd(code_insn_count())] + (chance(10) ? 1 : 0);
    } else {
      watch->type = type_roll < 60 ? 1 : 3;
      watch->length = (uint8_t)(1u << rnd(4));
      const struct range* range = random_range(watch->type == 1);
      if (range == NULL) {
        watch->type = 0xff;
        continue;
      }
      /* The masked range lies among fuzz variables: never on a structure's own bytes. Some watches
       * go to the addresses scripts/fuzz-engines.sh and tests/fuzz put host events on. */
      uint64_t base = range->start + rnd(range->end - range->start - 8);
      if (chance(20)) {
        const uint64_t hot = hot_address(rnd(HOT_ADDRESSES));
        const struct range* hot_range = range_of(hot, 8);
        if (hot_range != NULL && (hot_range->writable || watch->type == 3)) {
          range = hot_range;
          base = hot;
        }
      }
      base = (base + watch->length - 1) & ~(uint64_t)(watch->length - 1);
      if (base + watch->length > range->end) base -= watch->length;
      watch->address = base + (chance(15) ? rnd(watch->length) : 0);
    }
    const uint64_t length_bits = watch->length == 8   ? 2
                                 : watch->length == 4 ? 3
                                                      : watch->length - 1;
    dr7 |= ((uint64_t)watch->type | length_bits << 2) << (16 + 4 * slot);
    const unsigned enable = (unsigned)rnd(10);
    if (enable < 4)
      dr7 |= 1ULL << (2 * slot);
    else if (enable < 8)
      dr7 |= 2ULL << (2 * slot);
    else if (enable < 9)
      dr7 |= 3ULL << (2 * slot);
  }
  if (chance(30)) dr7 |= 1ULL << 8; /* LE */
  if (chance(30)) dr7 |= 1ULL << 9; /* GE */
  if (chance(8)) dr7 |= DR7_GD;
  program.dr7 = dr7;
  /* The mid-program rewrite toggles one slot's enables. */
  program.dr7_rewrite = (dr7 & ~DR7_GD) ^ (3ULL << (2 * rnd(4)));
  program.dr6_initial = DR6_CLEAN;
  if (chance(10)) program.dr6_initial |= rnd(16) | (chance(50) ? DR6_BS : 0);
}

static void generate_step(struct step* step) {
  *step = (struct step){.kind = (uint8_t)rnd(STEP_KINDS), .value = splitmix64(&rng_state)};
  switch (step->kind) {
    case STEP_STORE:
    case STEP_LOAD:
    case STEP_ADD:
      step->size = step->kind == STEP_ADD ? 4 : (uint8_t)(1u << rnd(4));
      step->address = pick_address(step->size, step->kind != STEP_LOAD);
      break;
    case STEP_STRADDLE_PAGE: {
      /* An 8-byte store or load over a page boundary inside a run of fuzz variables. */
      step->size = 8;
      step->direction = (uint8_t)rnd(2); /* 0 store, 1 load */
      unsigned found = 0;
      for (unsigned i = 0; i < range_count; ++i) {
        const uint64_t boundary = (ranges[i].start + 8 + PAGE - 1) & ~(PAGE - 1);
        if (ranges[i].writable && boundary + 8 <= ranges[i].end && rnd(++found) == 0)
          step->address = boundary - 1 - rnd(7);
      }
      break;
    }
    case STEP_REP_MOVSB:
    case STEP_REP_STOSB:
    case STEP_REP_STOSQ: {
      const uint64_t element = step->kind == STEP_REP_STOSQ ? 8 : 1;
      step->count = (uint32_t)(1 + rnd(step->kind == STEP_REP_STOSQ ? 6 : 12));
      step->direction = (uint8_t)rnd(2);
      const uint64_t bytes = step->count * element;
      const uint64_t start = pick_address(bytes, true);
      /* With DF = 1 the instruction starts at the last element and walks down. */
      step->address = start == 0 ? 0 : step->direction ? start + bytes - element : start;
      if (step->kind == STEP_REP_MOVSB) {
        const uint64_t source = pick_address(bytes, true);
        step->extra = source == 0 ? 0 : step->direction ? source + bytes - 1 : source;
        if (step->extra == 0) step->address = 0;
        /* Overlapping copies are fine (byte by byte either way). */
      }
      break;
    }
    case STEP_PUSH_POP:
    case STEP_CALL_RET:
    case STEP_PUSH_POP_MEMORY:
      step->extra = pick_stack();
      step->address = pick_address(8, true);
      if (step->extra == 0) step->address = 0;
      break;
    case STEP_CODE:
    case STEP_IRET_CODE: {
      /* Usually the function an instruction breakpoint watches. */
      step->code = (uint8_t)rnd(8);
      for (unsigned slot = 0; slot < 4; ++slot)
        if (program.watches[slot].type == 0 && chance(60))
          step->code = (uint8_t)code_function_of(program.watches[slot].address);
      step->address = pick_address(8, true);
      step->extra = (chance(50) ? X86_RFLAGS_RF : 0) | (chance(30) ? X86_RFLAGS_TF : 0);
      break;
    }
    case STEP_SINGLE_STEP:
      step->address = pick_address(8, true);
      break;
    default:
      step->address = 1; /* needs no address */
      break;
  }
}

static void generate(uint64_t seed) {
  program.seed = seed;
  generate_watches();
  program.step_count = 4 + (unsigned)rnd(MAX_STEPS - 3);
  for (unsigned i = 0; i < program.step_count; ++i) {
    struct step* step = &program.steps[i];
    generate_step(step);
    const struct range* range = range_of(step->address & ~7ULL, 16);
    step->touched = range != NULL && range->writable;
    range = range_of(step->extra & ~7ULL, 16);
    step->touched |= (range != NULL && range->writable) << 1;
  }
}

/* ---- running it (on the arena stack, breakpoints armed) ---- */
static void run_step(const struct step* step) {
  volatile void* const address = (volatile void*)step->address;
  switch (step->kind) {
    case STEP_STORE:
      if (step->size == 1) drfuzz_store1(address, step->value);
      if (step->size == 2) drfuzz_store2(address, step->value);
      if (step->size == 4) drfuzz_store4(address, step->value);
      if (step->size == 8) drfuzz_store8(address, step->value);
      break;
    case STEP_LOAD: {
      uint64_t value = 0;
      if (step->size == 1) value = drfuzz_load1(address);
      if (step->size == 2) value = drfuzz_load2(address);
      if (step->size == 4) value = drfuzz_load4(address);
      if (step->size == 8) value = drfuzz_load8(address);
      /* Code bytes may read as a planted INT3 under drvm's default engines (a documented
       * limitation), so only data values count. */
      if (range_of(step->address, step->size)->writable) mix(value);
      break;
    }
    case STEP_ADD:
      drfuzz_add4(address, step->value);
      break;
    case STEP_STRADDLE_PAGE:
      if (step->direction)
        mix(drfuzz_load8(address));
      else
        drfuzz_store8(address, step->value);
      break;
    case STEP_REP_MOVSB:
      drfuzz_rep_movsb(address, (const volatile void*)step->extra, step->count, step->direction);
      break;
    case STEP_REP_STOSB:
      drfuzz_rep_stosb(address, step->value, step->count, step->direction);
      break;
    case STEP_REP_STOSQ:
      drfuzz_rep_stosq(address, step->value, step->count, step->direction);
      break;
    case STEP_PUSH_POP:
      drfuzz_push_pop(step->extra, step->value);
      break;
    case STEP_CALL_RET:
      drfuzz_call_ret(step->extra);
      break;
    case STEP_PUSH_POP_MEMORY:
      drfuzz_push_pop_memory(step->extra, 0, address);
      break;
    case STEP_UD2:
      drfuzz_ud2();
      break;
    case STEP_DIVIDE:
      drfuzz_divide_by_zero();
      break;
    case STEP_INT3:
      drfuzz_int3();
      break;
    case STEP_INT_N:
      if (int_high)
        drfuzz_int_n_high();
      else
        drfuzz_int_n();
      break;
    case STEP_CODE:
      mix(drfuzz_code_functions[step->code](address, step->value));
      break;
    case STEP_IRET_CODE:
      mix(drfuzz_iret_call((uint64_t)drfuzz_code_functions[step->code],
                           trap_flag ? step->extra : step->extra & ~X86_RFLAGS_TF, address));
      break;
    case STEP_SINGLE_STEP:
      if (trap_flag) {
        drfuzz_single_step(address, step->value);
      } else {
        drfuzz_store8(address, step->value);
        mix(drfuzz_load8(address));
      }
      break;
    case STEP_READ_DRS:
      mix(read_dr0());
      mix(read_dr1());
      mix(read_dr2());
      mix(read_dr3());
      mix(read_dr6());
      mix(read_dr7());
      break;
    case STEP_WRITE_DR7:
      if (!log_->runaway) write_dr7(program.dr7_rewrite);
      break;
    default:
      break;
  }
}

static void run_armed(void* unused) {
  (void)unused;
  write_dr6(program.dr6_initial);
  for (unsigned slot = 0; slot < 4; ++slot) write_dr(slot, program.watches[slot].address);
  write_dr7(program.dr7);
  for (unsigned i = 0; i < program.step_count; ++i) {
    log_->step = i + 1;
    if (program.steps[i].address != 0) run_step(&program.steps[i]);
  }
  log_->step = program.step_count + 1;
  write_dr7(0); /* with GD still set this is the MOV that faults */
  write_dr6(DR6_CLEAN);
  for (unsigned slot = 0; slot < 4; ++slot) write_dr(slot, 0);
}

/* ---- reporting: lines built in a buffer and written with one REP OUTSB, because under --exact
 * every guest instruction is a VM exit and guest_printf costs dozens per character ---- */
static char line[160];
static unsigned line_length;
/* A literal in one REP MOVSB. */
#define PUT(literal) put_bytes(literal, sizeof(literal) - 1)
static void put_bytes(const char* text, uint64_t size) {
  char* destination = line + line_length;
  line_length += (unsigned)size;
  __asm__ volatile("rep movsb" : "+D"(destination), "+S"(text), "+c"(size) : : "memory");
}
static void put(const char* text) {
  while (*text != '\0' && line_length < sizeof line - 1) line[line_length++] = *text++;
}
static void put_hex(uint64_t value) {
  char digits[16];
  unsigned n = 0;
  do digits[n++] = "0123456789abcdef"[value & 15];
  while ((value >>= 4) != 0);
  PUT("0x");
  while (n > 0 && line_length < sizeof line - 1) line[line_length++] = digits[--n];
}
static void put_dec(uint64_t value) {
  char digits[20];
  unsigned n = 0;
  do digits[n++] = (char)('0' + value % 10);
  while ((value /= 10) != 0);
  while (n > 0 && line_length < sizeof line - 1) line[line_length++] = digits[--n];
}
static void start_line(const char* what) {
  line_length = 0;
  PUT("seed ");
  put_dec(program.seed);
  PUT(" ");
  put(what);
}
static void end_line(void) {
  line[line_length++] = '\n';
  const char* data = line;
  uint64_t count = line_length;
  __asm__ volatile("rep outsb" : "+S"(data), "+c"(count) : "d"(0x3f8) : "memory");
}
static void put_flags(uint8_t flags) {
  PUT(" fl=");
  put((flags & 1) ? "R" : "-");
  put((flags & 2) ? "T" : "-");
}

/* ---- reporting ---- */
static const char* vector_name(unsigned vector) {
  switch (vector) {
    case 0:
      return "de";
    case 1:
      return "db";
    case 3:
      return "bp";
    case 6:
      return "ud";
    default:
      return "??";
  }
}

static void print_program(void) {
  guest_printf("seed %lu program dr7=%#lx dr6=%#lx", program.seed, program.dr7,
               program.dr6_initial);
  for (unsigned slot = 0; slot < 4; ++slot)
    guest_printf(" dr%u=%#lx", slot, program.watches[slot].address);
  guest_printf("\n");
  for (unsigned i = 0; i < program.step_count; ++i) {
    const struct step* s = &program.steps[i];
    guest_printf("seed %lu step %u %s size=%u count=%u df=%u code=%u address=%#lx extra=%#lx\n",
                 program.seed, i + 1, step_names[s->kind], s->size, s->count, s->direction, s->code,
                 s->address, s->extra);
  }
}

static void report(void) {
  /* The fuzz variables every step touched, and the watched ones, as they ended up. */
  for (unsigned i = 0; i < program.step_count; ++i) {
    const struct step* s = &program.steps[i];
    if (s->touched & 1) {
      mix(*(volatile uint64_t*)(s->address & ~7ULL));
      mix(*(volatile uint64_t*)((s->address & ~7ULL) + 8));
    }
    if (s->touched & 2) {
      mix(*(volatile uint64_t*)(s->extra & ~7ULL));
      mix(*(volatile uint64_t*)((s->extra & ~7ULL) + 8));
    }
  }
  const unsigned logged = log_->count < LOG_EVENTS ? log_->count : LOG_EVENTS;
  for (unsigned i = 0; i < logged; ++i) {
    const struct event* e = &log_->events[i];
    mix(e->rip);
    mix(e->dr6);
    start_line(vector_name(e->vector));
    PUT(" step=");
    put_dec(e->step);
    PUT(" rip=");
    put_hex(e->rip);
    if (e->vector == 1) {
      PUT(" dr6=");
      put_hex(e->dr6);
    }
    put_flags(e->flags);
    end_line();
  }
  start_line("end events=");
  put_dec(log_->count);
  PUT(" ints=");
  put_dec(log_->ints);
  PUT(" runaway=");
  put_dec(log_->runaway);
  PUT(" sum=");
  put_hex(checksum);
  end_line();
}

/* ---- command line ---- */
static bool parse_layout(const char* text) {
  static const struct {
    const char* name;
    unsigned bits;
  } names[] = {
      {"all", CAT_PLAIN | CAT_CODE | CAT_SYSTEM},
      {"plain", CAT_PLAIN | CAT_CODE},
      {"system", CAT_SYSTEM},
      {"data", CAT_PLAIN},
      {"code", CAT_CODE},
      {"pt", CAT_PT},
      {"desc", CAT_DESC},
      {"log", CAT_LOG},
      {"stack", CAT_STACK},
  };
  categories = 0;
  while (*text != '\0') {
    size_t length = 0;
    while (text[length] != '\0' && text[length] != ',') ++length;
    bool known = false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
      if (strlen(names[i].name) == length && strncmp(names[i].name, text, length) == 0) {
        categories |= names[i].bits;
        known = true;
      }
    if (!known) return false;
    text += length;
    if (*text == ',') ++text;
  }
  return categories != 0;
}

int guest_main(void) {
  char buffer[64];
  const uint64_t seed = guest_cmdline_number("seed", 0);
  const uint64_t count = guest_cmdline_number("count", 1);
  if (guest_cmdline_option("layout", buffer, sizeof buffer) && !parse_layout(buffer)) {
    guest_printf(
        "drfuzz: unknown layout '%s' (all, plain, system, data, code, pt, desc, log, stack)\n",
        buffer);
    return 1;
  }
  verbose = guest_cmdline_option("verbose", buffer, sizeof buffer) && buffer[0] == '1';
  int_high = guest_cmdline_option("intn", buffer, sizeof buffer) && strcmp(buffer, "high") == 0;
  trap_flag = !(guest_cmdline_option("tf", buffer, sizeof buffer) && buffer[0] == '0');

  /* The PML4 moves into the arena: its first entry maps everything, the rest are fuzz variables. */
  ((uint64_t*)ARENA_PML4)[0] = guestfw_pml4[0];
  ((uint64_t*)ARENA_PML4)[1] = 0;
  drfuzz_set_cr3((uint64_t)ARENA_PML4);
  guest_set_exception_handler(X86_VECTOR_DB, on_debug);
  guest_set_exception_handler(X86_VECTOR_BP, on_breakpoint);
  guest_set_exception_handler(X86_VECTOR_UD, on_skip_two_bytes);
  guest_set_exception_handler(X86_VECTOR_DE, on_skip_two_bytes);

  for (uint64_t n = 0; n < count; ++n) {
    rng_state = seed + n;
    checksum = 0xcbf29ce484222325ULL;
    build_arena(seed + n);
    generate(seed + n);
    if (verbose) print_program();
    drfuzz_on_stack(run_armed, NULL, (uint64_t)ARENA_PROGRAM_STACK_TOP - 16 * rnd(8));
    report();
  }
  guest_printf("drfuzz: %lu programs\n", count);
  return 0;
}

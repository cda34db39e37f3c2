/* drfuzz.elf: the accesses a fuzz program is made of (one function per kind, each a few
 * instructions), the code its instruction breakpoints watch, and the helpers that move the CPU onto
 * the image's own GDT, IDT, TSS and stack (drfuzz.h). */

#define TF 0x100
/* drfuzz.h DRFUZZ_INT_VECTOR and DRFUZZ_INT_VECTOR_HIGH: gates in the image's IDT. */
#define DRFUZZ_INT_VECTOR 0x1f
#define DRFUZZ_INT_VECTOR_HIGH 0x21

  .text
  .code64

#include "guestfw/asm_labels.inc"

/* ---- plain loads and stores: RDI = address, RSI = value ---- */
function drfuzz_store1
  mov %sil, (%rdi)
  ret
function drfuzz_store2
  mov %si, (%rdi)
  ret
function drfuzz_store4
  mov %esi, (%rdi)
  ret
function drfuzz_store8
  mov %rsi, (%rdi)
  ret
function drfuzz_load1
  movzbl (%rdi), %eax
  ret
function drfuzz_load2
  movzwl (%rdi), %eax
  ret
function drfuzz_load4
  mov (%rdi), %eax
  ret
function drfuzz_load8
  mov (%rdi), %rax
  ret
/* One read-modify-write instruction. */
function drfuzz_add4
  add %esi, (%rdi)
  ret

/* ---- REP strings: RDI = destination, RSI = source or value, RDX = count, RCX = DF ---- */
function drfuzz_rep_movsb
  test %rcx, %rcx
  jz 1f
  std
1:
  mov %rdx, %rcx
  rep movsb
  cld
  ret
function drfuzz_rep_stosb
  test %rcx, %rcx
  jz 1f
  std
1:
  mov %rsi, %rax
  mov %rdx, %rcx
  rep stosb
  cld
  ret
function drfuzz_rep_stosq
  test %rcx, %rcx
  jz 1f
  std
1:
  mov %rsi, %rax
  mov %rdx, %rcx
  rep stosq
  cld
  ret

/* ---- the stack: RDI = the RSP to use (among fuzz variables), RSI = value, RDX = address ---- */
function drfuzz_push_pop
  mov %rsp, %rax
  mov %rdi, %rsp
  push %rsi
  push %rsi
  pop %rcx
  pop %rcx
  mov %rax, %rsp
  ret
function drfuzz_call_ret
  mov %rsp, %rax
  mov %rdi, %rsp
  call 1f
  jmp 2f
1:
  ret
2:
  mov %rax, %rsp
  ret
/* push (RDX) then pop (RDX): a memory read and a stack write, a stack read and a memory write. */
function drfuzz_push_pop_memory
  mov %rsp, %rax
  mov %rdi, %rsp
  pushq (%rdx)
  popq (%rdx)
  mov %rax, %rsp
  ret

/* ---- exceptions; the handlers move RIP past ud2 and div (2 bytes each) ---- */
function drfuzz_ud2
  ud2
  ret
function drfuzz_divide_by_zero
  xor %ecx, %ecx
  mov $1, %eax
  xor %edx, %edx
  div %ecx
  ret
function drfuzz_int3
  int3
  ret
function drfuzz_int_n
  int $DRFUZZ_INT_VECTOR
  ret
function drfuzz_int_n_high
  int $DRFUZZ_INT_VECTOR_HIGH
  ret

/* The handler of both INT n vectors: counts, returns. RAX is saved; the counter is the log's
 * `ints` field, on the arena page the #DB handler's log shares with fuzz variables. */
function drfuzz_int_n_handler
  push %rax
  mov drfuzz_int_counter(%rip), %rax
  incq (%rax)
  pop %rax
  iretq

/* ---- IRETQ into code: RDI = target (one of drfuzz_code_*), RSI = RFLAGS bits to add (RF, TF),
 * RDX = the target's RDI. The target returns to 1: through the address pushed below. ---- */
function drfuzz_iret_call
  push %rbp
  mov %rsp, %rbp
  mov %rdi, %rax
  mov %rdx, %rdi
  lea 1f(%rip), %rcx
  push %rcx
  mov %rsp, %rcx
  pushq $0x10
  push %rcx
  pushfq
  or %rsi, (%rsp)
  pushq $0x08
  push %rax
  iretq
1:
  pushfq
  andq $~TF, (%rsp)
  popfq
  leave
  ret

/* ---- TF set by POPF around a nop, a store and a load: RDI = address, RSI = value ---- */
function drfuzz_single_step
  pushfq
  orq $TF, (%rsp)
  popfq
  nop
  mov %rsi, (%rdi)
  mov (%rdi), %rax
  pushfq
  andq $~TF, (%rsp)
  popfq
  ret

/* ---- RDI = function, RSI = its argument, RDX = the stack top to run it on ---- */
function drfuzz_on_stack
  push %rbp
  mov %rsp, %rbp
  mov %rdx, %rsp
  mov %rdi, %rax
  mov %rsi, %rdi
  call *%rax
  mov %rbp, %rsp
  pop %rbp
  ret

/* ---- RDI = GDTR image, RSI = IDTR image, EDX = TSS selector (0: none). Reloads every segment
 * register from the new GDT. ---- */
function drfuzz_load_tables
  lgdt (%rdi)
  lidt (%rsi)
  mov $0x10, %eax
  mov %eax, %ds
  mov %eax, %es
  mov %eax, %ss
  mov %eax, %fs
  mov %eax, %gs
  pushq $0x08
  lea 1f(%rip), %rax
  push %rax
  lretq
1:
  test %edx, %edx
  jz 2f
  ltr %dx
2:
  ret

function drfuzz_set_cr3
  mov %rdi, %cr3
  ret

/* ---- the code instruction breakpoints watch, a page of its own: RDI = address of a fuzz
 * variable, RSI = value. Every instruction start is listed in drfuzz_code_insns. ---- */
  .section .text.drfuzz_code, "ax", @progbits
  .balign 4096
  .globl drfuzz_code_start
drfuzz_code_start:
  .pushsection .rodata.drfuzz_code_insns, "a", @progbits
  .balign 8
  .globl drfuzz_code_insns
drfuzz_code_insns:
  .popsection

.macro insn
  .pushsection .rodata.drfuzz_code_insns, "a", @progbits
  .quad 99f
  .popsection
99:
.endm

function drfuzz_code_0
  insn; mov %rsi, %rax
  insn; add $3, %rax
  insn; ret
function drfuzz_code_1
  insn; mov %rsi, (%rdi)
  insn; ret
function drfuzz_code_2
  insn; mov (%rdi), %eax
  insn; inc %eax
  insn; ret
function drfuzz_code_3
  insn; push %rsi
  insn; pop %rax
  insn; ret
function drfuzz_code_4
  insn; mov $3, %ecx
  insn; xor %eax, %eax
1:
  insn; add %ecx, %eax
  insn; dec %ecx
  insn; jnz 1b
  insn; ret
function drfuzz_code_5
  insn; xchg %rsi, (%rdi)
  insn; mov %rsi, %rax
  insn; ret
function drfuzz_code_6
  insn; nop
  insn; lea 1(%rsi), %rax
  insn; ret
function drfuzz_code_7
  insn; pushfq
  insn; popfq
  insn; mov %rsi, %rax
  insn; ret
  .globl drfuzz_code_end
drfuzz_code_end:
  .balign 4096

  .pushsection .rodata.drfuzz_code_insns, "a", @progbits
  .globl drfuzz_code_insns_end
drfuzz_code_insns_end:
  .popsection

  .section .rodata.drfuzz_tables, "a", @progbits
  .balign 8
  .globl drfuzz_code_functions
drfuzz_code_functions:
  .quad drfuzz_code_0, drfuzz_code_1, drfuzz_code_2, drfuzz_code_3
  .quad drfuzz_code_4, drfuzz_code_5, drfuzz_code_6, drfuzz_code_7

  .section .note.GNU-stack, "", @progbits

/* drtest.elf: code whose every interesting instruction has a label, so the cases know the exact RIP
 * the processor must save: for a trap (data breakpoint, single step) the instruction after the
 * access, for a fault (instruction breakpoint, GD, #UD) the instruction itself. Declared in
 * drtest.h. */

#define TF 0x100
/* DR7 for a local 8-byte write watch in slot 0: L0, R/W0 = 01, LEN0 = 10. */
#define DR7_WRITE8_SLOT0 0x90001
#define DR7_GD_ONLY 0x2400

  .text
  .code64

#include "guestfw/asm_labels.inc"

/* ---- one access each; *_done labels the instruction after it ---- */
function drtest_store8
  mov %sil, (%rdi)
label drtest_store8_done
  ret

function drtest_store16
  mov %si, (%rdi)
label drtest_store16_done
  ret

function drtest_store32
  mov %esi, (%rdi)
label drtest_store32_done
  ret

function drtest_store64
  mov %rsi, (%rdi)
label drtest_store64_done
  ret

function drtest_load8
  movzbl (%rdi), %eax
label drtest_load8_done
  ret

function drtest_load16
  movzwl (%rdi), %eax
label drtest_load16_done
  ret

function drtest_load32
  mov (%rdi), %eax
label drtest_load32_done
  ret

function drtest_load64
  mov (%rdi), %rax
label drtest_load64_done
  ret

function drtest_increment32
  incl (%rdi)
label drtest_increment32_done
  ret

function drtest_store_loop
  mov %esi, %ecx
1:
  mov %ecx, (%rdi)
label drtest_store_loop_done
  dec %ecx
  jnz 1b
  ret

/* ---- instruction breakpoint targets ---- */
function drtest_increment
  mov %rdi, %rax
label drtest_increment_insn
  inc %rax
label drtest_increment_done
  ret

function drtest_counting_loop
  mov %edi, %ecx
  xor %eax, %eax
1:
label drtest_counting_loop_insn
  inc %eax
  dec %ecx
  jnz 1b
  ret

function drtest_mov_imm
label drtest_mov_imm_insn
  mov $0x12345678, %eax
  ret

/* ---- single step ---- */
function drtest_step_after_popf
  pushfq
  orq $TF, (%rsp)
  popfq
label drtest_step_nop1
  nop
label drtest_step_nop2
  nop
label drtest_step_nop3
  nop
label drtest_step_end
  pushfq
  andq $~TF, (%rsp)
  popfq
  ret

function drtest_int3_then_nops
label drtest_int3_insn
  int3
label drtest_after_int3
  nop
label drtest_after_int3_nop2
  nop
label drtest_after_int3_end
  pushfq
  andq $~TF, (%rsp)
  popfq
  ret

function drtest_step_into_store
  pushfq
  orq $TF, (%rsp)
  popfq
  nop
label drtest_step_store_insn
  mov %rsi, (%rdi)
label drtest_step_store_done
  pushfq
  andq $~TF, (%rsp)
  popfq
  ret

/* ---- general detect ---- */
function drtest_gd_write_dr0
  mov $DR7_GD_ONLY, %eax
  mov %rax, %dr7
label drtest_gd_mov_to_dr0
  mov %rdi, %dr0
  ret

function drtest_gd_read_dr0
  mov $DR7_GD_ONLY, %eax
  mov %rax, %dr7
  mov %rdi, %rax
label drtest_gd_mov_from_dr0
  mov %dr0, %rax
  ret

/* ---- DR4/DR5 and the 64-bit DR6/DR7 writes ---- */
function drtest_write_dr4
label drtest_write_dr4_insn
  mov %rdi, %dr4
  ret

function drtest_read_dr4
label drtest_read_dr4_insn
  mov %dr4, %rax
  ret

function drtest_write_dr5
label drtest_write_dr5_insn
  mov %rdi, %dr5
  ret

function drtest_read_dr5
label drtest_read_dr5_insn
  mov %dr5, %rax
  ret

function drtest_write_dr6_arg
label drtest_write_dr6_insn
  mov %rdi, %dr6
  ret

function drtest_write_dr7_arg
label drtest_write_dr7_insn
  mov %rdi, %dr7
  ret

/* ---- stack writes ---- */
/* The watch is armed and disarmed here, around the one stack write under test, so no other push or
 * call (ours or the caller's) touches the watched slot while DR7 is armed. */
function drtest_push_under_watch
  lea -8(%rsp), %rax
  mov %rax, %dr0
  mov $DR7_WRITE8_SLOT0, %ecx
  mov %rcx, %dr7
  push %rdi
label drtest_push_done
  pop %rdi
  xor %ecx, %ecx
  mov %rcx, %dr7
  ret

function drtest_call_under_watch
  lea -8(%rsp), %rax
  mov %rax, %dr0
  mov $DR7_WRITE8_SLOT0, %ecx
  mov %rcx, %dr7
  call drtest_call_target
label drtest_call_return
  xor %ecx, %ecx
  mov %rcx, %dr7
  ret

function drtest_call_target
  ret

/* ---- string instructions ---- */
function drtest_rep_movsb
  mov %rdx, %rcx
label drtest_rep_movsb_insn
  rep movsb
label drtest_rep_movsb_done
  ret

function drtest_rep_stosq
  mov %rsi, %rax
  mov %rdx, %rcx
label drtest_rep_stosq_insn
  rep stosq
label drtest_rep_stosq_done
  ret

function drtest_raise_ud
label drtest_ud_insn
  ud2
  ret

/* PUSHFQ, then POPQ at drtest_pushf_next (the flags image lands in RAX). */
function drtest_pushf_pop
label drtest_pushf_insn
  pushfq
label drtest_pushf_next
  popq %rax
  ret

/* drtest_cpus.c: wait in HLT, interrupts disabled, until *flag (RDI) is non-zero. The NMI that
 * sets the flag may come between the check and the HLT: its handler then resumes at
 * drtest_wait_check instead (any RIP from drtest_wait_check to drtest_wait_hlt), so the wake-up
 * is never lost. */
function drtest_wait_for_flag
label drtest_wait_check
  cmpl $0, (%rdi)
  jne 1f
label drtest_wait_hlt
  hlt
  jmp drtest_wait_check
1:
  ret

/* A page of its own: a read/write watch on it exercises a VMM's handling of code fetched from a
 * watched page without slowing down anything else. */
  .section .text.drtest_isolated, "ax", @progbits
  .balign 4096
function drtest_isolated_function
  mov $0x5a, %eax
  ret
  .balign 4096

  .section .note.GNU-stack, "", @progbits

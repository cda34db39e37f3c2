/* countwork.elf's workloads: loops whose memory accesses and calls are known exactly, so the
 * counting session's numbers can be checked against the truth (tests/session). Written in
 * assembly so the compiler cannot merge, split or reorder the accesses.
 * Every function takes its iteration count in %rdi (System V) and touches only its own data. */

/* The exact-count data: a page of its own, so page-protection engines see no other traffic. */
  .section .data.countwork, "aw", @progbits
  .balign 4096
  .globl cw_counter
  .type cw_counter, @object
  .size cw_counter, 4
cw_counter:
  .long 0
  .balign 8
  .globl cw_flag
  .type cw_flag, @object
  .size cw_flag, 8
cw_flag:
  .quad 0x1234
  .globl cw_word
  .type cw_word, @object
  .size cw_word, 2
cw_word:
  .short 0
  .balign 64
  .globl cw_buffer
  .type cw_buffer, @object
  .size cw_buffer, 64
cw_buffer:
  .zero 64
  .balign 4096

/* The multiplexing data: eight 8-byte variables, each alone on its page. */
  .section .data.countwork_mux, "aw", @progbits
  .balign 4096
  .irp n, 0, 1, 2, 3, 4, 5, 6, 7
  .globl cw_mux\n
  .type cw_mux\n, @object
  .size cw_mux\n, 8
cw_mux\n:
  .quad 0
  .balign 4096
  .endr

  .text
  .code64

/* cw_write_loop(n): writes 1, 2, ..., n to cw_counter (n writes; write i sees old i-1, new i). */
  .globl cw_write_loop
  .type cw_write_loop, @function
cw_write_loop:
  xor %eax, %eax
1:
  cmp %rdi, %rax
  jae 2f
  inc %eax
  movl %eax, cw_counter(%rip)
  jmp 1b
2:
  ret
  .size cw_write_loop, . - cw_write_loop

/* cw_read_loop(n): n 8-byte reads of cw_flag. */
  .globl cw_read_loop
  .type cw_read_loop, @function
cw_read_loop:
  mov %rdi, %rcx
  test %rcx, %rcx
  jz 2f
1:
  mov cw_flag(%rip), %rax
  dec %rcx
  jnz 1b
2:
  ret
  .size cw_read_loop, . - cw_read_loop

/* cw_word_loop(n): n times a 2-byte read of cw_word, then a 2-byte write of it: n reads and
 * n writes. */
  .globl cw_word_loop
  .type cw_word_loop, @function
cw_word_loop:
  mov %rdi, %rcx
  test %rcx, %rcx
  jz 2f
1:
  movzwl cw_word(%rip), %eax
  inc %eax
  movw %ax, cw_word(%rip)
  dec %rcx
  jnz 1b
2:
  ret
  .size cw_word_loop, . - cw_word_loop

/* cw_rep_stos_loop(n): n times REP STOSQ over the 8 quadwords of cw_buffer: each 8-byte element
 * of the buffer is written once per iteration. */
  .globl cw_rep_stos_loop
  .type cw_rep_stos_loop, @function
cw_rep_stos_loop:
  mov %rdi, %rsi
  test %rsi, %rsi
  jz 2f
1:
  lea cw_buffer(%rip), %rdi
  mov $8, %ecx
  mov %rsi, %rax
  cld
  rep stosq
  dec %rsi
  jnz 1b
2:
  ret
  .size cw_rep_stos_loop, . - cw_rep_stos_loop

/* cw_tick(): called by cw_call_loop only. */
  .globl cw_tick
  .type cw_tick, @function
cw_tick:
  nop
  ret
  .size cw_tick, . - cw_tick

/* cw_call_loop(n): calls cw_tick n times. */
  .globl cw_call_loop
  .type cw_call_loop, @function
cw_call_loop:
  push %rbx
  mov %rdi, %rbx
  test %rbx, %rbx
  jz 2f
1:
  call cw_tick
  dec %rbx
  jnz 1b
2:
  pop %rbx
  ret
  .size cw_call_loop, . - cw_call_loop

/* cw_mux_loop(n): n rounds of one 8-byte write to each of cw_mux0 .. cw_mux7, in order: a
 * steady workload in which every variable is written n times. */
  .globl cw_mux_loop
  .type cw_mux_loop, @function
cw_mux_loop:
  mov %rdi, %rcx
  test %rcx, %rcx
  jz 2f
1:
  .irp n, 0, 1, 2, 3, 4, 5, 6, 7
  mov %rcx, cw_mux\n(%rip)
  .endr
  dec %rcx
  jnz 1b
2:
  ret
  .size cw_mux_loop, . - cw_mux_loop

  .section .note.GNU-stack, "", @progbits

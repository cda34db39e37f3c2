/* The probe's guest programs (vmm/probe/probe.cpp): 64-bit ring-0 code that probe_vm.cpp copies into a
 * fresh 2 MiB probe VM already in long mode with identity paging. They are assembled by the host
 * toolchain as read-only data; every reference inside a program is RIP-relative or absolute, so
 * the bytes run wherever they are copied. Each program reports to the host through port writes:
 * the host learns what happened from the sequence of exits it gets. Layout constants must match
 * probe_vm.hpp. */

        .set PORT_REPORT, 0xe0      /* eax: a value the probe checks, or 1 = "reached the end" */
        .set PORT_DB_DR6, 0xe1      /* #DB handler: the DR6 the guest sees */
        .set PORT_DB_RIP, 0xe2      /* #DB handler: the RIP in the exception frame */
        .set PORT_BP_RIP, 0xe3      /* #BP handler: the RIP in the exception frame */
        .set PORT_UNEXPECTED, 0xef  /* any other exception: al = vector */

        .set DATA_ADDR, 0x10000     /* a dword in RAM watched by the data breakpoints */
        .set RO_ADDR, 0x200000      /* first byte of the read-only memslot */
        .set RO_CODE_ADDR, 0x200100 /* code the host put in the read-only memslot */
        .set MMIO_ADDR, 0x400000    /* guest-physical page with no memslot */

/* Reports "reached the end" and stops: the last instructions of most programs. */
        .macro reached_end
        mov $1, %eax
        out %eax, $PORT_REPORT
        hlt
        .endm

        .section .rodata.drvm_probe_guests, "a"
        .code64

/* ---- runtime: exception handlers the IDT points at ---------------------------------------- */
        .globl drvm_probe_guests_begin, drvm_probe_guests_end
        .globl drvm_probe_vector_stubs, drvm_probe_db_handler, drvm_probe_bp_handler
        .balign 8
drvm_probe_guests_begin:            /* the whole section is copied to the guest as one blob */
drvm_probe_vector_stubs:            /* 32 stubs of 8 bytes: report the vector and stop */
        .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .balign 8
        mov $\vector, %al           /* which exception */
        out %al, $PORT_UNEXPECTED   /* tell the host */
        hlt                         /* and stop: no interrupt controller, so this is an exit */
        .endr

        .balign 8
drvm_probe_db_handler:              /* vector 1 (#DB) */
        push %rax
        mov %dr6, %rax              /* what the guest's DR6 says about this #DB */
        out %eax, $PORT_DB_DR6
        mov 8(%rsp), %rax           /* RIP saved in the frame: at the instruction or past it */
        out %eax, $PORT_DB_RIP
        orl $0x10000, 24(%rsp)      /* RFLAGS.RF in the frame: do not refault on an instruction bp */
        mov $0xffff0ff0, %eax       /* DR6 bits are sticky: reset them for the next #DB */
        mov %rax, %dr6
        pop %rax
        iretq

        .balign 8
drvm_probe_bp_handler:              /* vector 3 (#BP) */
        push %rax
        mov 8(%rsp), %rax           /* RIP saved in the frame: just past the INT3 */
        out %eax, $PORT_BP_RIP
        pop %rax
        iretq

/* ---- programs: each is begin .. end plus the labels the host checks ------------------------- */

/* Host instruction breakpoint (KVM_GUESTDBG_USE_HW_BP, RW=00) on _target. */
        .globl drvm_probe_hw_insn_bp_begin, drvm_probe_hw_insn_bp_target, drvm_probe_hw_insn_bp_end
drvm_probe_hw_insn_bp_begin:
        nop                         /* one instruction before the breakpoint */
drvm_probe_hw_insn_bp_target:
        mov $1, %eax                /* the breakpoint address */
        out %eax, $PORT_REPORT      /* reached the end */
        hlt
drvm_probe_hw_insn_bp_end:

/* A 4-byte write to DATA_ADDR; a trap-like data breakpoint stops at _after. */
        .globl drvm_probe_data_write_begin, drvm_probe_data_write_after, drvm_probe_data_write_end
drvm_probe_data_write_begin:
        movl $0x600d, DATA_ADDR     /* the watched write */
drvm_probe_data_write_after:
        reached_end
drvm_probe_data_write_end:

/* A 4-byte read of DATA_ADDR; a read/write data breakpoint stops at _after. */
        .globl drvm_probe_data_read_begin, drvm_probe_data_read_after, drvm_probe_data_read_end
drvm_probe_data_read_begin:
        mov DATA_ADDR, %ebx         /* the watched read */
drvm_probe_data_read_after:
        reached_end
drvm_probe_data_read_end:

/* The guest arms its own write watchpoint on DATA_ADDR, then writes there. */
        .globl drvm_probe_guest_data_bp_begin, drvm_probe_guest_data_bp_after
        .globl drvm_probe_guest_data_bp_end
drvm_probe_guest_data_bp_begin:
        mov $DATA_ADDR, %rax
        mov %rax, %dr0              /* DR0 = watched address */
        mov $0x000d0001, %eax       /* DR7: L0, RW0=01 (write), LEN0=11 (4 bytes) */
        mov %rax, %dr7
        movl $0x600d, DATA_ADDR     /* the watched write */
drvm_probe_guest_data_bp_after:
        reached_end
drvm_probe_guest_data_bp_end:

/* The guest arms its own instruction breakpoint on _target; its #DB handler sets RF to go on. */
        .globl drvm_probe_guest_insn_bp_begin, drvm_probe_guest_insn_bp_target
        .globl drvm_probe_guest_insn_bp_end
drvm_probe_guest_insn_bp_begin:
        lea 1f(%rip), %rax
        mov %rax, %dr0              /* DR0 = _target */
        mov $0x00000001, %eax       /* DR7: L0, RW0=00 (execute), LEN0=00 */
        mov %rax, %dr7
        nop
drvm_probe_guest_insn_bp_target:
1:      mov $1, %eax                /* the breakpoint address */
        out %eax, $PORT_REPORT      /* reached the end */
        hlt
drvm_probe_guest_insn_bp_end:

/* A guest MOV from DR0 while the host's guest-debug DR7 has GD set. */
        .globl drvm_probe_gd_begin, drvm_probe_gd_end
drvm_probe_gd_begin:
        mov %dr0, %rax              /* general detect should stop here */
        mov $1, %eax
        out %eax, $PORT_REPORT      /* reached the end: MOV DR ran without an exit */
        hlt
drvm_probe_gd_end:

/* INT3 at _int3 with KVM_GUESTDBG_USE_SW_BP. */
        .globl drvm_probe_int3_begin, drvm_probe_int3_int3, drvm_probe_int3_end
drvm_probe_int3_begin:
        nop
drvm_probe_int3_int3:
        int3                        /* the planted software breakpoint */
        mov $1, %eax
        out %eax, $PORT_REPORT      /* reached the end: INT3 went to the guest and returned */
        hlt
drvm_probe_int3_end:

/* Single-step: two marked instructions, then a loop of 2 * rcx instructions to time steps. */
        .globl drvm_probe_step_begin, drvm_probe_step_second, drvm_probe_step_third
        .globl drvm_probe_step_end
drvm_probe_step_begin:
        nop                         /* step 1 ends at _second */
drvm_probe_step_second:
        mov $0x1234, %edx           /* step 2 ends at _third */
drvm_probe_step_third:
1:      dec %rcx                    /* host sets rcx = loop count */
        jnz 1b
        reached_end
drvm_probe_step_end:

/* Read-only memslot: read it, run code from it, then write it. */
        .globl drvm_probe_readonly_begin, drvm_probe_readonly_write, drvm_probe_readonly_after
        .globl drvm_probe_readonly_end
drvm_probe_readonly_begin:
        mov RO_ADDR, %eax           /* a read from the read-only slot */
        out %eax, $PORT_REPORT      /* report the value read */
        mov $RO_CODE_ADDR, %rbx
        call *%rbx                  /* fetch and run the host's code there: it sets eax */
        out %eax, $PORT_REPORT      /* report what that code returned */
drvm_probe_readonly_write:
        movl $0xcafef00d, RO_ADDR   /* the write: expected to be an MMIO exit */
drvm_probe_readonly_after:
        reached_end
drvm_probe_readonly_end:

/* Unmapped page: a read the host completes, then a write. */
        .globl drvm_probe_mmio_begin, drvm_probe_mmio_after_read, drvm_probe_mmio_write
        .globl drvm_probe_mmio_after_write, drvm_probe_mmio_end
drvm_probe_mmio_begin:
        mov MMIO_ADDR, %eax         /* the read: an MMIO exit, the host supplies the value */
drvm_probe_mmio_after_read:
        inc %ebx                    /* must not run while immediate_exit completes the read */
        out %eax, $PORT_REPORT      /* report the value read */
drvm_probe_mmio_write:
        movl $0x55667788, MMIO_ADDR /* the write: an MMIO exit */
drvm_probe_mmio_after_write:
        reached_end
drvm_probe_mmio_end:

/* rcx reads of the unmapped page, to time MMIO exits. */
        .globl drvm_probe_mmio_loop_begin, drvm_probe_mmio_loop_end
drvm_probe_mmio_loop_begin:
1:      mov MMIO_ADDR, %eax         /* one MMIO exit per iteration */
        dec %rcx                    /* host sets rcx = loop count */
        jnz 1b
        reached_end
drvm_probe_mmio_loop_end:

/* The host injects #DB before the first instruction; the handler reports, then this runs. */
        .globl drvm_probe_inject_begin, drvm_probe_inject_end
drvm_probe_inject_begin:
        reached_end
drvm_probe_inject_end:
drvm_probe_guests_end:

        .section .note.GNU-stack, "", @progbits

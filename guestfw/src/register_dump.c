/* The register dump for an unexpected exception: enough to find the faulting code from the serial
 * log alone. */
#include "guestfw/exceptions.h"
#include "guestfw/format.h"
#include "guestfw/x86.h"

void guest_dump_frame(const struct guest_frame* f) {
  guest_printf("guestfw: unexpected exception %lu (%s), error code 0x%lx\n", f->vector,
               guest_exception_name((unsigned)f->vector), f->error_code);
  guest_printf("RIP=%016lx RSP=%016lx RFLAGS=%016lx CS=%04lx SS=%04lx\n", f->rip, f->rsp, f->rflags,
               f->cs, f->ss);
  guest_printf("RAX=%016lx RBX=%016lx RCX=%016lx RDX=%016lx\n", f->rax, f->rbx, f->rcx, f->rdx);
  guest_printf("RSI=%016lx RDI=%016lx RBP=%016lx R8 =%016lx\n", f->rsi, f->rdi, f->rbp, f->r8);
  guest_printf("R9 =%016lx R10=%016lx R11=%016lx R12=%016lx\n", f->r9, f->r10, f->r11, f->r12);
  guest_printf("R13=%016lx R14=%016lx R15=%016lx\n", f->r13, f->r14, f->r15);
  guest_printf("CR0=%016lx CR2=%016lx CR3=%016lx CR4=%016lx\n", read_cr0(), read_cr2(), read_cr3(),
               read_cr4());
  guest_printf("DR6=%016lx DR7=%016lx\n", read_dr6(), read_dr7());
}

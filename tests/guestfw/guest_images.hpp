// What each guestfw image must print and how its run must end, shared by the QEMU and the drvm
// tests so both VMMs are held to the same serial output.
#pragma once

#include <cstdint>
#include <string>

namespace drvm::test {

// build/guest/NAME.elf
std::string guest_image_path(const std::string& name);

// (v << 1) | 1, as QEMU's isa-debug-exit and drvm report a guest exit-port write of v.
constexpr int exit_port_status(std::uint32_t value) {
  return static_cast<int>(((value << 1) | 1) & 0xff);
}

// guestfw's exit values (guestfw/include/guestfw/exit.h).
constexpr std::uint32_t kGuestSuccess = 0;
constexpr std::uint32_t kGuestUnexpectedException = 0x7f;

std::string hello_output(const std::string& cmdline = "");
// Every case of selftest.elf whose name contains filter, each passing, and the summary.
std::string selftest_output(const std::string& filter = "");
extern const char* const kHaltOutput;
extern const char* const kSpinOutput;
extern const char* const kTripleFaultOutput;
extern const char* const kIoPortOutput;
// The platform images (interrupts, timers, ACPI).
std::string timer_output(unsigned ticks = 5);
extern const char* const kAcpiOutput;
extern const char* const kIdleOutput;
// The SMP images with `cpus` CPUs (drvm --cpus N, QEMU -smp N).
std::string smp_hello_output(unsigned cpus);
std::string smp_ipi_output(unsigned cpus);
std::string smp_halt_output(unsigned cpus, bool wake);
// smp-debugregs.elf with `cpus` CPUs, every count exact (guestfw/images/smp_debugregs.c); with
// drs = false its output under drs=off (no debug register touched, no #DB).
std::string smp_debugregs_output(unsigned cpus, bool drs = true);
// How often CPU `cpu` of smp-debugregs.elf writes shared_counter and its own watched[cpu], calls
// cpu<cpu>_work, and reads each other CPU's watched[] element.
constexpr unsigned smp_debugregs_shared_writes(unsigned cpu) {
  return 10 + cpu;
}
constexpr unsigned smp_debugregs_own_writes(unsigned cpu) {
  return 3 + cpu;
}
constexpr unsigned smp_debugregs_own_calls(unsigned cpu) {
  return 2 + cpu;
}
constexpr unsigned kSmpDebugregsForeignReads = 2;
// fault.elf's banner and register dump. The addresses come from the image's symbols (`image`:
// "fault", or "fault.mb64", the ELF64 that fault.mb.elf was converted from); rflags is what
// the VMM saves for a fault: QEMU TCG does not set RFLAGS.RF in the pushed image, hardware and KVM
// do (SDM: faults other than instruction breakpoints set RF in the saved RFLAGS).
std::string fault_output(std::uint64_t pushed_rflags, const std::string& image = "fault");
// testfw-outcomes.elf, compared after normalize_testfw_outcomes(): its unexpected-exception case
// dumps registers that depend on code generation, and its assertion messages carry line numbers.
// `image` gives the symbols: "testfw-outcomes" or "testfw-outcomes.mb64".
std::string testfw_outcomes_output(const std::string& image = "testfw-outcomes");
// Replaces "FILE.c:LINE:" with "FILE.c:N:" and drops the register lines of a dump (RIP= ... DR6=),
// keeping its first line.
std::string normalize_testfw_outcomes(const std::string& serial);
// reverse.elf with --cmdline seed=SEED (guestfw/images/reverse_main.c): its scratch[] after the
// seeded writes, computed here from the same generator.
std::string reverse_output(std::uint64_t seed = 1);
constexpr std::uint32_t kGuestTestFailure = 1;

constexpr std::uint64_t kFaultRflagsQemuTcg = 0x2;
constexpr std::uint64_t kFaultRflagsHardware = 0x10002;

}  // namespace drvm::test

#include "guest_images.hpp"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <regex>
#include <stdexcept>
#include <vector>

#include "elf_symbols.hpp"

namespace drvm::test {
namespace {

// selftest.elf's cases in the order they run.
const std::vector<std::string> kSelftestCases = {
    "boot_long_mode_active",
    "boot_identity_page_tables",
    "boot_stack_works",
    "boot_bss_zeroed_and_data_loaded",
    "boot_start_info_magic",
    "boot_memmap_covers_image",
    "boot_cmdline_readable",
    "serial_transmitter_ready",
    "format_signed_decimal",
    "format_unsigned_and_hex",
    "format_width_and_padding",
    "format_strings_chars_pointers",
    "format_snprintf_truncates",
    "exception_catch_without_fault",
    "exception_breakpoint_resumes_after_int3",
    "exception_invalid_opcode",
    "exception_divide_error",
    "exception_general_protection_noncanonical",
    "exception_page_fault_read_sets_cr2",
    "exception_page_fault_write_error_code",
    "exception_handler_moves_rip",
    "exception_catch_nests",
};

std::uint64_t symbol(const std::string& image, const char* name) {
  const auto address = elf_symbol_address(guest_image_path(image), name);
  if (!address) throw std::runtime_error(fmt::format("{}.elf has no symbol {}", image, name));
  return *address;
}

}  // namespace

std::string guest_image_path(const std::string& name) {
  return std::string(DRVM_GUEST_DIR) + "/" + name + ".elf";
}

std::string hello_output(const std::string& cmdline) {
  std::string text = "drvm guestfw: hello from the guest\n";
  if (!cmdline.empty()) text += "cmdline: " + cmdline + "\n";
  return text;
}

std::string selftest_output(const std::string& filter) {
  std::string text;
  int passed = 0;
  for (const std::string& name : kSelftestCases) {
    if (name.find(filter) == std::string::npos) continue;
    text += "PASS " + name + "\n";
    ++passed;
  }
  return text + fmt::format("summary: {} passed, 0 failed, 0 skipped\n", passed);
}

const char* const kHaltOutput = "halt.elf: halting with interrupts disabled\n";
const char* const kSpinOutput = "spin.elf: spinning with interrupts disabled\n";
const char* const kTripleFaultOutput = "triplefault.elf: loading an empty IDT and executing ud2\n";
const char* const kIoPortOutput =
    "ioport.elf: accessing unclaimed I/O ports\n"
    "inb 0x80: 0xff\n"
    "inw 0x1234: 0xffff\n"
    "inl 0x1234: 0xffffffff\n"
    "outb 0x80: 0x42\n";

std::string timer_output(unsigned ticks) {
  return fmt::format("timer.elf: local APIC timer: {0} ticks\ntimer.elf: PIT: {0} ticks\n", ticks);
}

const char* const kAcpiOutput =
    "acpi.elf: RSDP revision 2, checksums good\n"
    "acpi.elf: FADT present\n"
    "MADT: local APIC address 0xfee00000\n"
    "MADT: local APIC: processor 0, APIC ID 0, flags 0x1\n"
    "MADT: I/O APIC: ID 0, address 0xfec00000, GSI base 0\n"
    "MADT: local APIC NMI: processor 0xff, flags 0x0, LINT1\n";
const char* const kIdleOutput = "idle.elf: waiting for an interrupt with nothing armed\n";

std::string smp_hello_output(unsigned cpus) {
  std::string out;
  for (unsigned cpu = 0; cpu < cpus; ++cpu) out += fmt::format("cpu {0} (APIC ID {0}) up\n", cpu);
  return out + fmt::format("smp-hello: {0} of {0} CPUs up\n", cpus);
}

std::string smp_ipi_output(unsigned cpus) {
  std::string out;
  for (unsigned cpu = 1; cpu < cpus; ++cpu) {
    out +=
        fmt::format("smp-ipi: cpu {0} (APIC ID {0}): 100 round trips, 100 pings received\n", cpu);
  }
  return out + fmt::format("smp-ipi: {} CPUs, 100 round trips each, all answered\n", cpus);
}

std::string smp_halt_output(unsigned cpus, bool wake) {
  return wake ? fmt::format(
                    "smp-halt: {} CPUs up, cpu 0 waits in HLT until cpu 1 wakes it\n"
                    "smp-halt: cpu 0 woken by an IPI\n",
                    cpus)
              : fmt::format("smp-halt: {} CPUs up, cpu 0 waits in HLT\n", cpus);
}

std::string smp_debugregs_output(unsigned cpus, bool drs) {
  std::string out;
  unsigned shared_writes = 0;
  for (unsigned cpu = 0; cpu < cpus; ++cpu) {
    shared_writes += smp_debugregs_shared_writes(cpu);
    if (!drs) {
      out += fmt::format(
          "smp-debugregs: cpu {0} (APIC ID {0}): DRs not armed; shared_counter: {1} writes; 0 "
          "#DBs\n",
          cpu, smp_debugregs_shared_writes(cpu));
      continue;
    }
    const unsigned watch = cpu % 4, work = (cpu + 1) % 4;
    const std::string shared_work =
        cpu == 0 ? "DR2 breaks on shared_work: 3 of 3 #DBs; " : std::string();
    out += fmt::format(
        "smp-debugregs: cpu {0} (APIC ID {0}): DR{1} watches watched[{0}]: {2} of {2} #DBs; DR{3} "
        "breaks on cpu{0}_work: {4} of {4} #DBs; {5}shared_counter: {6} writes; its DRs read back "
        "its own; no other #DB\n",
        cpu, watch, smp_debugregs_own_writes(cpu), work, smp_debugregs_own_calls(cpu), shared_work,
        smp_debugregs_shared_writes(cpu));
  }
  out += fmt::format("smp-debugregs: shared_counter 1000 -> {}: {} writes by {} CPUs\n",
                     1000 + shared_writes, shared_writes, cpus);
  return out + fmt::format("smp-debugregs: {} CPUs, pass\n", cpus);
}

std::string fault_output(std::uint64_t pushed_rflags, const std::string& image) {
  // fault_general_protection.S loads these before reading through RAX (non-canonical): #GP(0).
  return fmt::format(
      "fault.elf: taking an unexpected #GP\n"
      "guestfw: unexpected exception 13 (#GP general protection), error code 0x0\n"
      "RIP={:016x} RSP={:016x} RFLAGS={:016x} CS=0008 SS=0010\n"
      "RAX=8000000000000000 RBX=1111111111111111 RCX=2222222222222222 RDX=3333333333333333\n"
      "RSI=4444444444444444 RDI=5555555555555555 RBP=6666666666666666 R8 =8888888888888888\n"
      "R9 =9999999999999999 R10=aaaaaaaaaaaaaaaa R11=bbbbbbbbbbbbbbbb R12=cccccccccccccccc\n"
      "R13=dddddddddddddddd R14=eeeeeeeeeeeeeeee R15=ffffffffffffffff\n"
      "CR0=0000000080000011 CR2=0000000000000000 CR3={:016x} CR4=0000000000000020\n"
      "DR6=00000000ffff0ff0 DR7=0000000000000400\n",
      symbol(image, "fault_gp_instruction"), symbol(image, "fault_stack_top"), pushed_rflags,
      symbol(image, "guestfw_pml4"));
}

std::string testfw_outcomes_output(const std::string& image) {
  return fmt::format(
      "PASS outcome_pass\n"
      "FAIL outcome_assert_eq_fails: testfw_outcomes.c:N: answer == 42: got 0x29 (41), expected "
      "0x2a (42)\n"
      "FAIL outcome_assert_streq_fails: testfw_outcomes.c:N: \"abc\": got \"abc\", expected "
      "\"abd\"\n"
      "SKIP outcome_skip: needs hardware data breakpoints\n"
      "guestfw: unexpected exception 6 (#UD invalid opcode), error code 0x0\n"
      "FAIL outcome_unexpected_exception: unexpected #UD invalid opcode, error code 0x0, at rip "
      "0x{:x}\n"
      "FAIL outcome_fails_leaving_a_handler: left a #UD handler installed\n"
      "PASS outcome_handlers_reset_between_cases\n"
      "FAIL outcome_expected_exception_missing: testfw_outcomes.c:N: return_normally raised no "
      "exception, expected #UD invalid opcode\n"
      "PASS outcome_pass_after_failures\n"
      "summary: 3 passed, 5 failed, 1 skipped\n",
      symbol(image, "selftest_ud_instruction"));
}

namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// scribble() in reverse_main.c, on a little-endian copy of scratch[8].
std::array<std::uint32_t, 8> reverse_scratch(std::uint64_t seed) {
  std::array<std::uint8_t, 32> bytes{};
  std::uint64_t state = seed;
  for (int step = 0; step < 32; ++step) {
    const std::uint64_t r = splitmix64(state);
    const unsigned index = r % 8;
    const unsigned part = (r >> 8) % 4;
    const std::uint64_t flip = (r >> 16) | 0x0000000100000001ULL;
    unsigned offset = index * 4;
    unsigned size = 4;
    switch ((r >> 12) % 4) {
      case 0:
        offset += part;
        size = 1;
        break;
      case 1:
        offset += (part % 2) * 2;
        size = 2;
        break;
      case 2:
        break;
      default:
        offset = (index & ~1u) * 4;
        size = 8;
        break;
    }
    for (unsigned i = 0; i < size; ++i)
      bytes[offset + i] ^= static_cast<std::uint8_t>(flip >> (8 * i));
  }
  std::array<std::uint32_t, 8> words{};
  std::memcpy(words.data(), bytes.data(), bytes.size());
  return words;
}

}  // namespace

std::string reverse_output(std::uint64_t seed) {
  std::string text = fmt::format(
      "reverse: start, seed {}\n"
      "reverse: counter 28\n"
      "reverse: corrupted to 999\n"
      "reverse: add_scaled(5, 7) = 38\n"
      "reverse: buffer[0] 0xab buffer[63] 0xab after_buffer 0\n"
      "reverse: handled 1\n"
      "reverse: scratch",
      seed);
  for (const std::uint32_t word : reverse_scratch(seed)) text += fmt::format(" {:08x}", word);
  return text + "\nreverse: done\n";
}

std::string normalize_testfw_outcomes(const std::string& serial) {
  static const std::regex line_number(R"(([A-Za-z0-9_]+\.c):[0-9]+:)");
  static const std::regex register_line(R"((RIP|RAX|RSI|R9 |R13|CR0|DR6)=[^\n]*\n)");
  return std::regex_replace(std::regex_replace(serial, register_line, ""), line_number, "$1:N:");
}

}  // namespace drvm::test

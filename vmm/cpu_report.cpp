#include "vmm/cpu_report.hpp"

#include <Zydis/Zydis.h>

#include <fmt/format.h>
#include <cstring>

#include "vmm/kvm/kvm.hpp"
#include "vmm/x86/paging.hpp"

namespace drvm::vmm {

CpuSnapshot capture_cpu_state(const Vcpu& vcpu) {
  CpuSnapshot cpu;
  cpu.regs = vcpu.regs();
  cpu.sregs = vcpu.sregs();
  try {
    cpu.debugregs = vcpu.debugregs();
    cpu.have_debugregs = true;
  } catch (const KvmError&) {
    cpu.have_debugregs = false;  // hosts without KVM_CAP_DEBUGREGS: report without them
  }
  return cpu;
}

std::string decode_rflags(std::uint64_t rflags) {
  static constexpr struct {
    unsigned bit;
    const char* name;
  } kFlags[] = {{0, "CF"},  {2, "PF"},   {4, "AF"},   {6, "ZF"},  {7, "SF"},  {8, "TF"},
                {9, "IF"},  {10, "DF"},  {11, "OF"},  {14, "NT"}, {16, "RF"}, {17, "VM"},
                {18, "AC"}, {19, "VIF"}, {20, "VIP"}, {21, "ID"}};
  std::string out;
  for (const auto& flag : kFlags) {
    if ((rflags >> flag.bit & 1) == 0) continue;
    if (!out.empty()) out += ' ';
    out += flag.name;
  }
  out += fmt::format("{}IOPL={}", out.empty() ? "" : " ", (rflags >> 12) & 3);
  return out;
}

namespace {

ZydisMachineMode machine_mode(const kvm_sregs& sregs) {
  if ((sregs.efer & (1u << 10)) != 0 && sregs.cs.l) return ZYDIS_MACHINE_MODE_LONG_64;
  if ((sregs.cr0 & 1) == 0) return ZYDIS_MACHINE_MODE_REAL_16;
  return sregs.cs.db ? ZYDIS_MACHINE_MODE_LEGACY_32 : ZYDIS_MACHINE_MODE_LEGACY_16;
}

std::string format_segment(const char* name, const kvm_segment& s) {
  return fmt::format("{:<3} sel={:#06x} base={:#018x} limit={:#010x} type={:#x} {}{}{}{}", name,
                     s.selector, s.base, s.limit, s.type, s.present ? "P" : "-", s.l ? " L" : "",
                     s.db ? " DB" : "", s.unusable ? " unusable" : "");
}

}  // namespace

std::string disassemble_at_rip(const CpuSnapshot& cpu, const PhysicalMemory& memory,
                               std::span<const std::uint8_t> fallback_bytes) {
  const ZydisMachineMode mode = machine_mode(cpu.sregs);
  const std::uint64_t linear = mode == ZYDIS_MACHINE_MODE_LONG_64
                                   ? cpu.regs.rip
                                   : (cpu.sregs.cs.base + cpu.regs.rip) & 0xffffffffULL;
  std::byte bytes[ZYDIS_MAX_INSTRUCTION_LENGTH] = {};
  // Read what is readable: an instruction may end at the edge of a mapped page.
  const VirtualAccess access = read_virtual(memory, PagingState::from(cpu.sregs), linear, bytes);
  std::size_t length = access.transferred;
  std::string source = "";
  if (length == 0 && !fallback_bytes.empty()) {
    length = std::min(fallback_bytes.size(), sizeof bytes);
    std::memcpy(bytes, fallback_bytes.data(), length);
    source = " (bytes from KVM's exit information)";
  }
  if (length == 0) {
    return fmt::format("{:#x}: <unreadable: {}>", linear, to_string(access.error));
  }
  ZydisDisassembledInstruction instruction;
  if (!ZYAN_SUCCESS(ZydisDisassembleIntel(mode, linear, bytes, length, &instruction))) {
    std::string hex;
    for (std::size_t i = 0; i < length; ++i) {
      hex += fmt::format("{:02x}", static_cast<unsigned>(bytes[i]));
    }
    return fmt::format("{:#x}: <undecodable bytes {}>{}", linear, hex, source);
  }
  std::string hex;
  for (std::size_t i = 0; i < instruction.info.length; ++i) {
    hex += fmt::format("{}{:02x}", i == 0 ? "" : " ", static_cast<unsigned>(bytes[i]));
  }
  return fmt::format("{:#x}: {}  [{}]{}", linear, instruction.text, hex, source);
}

std::string format_cpu_report(const CpuSnapshot& cpu, const PhysicalMemory& memory,
                              std::span<const std::uint8_t> fallback_bytes) {
  const kvm_regs& r = cpu.regs;
  const kvm_sregs& s = cpu.sregs;
  std::string out;
  auto line = [&out](const std::string& text) { out += "drvm:   " + text + "\n"; };
  line(fmt::format("RAX={:016x} RBX={:016x} RCX={:016x} RDX={:016x}", r.rax, r.rbx, r.rcx, r.rdx));
  line(fmt::format("RSI={:016x} RDI={:016x} RBP={:016x} RSP={:016x}", r.rsi, r.rdi, r.rbp, r.rsp));
  line(fmt::format("R8 ={:016x} R9 ={:016x} R10={:016x} R11={:016x}", r.r8, r.r9, r.r10, r.r11));
  line(fmt::format("R12={:016x} R13={:016x} R14={:016x} R15={:016x}", r.r12, r.r13, r.r14, r.r15));
  line(fmt::format("RIP={:016x} RFLAGS={:016x} [{}]", r.rip, r.rflags, decode_rflags(r.rflags)));
  line(format_segment("CS", s.cs));
  line(format_segment("SS", s.ss));
  line(format_segment("DS", s.ds));
  line(format_segment("ES", s.es));
  line(format_segment("FS", s.fs));
  line(format_segment("GS", s.gs));
  line(format_segment("TR", s.tr));
  line(fmt::format("GDT base={:#x} limit={:#x}  IDT base={:#x} limit={:#x}", s.gdt.base,
                   s.gdt.limit, s.idt.base, s.idt.limit));
  line(fmt::format("CR0={:#x} CR2={:#x} CR3={:#x} CR4={:#x} EFER={:#x}", s.cr0, s.cr2, s.cr3, s.cr4,
                   s.efer));
  if (cpu.have_debugregs) {
    line(fmt::format("DR0={:#x} DR1={:#x} DR2={:#x} DR3={:#x} DR6={:#x} DR7={:#x}",
                     cpu.debugregs.db[0], cpu.debugregs.db[1], cpu.debugregs.db[2],
                     cpu.debugregs.db[3], cpu.debugregs.dr6, cpu.debugregs.dr7));
  } else {
    line("DR6/DR7 unavailable (no KVM_GET_DEBUGREGS)");
  }
  line("code: " + disassemble_at_rip(cpu, memory, fallback_bytes));
  return out;
}

}  // namespace drvm::vmm

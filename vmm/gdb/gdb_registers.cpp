#include "vmm/gdb/gdb_registers.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>

namespace drvm::vmm {
namespace {

constexpr unsigned kFpuTagValid = 0, kFpuTagZero = 1, kFpuTagSpecial = 2, kFpuTagEmpty = 3;

// The FSAVE tag of an 80-bit register: zero, valid (normalised) or special (NaN, infinity,
// denormal, unnormal).
unsigned classify_x87(const std::uint8_t* value) {
  const unsigned exponent = (value[8] | (value[9] << 8)) & 0x7fff;
  const bool integer_bit = (value[7] & 0x80) != 0;
  if (exponent == 0x7fff) return kFpuTagSpecial;
  if (exponent == 0) {
    const bool mantissa_zero = std::all_of(value, value + 8, [](std::uint8_t b) { return b == 0; });
    return mantissa_zero ? kFpuTagZero : kFpuTagSpecial;
  }
  return integer_bit ? kFpuTagValid : kFpuTagSpecial;
}

// Sets field to value; returns whether it changed. The value converts to the field's type (KVM's
// __u64 and std::uint64_t are different types of the same width).
template <class T>
bool assign(T& field, std::type_identity_t<T> value) {
  if (field == value) return false;
  field = value;
  return true;
}

// The segments gdb shows, in its order: cs ss ds es fs gs.
std::array<kvm_segment*, 6> segments(kvm_sregs& sregs) {
  return {&sregs.cs, &sregs.ss, &sregs.ds, &sregs.es, &sregs.fs, &sregs.gs};
}

bool load_selector(kvm_segment& segment, std::uint32_t value, bool code, const kvm_sregs& sregs,
                   const QwordReader& read_qword) {
  const auto selector = static_cast<std::uint16_t>(value);
  if (segment.selector == selector) return false;
  if ((selector & ~3u) == 0) {
    // The null selector: a data segment becomes unusable; CS cannot be null, keep its hidden part.
    segment.selector = selector;
    if (!code) segment.unusable = 1;
    return true;
  }
  const bool local = (selector & 4) != 0;
  const std::uint64_t table = local ? sregs.ldt.base : sregs.gdt.base;
  const std::uint64_t limit = local ? sregs.ldt.limit : sregs.gdt.limit;
  const std::uint64_t offset = selector & ~7u;
  std::optional<std::uint64_t> descriptor;
  if (offset + 7 <= limit && !(local && sregs.ldt.unusable))
    descriptor = read_qword(table + offset);
  if (descriptor) {
    load_segment_descriptor(segment, selector, *descriptor);
  } else {
    segment.selector = selector;
  }
  return true;
}

}  // namespace

void load_segment_descriptor(kvm_segment& segment, std::uint16_t selector,
                             std::uint64_t descriptor) {
  std::uint32_t limit =
      static_cast<std::uint32_t>((descriptor & 0xffff) | ((descriptor >> 32) & 0xf0000));
  const bool granularity = (descriptor >> 55) & 1;
  if (granularity) limit = (limit << 12) | 0xfff;
  segment.base = ((descriptor >> 16) & 0xffffff) | (((descriptor >> 56) & 0xff) << 24);
  segment.limit = limit;
  segment.selector = selector;
  segment.type = (descriptor >> 40) & 0xf;
  segment.s = (descriptor >> 44) & 1;
  segment.dpl = (descriptor >> 45) & 3;
  segment.present = (descriptor >> 47) & 1;
  segment.avl = (descriptor >> 52) & 1;
  segment.l = (descriptor >> 53) & 1;
  segment.db = (descriptor >> 54) & 1;
  segment.g = granularity;
  segment.unusable = segment.present ? 0 : 1;
}

std::uint16_t full_fpu_tag(const kvm_fpu& fpu) {
  const unsigned top = (fpu.fsw >> 11) & 7;
  std::uint16_t tag = 0;
  for (unsigned physical = 0; physical < 8; ++physical) {
    unsigned value = kFpuTagEmpty;
    if (fpu.ftwx & (1u << physical)) value = classify_x87(fpu.fpr[(physical - top) & 7]);
    tag |= static_cast<std::uint16_t>(value << (2 * physical));
  }
  return tag;
}

std::uint8_t abridged_fpu_tag(std::uint16_t full_tag) {
  std::uint8_t abridged = 0;
  for (unsigned physical = 0; physical < 8; ++physical) {
    if (((full_tag >> (2 * physical)) & 3) != kFpuTagEmpty) abridged |= 1u << physical;
  }
  return abridged;
}

gdbstub::Registers to_gdb_registers(const VcpuRegisterState& state) {
  const kvm_regs& r = state.regs;
  const kvm_sregs& s = state.sregs;
  const kvm_fpu& f = state.fpu;
  gdbstub::Registers out;
  out.rax = r.rax, out.rbx = r.rbx, out.rcx = r.rcx, out.rdx = r.rdx;
  out.rsi = r.rsi, out.rdi = r.rdi, out.rbp = r.rbp, out.rsp = r.rsp;
  out.r8 = r.r8, out.r9 = r.r9, out.r10 = r.r10, out.r11 = r.r11;
  out.r12 = r.r12, out.r13 = r.r13, out.r14 = r.r14, out.r15 = r.r15;
  out.rip = r.rip;
  out.eflags = static_cast<std::uint32_t>(r.rflags);
  out.cs = s.cs.selector, out.ss = s.ss.selector, out.ds = s.ds.selector;
  out.es = s.es.selector, out.fs = s.fs.selector, out.gs = s.gs.selector;
  for (unsigned i = 0; i < 8; ++i) std::memcpy(out.st[i].data(), f.fpr[i], out.st[i].size());
  out.fctrl = f.fcw;
  out.fstat = f.fsw;
  out.ftag = full_fpu_tag(f);
  // FXSAVE's 64-bit layout: the instruction and operand pointers are 64 bits wide; gdb shows their
  // high halves in fiseg/foseg, as it does for a 64-bit fxsave area.
  out.fioff = static_cast<std::uint32_t>(f.last_ip);
  out.fiseg = static_cast<std::uint32_t>(f.last_ip >> 32);
  out.fooff = static_cast<std::uint32_t>(f.last_dp);
  out.foseg = static_cast<std::uint32_t>(f.last_dp >> 32);
  out.fop = f.last_opcode;
  out.fs_base = s.fs.base;
  out.gs_base = s.gs.base;
  out.k_gs_base = state.kernel_gs_base;
  out.cr0 = s.cr0, out.cr2 = s.cr2, out.cr3 = s.cr3, out.cr4 = s.cr4, out.cr8 = s.cr8;
  out.efer = s.efer;
  out.dr0 = state.debug.dr[0], out.dr1 = state.debug.dr[1];
  out.dr2 = state.debug.dr[2], out.dr3 = state.debug.dr[3];
  out.dr6 = state.debug.dr6, out.dr7 = state.debug.dr7;
  return out;
}

RegisterChanges apply_gdb_registers(const gdbstub::Registers& in, VcpuRegisterState& state,
                                    const QwordReader& read_qword) {
  RegisterChanges changed;
  kvm_regs& r = state.regs;
  bool regs = false;
  regs |= assign(r.rax, in.rax), regs |= assign(r.rbx, in.rbx), regs |= assign(r.rcx, in.rcx);
  regs |= assign(r.rdx, in.rdx), regs |= assign(r.rsi, in.rsi), regs |= assign(r.rdi, in.rdi);
  regs |= assign(r.rbp, in.rbp), regs |= assign(r.rsp, in.rsp), regs |= assign(r.r8, in.r8);
  regs |= assign(r.r9, in.r9), regs |= assign(r.r10, in.r10), regs |= assign(r.r11, in.r11);
  regs |= assign(r.r12, in.r12), regs |= assign(r.r13, in.r13), regs |= assign(r.r14, in.r14);
  regs |= assign(r.r15, in.r15), regs |= assign(r.rip, in.rip);
  // gdb's eflags is 32 bits; bits 63..32 of RFLAGS are reserved and kept.
  regs |= assign(r.rflags, (r.rflags & ~std::uint64_t{0xffffffff}) | in.eflags);
  changed.regs = regs;

  kvm_sregs& s = state.sregs;
  bool sregs = false;
  const std::array<std::uint32_t, 6> selectors{in.cs, in.ss, in.ds, in.es, in.fs, in.gs};
  // A selector load sets the base from the descriptor; gdb's fs_base/gs_base win only when gdb
  // changed them too.
  const std::uint64_t fs_base_before = s.fs.base, gs_base_before = s.gs.base;
  const auto segs = segments(s);
  for (std::size_t i = 0; i < segs.size(); ++i) {
    sregs |= load_selector(*segs[i], selectors[i], i == 0, s, read_qword);
  }
  if (in.fs_base != fs_base_before) sregs |= assign(s.fs.base, in.fs_base);
  if (in.gs_base != gs_base_before) sregs |= assign(s.gs.base, in.gs_base);
  sregs |= assign(s.cr0, in.cr0), sregs |= assign(s.cr2, in.cr2), sregs |= assign(s.cr3, in.cr3);
  sregs |= assign(s.cr4, in.cr4), sregs |= assign(s.cr8, in.cr8), sregs |= assign(s.efer, in.efer);
  changed.sregs = sregs;

  kvm_fpu& f = state.fpu;
  bool fpu = false;
  for (unsigned i = 0; i < 8; ++i) {
    if (std::memcmp(f.fpr[i], in.st[i].data(), in.st[i].size()) != 0) {
      std::memcpy(f.fpr[i], in.st[i].data(), in.st[i].size());
      fpu = true;
    }
  }
  fpu |= assign(f.fcw, static_cast<std::uint16_t>(in.fctrl));
  fpu |= assign(f.fsw, static_cast<std::uint16_t>(in.fstat));
  if (full_fpu_tag(f) != static_cast<std::uint16_t>(in.ftag)) {
    fpu |= assign(f.ftwx, abridged_fpu_tag(static_cast<std::uint16_t>(in.ftag)));
  }
  fpu |= assign(f.last_ip, (std::uint64_t{in.fiseg} << 32) | in.fioff);
  fpu |= assign(f.last_dp, (std::uint64_t{in.foseg} << 32) | in.fooff);
  fpu |= assign(f.last_opcode, static_cast<std::uint16_t>(in.fop));
  changed.fpu = fpu;

  changed.kernel_gs_base = assign(state.kernel_gs_base, in.k_gs_base);

  bp::GuestDebugRegs& d = state.debug;
  bool debug = false;
  debug |= assign(d.dr[0], in.dr0), debug |= assign(d.dr[1], in.dr1);
  debug |= assign(d.dr[2], in.dr2), debug |= assign(d.dr[3], in.dr3);
  debug |= assign(d.dr6, in.dr6), debug |= assign(d.dr7, in.dr7);
  changed.debug = debug;
  return changed;
}

}  // namespace drvm::vmm

// The pure parts of vmm's gdb target: splitting watched ranges into debug-register shapes, and
// converting registers between KVM and gdb (x87 tags, segment descriptors, partial writes).
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <random>

#include "vmm/gdb/gdb_monitor.hpp"
#include "vmm/gdb/gdb_registers.hpp"
#include "vmm/gdb/gdb_target.hpp"

namespace drvm::vmm {
namespace {

std::vector<std::pair<std::uint64_t, std::uint32_t>> shapes(const std::vector<bp::BpAttr>& pieces) {
  std::vector<std::pair<std::uint64_t, std::uint32_t>> out;
  for (const bp::BpAttr& piece : pieces) out.emplace_back(piece.addr, piece.len);
  return out;
}

// `monitor events` lists the counting session's --event events with their counts.
TEST(MonitorEvents, SessionEventsShowSpecLocationAndCount) {
  session::StatReport report;
  session::EventStat counted;
  counted.spec = "mem:watch_0:w";
  counted.location = "watch_0";
  counted.count = 42;
  counted.time_enabled_ns = counted.time_running_ns = 1000;
  session::EventStat multiplexed;
  multiplexed.spec = "mem:0x1000/8";
  multiplexed.location = "0x1000";
  multiplexed.count = 10;
  multiplexed.time_enabled_ns = 1000;
  multiplexed.time_running_ns = 500;
  report.events = {counted, multiplexed};
  EXPECT_EQ(format_session_events(report),
            "--event: 2 events\n"
            "  mem:watch_0:w            watch_0                  count 42\n"
            "  mem:0x1000/8             0x1000                   count 10 (scaled 20) "
            "[multiplexed]\n");
}

TEST(WatchPieces, AlignedRangesUseTheLargestSlots) {
  EXPECT_EQ(shapes(watch_pieces(0x1000, 8, bp::BpType::kWrite, 60)),
            (std::vector<std::pair<std::uint64_t, std::uint32_t>>{{0x1000, 8}}));
  EXPECT_EQ(shapes(watch_pieces(0x1000, 16, bp::BpType::kRead, 60)),
            (std::vector<std::pair<std::uint64_t, std::uint32_t>>{{0x1000, 8}, {0x1008, 8}}));
}

TEST(WatchPieces, UnalignedRangesSplitIntoNaturallyAlignedPieces) {
  const auto pieces = watch_pieces(0x1003, 8, bp::BpType::kReadWrite, 60);
  EXPECT_EQ(shapes(pieces), (std::vector<std::pair<std::uint64_t, std::uint32_t>>{
                                {0x1003, 1}, {0x1004, 4}, {0x1008, 2}, {0x100a, 1}}));
  for (const bp::BpAttr& piece : pieces) {
    EXPECT_EQ(piece.type, bp::BpType::kReadWrite);
    EXPECT_TRUE(bp::validate(piece).ok());
  }
}

TEST(WatchPieces, EmptyAndWrappingRangesHaveNoPieces) {
  EXPECT_TRUE(watch_pieces(0x1000, 0, bp::BpType::kWrite, 60).empty());
  EXPECT_TRUE(watch_pieces(~std::uint64_t{0} - 3, 8, bp::BpType::kWrite, 60).empty());
}

// A client's length field must not cost memory or time: `Z2,300000,ffffffff` once allocated
// half a billion pieces before it was refused.
TEST(WatchPieces, RangesNeedingMoreThanTheSlotsAreRefusedWithoutWork) {
  const auto start = std::chrono::steady_clock::now();
  for (const std::uint64_t length : {std::uint64_t{0xffffffff}, ~std::uint64_t{0} >> 1,
                                     std::uint64_t{8 * 60 + 1}, std::uint64_t{8 * 61}}) {
    EXPECT_TRUE(watch_pieces(0x300000, length, bp::BpType::kWrite, 60).empty()) << length;
  }
  // Unaligned: 0x1001 + 480 bytes needs 62 pieces, more than 60 although length / 8 == 60.
  EXPECT_TRUE(watch_pieces(0x1001, 8 * 60, bp::BpType::kWrite, 60).empty());
  EXPECT_EQ(watch_pieces(0x1000, 8 * 60, bp::BpType::kWrite, 60).size(), 60u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
}

// Property: for random ranges the pieces tile the range exactly, or are refused as too many.
TEST(WatchPieces, RandomRangesTileExactlyOrAreRefused) {
  std::mt19937_64 random(14);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t address = random() >> (random() % 64);
    const std::uint64_t length = random() >> (random() % 64);
    const std::size_t max = random() % 64;
    const auto pieces = watch_pieces(address, length, bp::BpType::kRead, max);
    ASSERT_LE(pieces.size(), max);
    std::uint64_t at = address;
    for (const bp::BpAttr& piece : pieces) {
      ASSERT_EQ(piece.addr, at);
      ASSERT_EQ(piece.addr % piece.len, 0u);
      at += piece.len;
    }
    if (!pieces.empty()) {
      ASSERT_EQ(at - address, length);
    }
  }
}

TEST(FpuTag, EmptyRegistersAreTagThree) {
  kvm_fpu fpu{};
  EXPECT_EQ(full_fpu_tag(fpu), 0xffff);
  EXPECT_EQ(abridged_fpu_tag(0xffff), 0);
}

TEST(FpuTag, ValidZeroAndSpecialAreClassifiedFromTheValue) {
  kvm_fpu fpu{};
  fpu.fsw = 6 << 11;  // TOP = 6: ST(0) is physical register 6, ST(1) is 7, ST(2) is 0
  fpu.ftwx = (1 << 6) | (1 << 7) | (1 << 0);
  // ST(0) = 1.0: exponent 0x3fff, integer bit set.
  fpu.fpr[0][7] = 0x80, fpu.fpr[0][8] = 0xff, fpu.fpr[0][9] = 0x3f;
  // ST(1) = +0.0 (all zero). ST(2) = infinity: exponent 0x7fff.
  fpu.fpr[2][7] = 0x80, fpu.fpr[2][8] = 0xff, fpu.fpr[2][9] = 0x7f;
  const std::uint16_t tag = full_fpu_tag(fpu);
  EXPECT_EQ((tag >> 12) & 3, 0);  // physical 6: valid
  EXPECT_EQ((tag >> 14) & 3, 1);  // physical 7: zero
  EXPECT_EQ(tag & 3, 2);          // physical 0: special
  EXPECT_EQ((tag >> 2) & 3, 3);   // physical 1: empty
  EXPECT_EQ(abridged_fpu_tag(tag), fpu.ftwx);
}

TEST(SegmentDescriptor, FlatLongModeCode) {
  kvm_segment segment{};
  load_segment_descriptor(segment, 0x08, 0x00af9b000000ffffULL);
  EXPECT_EQ(segment.selector, 0x08);
  EXPECT_EQ(segment.base, 0u);
  EXPECT_EQ(segment.limit, 0xffffffffu);
  EXPECT_EQ(segment.type, 0xb);
  EXPECT_EQ(segment.s, 1);
  EXPECT_EQ(segment.present, 1);
  EXPECT_EQ(segment.l, 1);
  EXPECT_EQ(segment.db, 0);
  EXPECT_EQ(segment.g, 1);
  EXPECT_EQ(segment.unusable, 0);
}

TEST(SegmentDescriptor, BaseAndByteLimit) {
  kvm_segment segment{};
  // base 0x12345678, limit 0x0abcd (byte granular), data read/write accessed, DPL 3.
  load_segment_descriptor(segment, 0x2b, 0x1240f3345678abcdULL);
  EXPECT_EQ(segment.base, 0x12345678u);
  EXPECT_EQ(segment.limit, 0xabcdu);
  EXPECT_EQ(segment.type, 0x3);
  EXPECT_EQ(segment.dpl, 3);
  EXPECT_EQ(segment.db, 1);
  EXPECT_EQ(segment.g, 0);
}

VcpuRegisterState sample_state() {
  VcpuRegisterState state;
  state.regs.rip = 0x101000;
  state.regs.rflags = 0x2 | (std::uint64_t{1} << 40);  // a reserved upper bit gdb cannot see
  state.regs.rax = 7;
  state.sregs.cs.selector = 0x08;
  state.sregs.ds.selector = 0x10;
  state.sregs.fs.selector = 0x10;
  state.sregs.fs.base = 0x5000;
  state.sregs.gdt.base = 0x1000;
  state.sregs.gdt.limit = 0x27;
  state.sregs.cr0 = 0x80000011;
  state.sregs.efer = 0x500;
  state.kernel_gs_base = 0x9000;
  state.debug.dr6 = 0xffff0ff0;
  state.debug.dr7 = 0x400;
  return state;
}

const QwordReader kNoMemory = [](std::uint64_t) { return std::nullopt; };

TEST(GdbRegisters, ReadBackUnchangedWritesNothing) {
  VcpuRegisterState state = sample_state();
  const gdbstub::Registers gdb = to_gdb_registers(state);
  EXPECT_EQ(gdb.rip, 0x101000u);
  EXPECT_EQ(gdb.eflags, 0x2u);
  EXPECT_EQ(gdb.cs, 0x08u);
  EXPECT_EQ(gdb.fs_base, 0x5000u);
  EXPECT_EQ(gdb.k_gs_base, 0x9000u);
  EXPECT_EQ(gdb.efer, 0x500u);
  EXPECT_EQ(gdb.dr7, 0x400u);
  EXPECT_EQ(gdb.ftag, 0xffffu);
  const RegisterChanges changed = apply_gdb_registers(gdb, state, kNoMemory);
  EXPECT_FALSE(changed.regs || changed.sregs || changed.fpu || changed.kernel_gs_base ||
               changed.debug);
}

TEST(GdbRegisters, RipAndEflagsKeepTheUpperRflags) {
  VcpuRegisterState state = sample_state();
  gdbstub::Registers gdb = to_gdb_registers(state);
  gdb.rip = 0x102000;
  gdb.eflags = 0x202;
  const RegisterChanges changed = apply_gdb_registers(gdb, state, kNoMemory);
  EXPECT_TRUE(changed.regs);
  EXPECT_FALSE(changed.sregs);
  EXPECT_EQ(state.regs.rip, 0x102000u);
  EXPECT_EQ(state.regs.rflags, 0x202 | (std::uint64_t{1} << 40));
}

TEST(GdbRegisters, ASelectorLoadsItsDescriptorFromTheGdt) {
  VcpuRegisterState state = sample_state();
  gdbstub::Registers gdb = to_gdb_registers(state);
  gdb.ds = 0x20;
  std::uint64_t asked = 0;
  const QwordReader gdt = [&](std::uint64_t linear) -> std::optional<std::uint64_t> {
    asked = linear;
    return 0x1240f3345678abcdULL;
  };
  const RegisterChanges changed = apply_gdb_registers(gdb, state, gdt);
  EXPECT_TRUE(changed.sregs);
  EXPECT_EQ(asked, 0x1020u);
  EXPECT_EQ(state.sregs.ds.selector, 0x20);
  EXPECT_EQ(state.sregs.ds.base, 0x12345678u);
}

TEST(GdbRegisters, SelectorBeyondTheGdtLimitKeepsTheHiddenPart) {
  VcpuRegisterState state = sample_state();
  state.sregs.ds.base = 0x777;
  gdbstub::Registers gdb = to_gdb_registers(state);
  gdb.ds = 0x30;  // past gdt.limit 0x27
  bool asked = false;
  const QwordReader gdt = [&](std::uint64_t) -> std::optional<std::uint64_t> {
    asked = true;
    return 0;
  };
  EXPECT_TRUE(apply_gdb_registers(gdb, state, gdt).sregs);
  EXPECT_FALSE(asked);
  EXPECT_EQ(state.sregs.ds.selector, 0x30);
  EXPECT_EQ(state.sregs.ds.base, 0x777u);
}

TEST(GdbRegisters, NullDataSelectorMakesTheSegmentUnusable) {
  VcpuRegisterState state = sample_state();
  gdbstub::Registers gdb = to_gdb_registers(state);
  gdb.ds = 0;
  EXPECT_TRUE(apply_gdb_registers(gdb, state, kNoMemory).sregs);
  EXPECT_EQ(state.sregs.ds.unusable, 1);
}

TEST(GdbRegisters, FsBaseWrittenByGdbWinsOverTheDescriptorBase) {
  VcpuRegisterState state = sample_state();
  gdbstub::Registers gdb = to_gdb_registers(state);
  gdb.fs = 0x20;
  gdb.fs_base = 0xabc000;
  const QwordReader gdt = [](std::uint64_t) -> std::optional<std::uint64_t> {
    return 0x1240f3345678abcdULL;
  };
  apply_gdb_registers(gdb, state, gdt);
  EXPECT_EQ(state.sregs.fs.base, 0xabc000u);
}

TEST(GdbRegisters, ControlDebugAndMsrRegistersAreReportedSeparately) {
  VcpuRegisterState state = sample_state();
  gdbstub::Registers gdb = to_gdb_registers(state);
  gdb.cr3 = 0x4000;
  gdb.k_gs_base = 0x1234;
  gdb.dr0 = 0x109000;
  gdb.dr7 = 0x401;
  gdb.st[0][9] = 0x3f;
  const RegisterChanges changed = apply_gdb_registers(gdb, state, kNoMemory);
  EXPECT_FALSE(changed.regs);
  EXPECT_TRUE(changed.sregs && changed.kernel_gs_base && changed.debug && changed.fpu);
  EXPECT_EQ(state.sregs.cr3, 0x4000u);
  EXPECT_EQ(state.kernel_gs_base, 0x1234u);
  EXPECT_EQ(state.debug.dr[0], 0x109000u);
  EXPECT_EQ(state.debug.dr7, 0x401u);
  EXPECT_EQ(state.fpu.fpr[0][9], 0x3f);
}

}  // namespace
}  // namespace drvm::vmm

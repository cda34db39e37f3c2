// Machine snapshots and memory versions on KVM: a round trip on a vCPU that is not running, and a
// guest that is taken back to an earlier point in the middle of its run and replays from there
// with the same serial output, registers and memory.
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "process.hpp"
#include "vmm/machine.hpp"
#include "vmm/replay/machine_snapshot.hpp"
#include "vmm/replay/memory_history.hpp"

namespace drvm::vmm::replay {
namespace {

const std::string kTimerImage = std::string(DRVM_GUEST_DIR) + "/timer.elf";

const System* kvm_system() {
  static std::unique_ptr<System> system = []() -> std::unique_ptr<System> {
    try {
      return std::make_unique<System>(System::open());
    } catch (const std::exception&) {
      return nullptr;
    }
  }();
  return system.get();
}

#define REQUIRE_KVM()                                                  \
  do {                                                                 \
    if (kvm_system() == nullptr) GTEST_SKIP() << "no usable /dev/kvm"; \
  } while (0)

// A booted machine whose serial output goes to a memfd.
class BootedGuest {
 public:
  BootedGuest(const std::string& image_path, const std::string& cmdline)
      : serial_fd_(::memfd_create("serial", 0)),
        image_(read_image(image_path)),
        machine_(*kvm_system(), config(cmdline, serial_fd_)) {
    machine_.boot(image_);
  }
  ~BootedGuest() { ::close(serial_fd_); }

  Machine& machine() { return machine_; }
  std::string output() const { return test::read_from_start(serial_fd_); }
  // Guest RAM as one range, read and written directly (no debugger plants anything here).
  MemoryHistory memory_history() {
    GuestMemory& memory = machine_.memory();
    auto* base = reinterpret_cast<std::uint8_t*>(memory.host_base());
    return MemoryHistory(
        {RamRange{0, {base, memory.size()}}},
        [base](std::uint64_t gpa, std::span<std::uint8_t> page) {
          std::memcpy(page.data(), base + gpa, page.size());
        },
        [base](std::uint64_t gpa, std::span<const std::uint8_t> page) {
          std::memcpy(base + gpa, page.data(), page.size());
        });
  }

 private:
  static MachineConfig config(const std::string& cmdline, int serial_fd) {
    MachineConfig c;
    c.memory_size = 64ULL << 20;
    c.cmdline = cmdline;
    c.serial_out_fd = serial_fd;
    return c;
  }

  int serial_fd_;
  BootImage image_;
  Machine machine_;
};

std::uint64_t msr_value(const VcpuSnapshot& snapshot, std::uint32_t index) {
  for (const auto& entry : snapshot.msrs) {
    if (entry.index == index) return entry.data;
  }
  ADD_FAILURE() << "MSR " << std::hex << index << " not in the snapshot";
  return 0;
}

bool has_msr(const MachineSnapshotter& snapshotter, std::uint32_t index) {
  const auto& indices = snapshotter.msr_indices();
  return std::find(indices.begin(), indices.end(), index) != indices.end();
}

template <typename T>
bool same_bytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

constexpr std::uint32_t kMsrTsc = 0x10;
constexpr std::uint32_t kMsrPat = 0x277;
constexpr std::uint32_t kMsrLstar = 0xc0000082;
constexpr std::uint32_t kMsrKernelGsBase = 0xc0000102;
constexpr std::size_t kXmm0Offset = 160;  // in the legacy XSAVE region

TEST(MachineSnapshot, RoundTripOnAStoppedVcpu) {
  REQUIRE_KVM();
  BootedGuest guest(kTimerImage, "");
  Machine& machine = guest.machine();
  Vcpu& vcpu = machine.vcpu(0).vcpu();
  MachineSnapshotter snapshotter(machine);
  for (const std::uint32_t index : {kMsrTsc, kMsrPat, kMsrLstar, kMsrKernelGsBase}) {
    EXPECT_TRUE(has_msr(snapshotter, index)) << std::hex << index;
  }
  MemoryHistory memory = guest.memory_history();

  const MachineSnapshot before = snapshotter.capture(machine);
  memory.capture(1);
  const std::uint64_t entry_rip = before.vcpus[0].regs.rip;

  // Change a little of everything a snapshot holds.
  kvm_regs regs = vcpu.regs();
  regs.rax = 0x1122334455667788;
  regs.rip += 0x10;
  vcpu.set_regs(regs);
  kvm_sregs sregs = vcpu.sregs();
  sregs.cr2 = 0xdead000;
  vcpu.set_sregs(sregs);
  vcpu.set_msr(kMsrLstar, 0xffffffff81000000);
  vcpu.set_msr(kMsrKernelGsBase, 0x12345000);
  vcpu.set_msr(kMsrPat, 0x0606060606060606);
  vcpu.set_msr(kMsrTsc, msr_value(before.vcpus[0], kMsrTsc) + 1'000'000'000'000);
  if (snapshotter.xsave_size() != 0) {
    auto area = vcpu.xsave(snapshotter.xsave_size());
    area[kXmm0Offset / 4] = 0xabcdef01;
    vcpu.set_xsave(area);
  } else {
    kvm_fpu fpu = vcpu.fpu();
    fpu.xmm[0][0] = 0xab;
    vcpu.set_fpu(fpu);
  }
  kvm_debugregs debugregs = vcpu.debugregs();
  debugregs.db[0] = 0x4000;
  vcpu.set_debugregs(debugregs);
  kvm_lapic_state lapic = vcpu.lapic();
  lapic.regs[0x80] = 0x20;  // TPR
  vcpu.set_lapic(lapic);
  vcpu.set_mp_state(KVM_MP_STATE_HALTED);
  kvm_irqchip pic = machine.vm().irqchip(KVM_IRQCHIP_PIC_MASTER);
  pic.chip.pic.imr = 0x5a;
  machine.vm().set_irqchip(pic);
  kvm_pit_state2 pit = machine.vm().pit_state();
  pit.channels[2].count = 0x1234;
  machine.vm().set_pit_state(pit);
  machine.com1().write(7, 0x42);  // scratch register
  auto* ram = reinterpret_cast<std::uint8_t*>(machine.memory().host_base());
  ram[entry_rip] ^= 0xff;
  ram[0x200000] = 0x99;
  ASSERT_FALSE(memory.matches(1));

  snapshotter.restore(machine, before);
  EXPECT_EQ(memory.restore(1), 2u);
  const MachineSnapshot after = snapshotter.capture(machine);

  const VcpuSnapshot& was = before.vcpus[0];
  const VcpuSnapshot& now = after.vcpus[0];
  EXPECT_TRUE(same_bytes(was.regs, now.regs));
  EXPECT_EQ(now.regs.rip, entry_rip);
  EXPECT_TRUE(same_bytes(was.sregs, now.sregs));
  EXPECT_EQ(was.xsave, now.xsave);
  EXPECT_TRUE(same_bytes(was.fpu, now.fpu));
  EXPECT_EQ(was.xcrs.has_value(), now.xcrs.has_value());
  if (was.xcrs) {
    EXPECT_TRUE(same_bytes(*was.xcrs, *now.xcrs));
  }
  ASSERT_EQ(was.msrs.size(), now.msrs.size());
  for (std::size_t i = 0; i < was.msrs.size(); ++i) {
    EXPECT_EQ(was.msrs[i].index, now.msrs[i].index);
    if (was.msrs[i].index == kMsrTsc) {
      // The TSC runs on from the restored value (not from the value it was moved to).
      EXPECT_GE(now.msrs[i].data, was.msrs[i].data);
      EXPECT_LT(now.msrs[i].data, was.msrs[i].data + 500'000'000'000);
    } else {
      EXPECT_EQ(was.msrs[i].data, now.msrs[i].data) << "MSR " << std::hex << was.msrs[i].index;
    }
  }
  EXPECT_TRUE(same_bytes(was.debugregs, now.debugregs));
  EXPECT_TRUE(same_bytes(was.events, now.events));
  EXPECT_EQ(was.mp_state.mp_state, now.mp_state.mp_state);
  EXPECT_TRUE(same_bytes(was.lapic, now.lapic));
  EXPECT_TRUE(same_bytes(before.vm.pic_master, after.vm.pic_master));
  EXPECT_TRUE(same_bytes(before.vm.pic_slave, after.vm.pic_slave));
  EXPECT_TRUE(same_bytes(before.vm.ioapic, after.vm.ioapic));
  EXPECT_EQ(before.vm.pit.channels[2].count, after.vm.pit.channels[2].count);
  EXPECT_EQ(before.com1, after.com1);
  EXPECT_TRUE(memory.matches(1));

  // The restored machine still boots and runs the guest to its end.
  const RunOutcome outcome = machine.run(std::chrono::seconds(120));
  EXPECT_EQ(outcome.kind, RunOutcome::Kind::kExitPort) << outcome.report;
  EXPECT_EQ(outcome.exit_value, 0u);
  EXPECT_NE(guest.output().find("timer.elf: PIT:"), std::string::npos) << guest.output();
}

// Takes a snapshot right after the guest's first line of output; when the guest then writes the
// exit port for the first time, records its state there and takes it back to the snapshot. The
// guest runs the rest again and must reach the exit port in the same state, printing the same.
class RewindOnce final : public ExitInterceptor {
 public:
  RewindOnce(Machine& machine, MemoryHistory& memory)
      : machine_(machine), snapshotter_(machine), memory_(memory) {}

  std::optional<ExitAction> on_exit(VcpuRunner&, const VmExit& exit) override {
    if (exit.kind != ExitKind::kIo || !exit.io.write) return std::nullopt;
    if (exit.io.port == Uart16550::kCom1Base && !snapshot_ && exit.io.data[0] == '\n') {
      stop_ = Stop::kCapture;  // after the byte is sent: the port write completes first
      return std::nullopt;
    }
    if (exit.io.port == 0xf4 && snapshot_) {
      exit_regs_.push_back(machine_.vcpu(0).vcpu().regs());
      if (rewound_) {
        second_matches_ = memory_.matches(2);
        return std::nullopt;  // the exit port ends the run
      }
      memory_.capture(2);
      stop_ = Stop::kRewind;
      return ExitAction::kResume;
    }
    return std::nullopt;
  }
  void entering_guest(VcpuRunner& vcpu) override {
    // KVM_RUN completes the pending port write and returns at once (KVM API: userspace must
    // re-enter to complete an I/O before saving state).
    if (stop_ != Stop::kNone) vcpu.vcpu().run_area().immediate_exit = 1;
  }
  ExitAction on_interrupted(VcpuRunner&) override {
    if (stop_ == Stop::kCapture) {
      snapshot_ = snapshotter_.capture(machine_);
      memory_.capture(1);
    } else if (stop_ == Stop::kRewind) {
      snapshotter_.restore(machine_, *snapshot_);
      restored_pages_ = memory_.restore(1);
      rewound_ = true;
    }
    stop_ = Stop::kNone;
    return ExitAction::kResume;
  }

  std::vector<kvm_regs> exit_regs_;
  std::optional<bool> second_matches_;
  std::size_t restored_pages_ = 0;
  bool rewound_ = false;

 private:
  enum class Stop { kNone, kCapture, kRewind };
  Machine& machine_;
  MachineSnapshotter snapshotter_;
  MemoryHistory& memory_;
  Stop stop_ = Stop::kNone;
  std::optional<MachineSnapshot> snapshot_;
};

TEST(MachineSnapshot, GuestRewoundMidRunReplaysTheSameOutputAndState) {
  REQUIRE_KVM();
  // The part replayed programs the I/O APIC and the PIT and waits in HLT for their interrupts.
  BootedGuest guest(kTimerImage, "ticks=3");
  MemoryHistory memory = guest.memory_history();
  RewindOnce rewind(guest.machine(), memory);
  guest.machine().add_interceptor(rewind);
  const RunOutcome outcome = guest.machine().run(std::chrono::seconds(300));

  EXPECT_EQ(outcome.kind, RunOutcome::Kind::kExitPort) << outcome.report;
  EXPECT_EQ(outcome.exit_value, 0u);
  ASSERT_TRUE(rewind.rewound_);
  EXPECT_GT(rewind.restored_pages_, 0u) << "the replayed part writes memory (stack, ticks)";
  ASSERT_EQ(rewind.exit_regs_.size(), 2u);
  const kvm_regs& first = rewind.exit_regs_[0];
  const kvm_regs& second = rewind.exit_regs_[1];
  EXPECT_EQ(first.rip, second.rip);
  EXPECT_EQ(first.rsp, second.rsp);
  EXPECT_EQ(first.rax, second.rax);
  EXPECT_EQ(first.rdx, second.rdx);
  EXPECT_EQ(rewind.second_matches_, true) << "memory at the exit port differs after the replay";

  const std::string text = guest.output();
  const auto line_end = text.find('\n');
  ASSERT_NE(line_end, std::string::npos) << text;
  const std::string first_line = text.substr(0, line_end + 1);
  const std::string rest = text.substr(line_end + 1);
  EXPECT_EQ(first_line, "timer.elf: local APIC timer: 3 ticks\n");
  EXPECT_EQ(rest, "timer.elf: PIT: 3 ticks\ntimer.elf: PIT: 3 ticks\n");
}

}  // namespace
}  // namespace drvm::vmm::replay

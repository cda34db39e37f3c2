// A deterministic toy CPU for the Navigator's tests: a few registers, 64 bytes of memory, and
// instructions that store, load, loop, do port I/O (landmarks) and run a REP string store one
// iteration per step. Its breakpoint semantics are the debug controller's (replay_machine.hpp):
// execute triggers fire before the instruction unless the boundary reported them already, data
// triggers after the access. It also keeps a trace of the live run (state at every boundary and
// the accesses of every instruction) so tests can compute the right answers by brute force.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "vmm/replay/replay_machine.hpp"

namespace drvm::vmm::replay::testing {

inline constexpr std::uint64_t kCodeBase = 0x1000;  // instruction i is at kCodeBase + 4 * i
inline constexpr std::uint64_t kDataBase = 0x100;   // memory is [kDataBase, kDataBase + 64)
inline constexpr std::size_t kRegisters = 7;        // r6 counts kJump (the program's rounds)

struct Instr {
  enum Op : std::uint8_t { kSet, kAdd, kStore, kLoad, kLoop, kRep, kIo, kJump } op = kSet;
  unsigned reg = 0;         // kSet/kAdd/kStore/kLoad/kLoop: the register; kRep: the count register
  unsigned reg2 = 0;        // kRep: the destination register
  std::uint64_t value = 0;  // kSet/kAdd: immediate; kStore/kLoad: address; kLoop: limit
  unsigned size = 1;        // kStore/kLoad: bytes
  std::size_t target = 0;   // kLoop/kJump: instruction index
};

struct Access {
  bool write = false;
  std::uint64_t address = 0;
  unsigned size = 0;
};

struct ToyState {
  std::size_t pc = 0;
  std::array<std::uint64_t, kRegisters> regs{};
  std::array<std::uint8_t, 64> memory{};
  std::uint64_t landmarks = 0;
  std::uint64_t time = 0;  // instructions (REP iterations) retired: the tests' clock
  std::optional<std::uint64_t> reported;
  bool inside_rep = false;  // the last iteration left iterations to do: a boundary inside it
  friend bool operator==(const ToyState&, const ToyState&) = default;
};

inline std::uint64_t address_of(std::size_t pc) {
  return kCodeBase + 4 * pc;
}

class FakeReplayMachine final : public ReplayMachine {
 public:
  explicit FakeReplayMachine(std::vector<Instr> program) : program_(std::move(program)) {}

  ToyState& state() { return state_; }
  // The live run: every boundary's state (index = time) and each instruction's accesses.
  std::vector<ToyState> trace;
  std::vector<std::vector<Access>> trace_accesses;
  bool tracing = true;
  std::map<std::size_t, ToyState> snapshots;  // by stop
  std::uint64_t steps_taken = 0;
  // run() returns after this many instructions as if interrupted (0: no limit).
  std::uint64_t interrupt_after = 0;
  // Once set, a replay that executes past this time gets a register the live run never had.
  std::optional<std::uint64_t> diverge_after;

  void restore(std::size_t stop) override { state_ = snapshots.at(stop); }
  void arm(std::span<const Trigger> triggers) override {
    armed_.assign(triggers.begin(), triggers.end());
  }
  RunResult run(const std::function<bool(const ReplayHit&)>& on_hit) override {
    state_.reported = address_of(state_.pc);  // the starting boundary fires nothing
    for (std::uint64_t n = 0; n < 1'000'000; ++n) {
      if (interrupt_after && n == interrupt_after) {
        // A kick lands at an instruction boundary, never inside a REP.
        if (!state_.inside_rep) {
          return RunResult::stopped();
        }
        ++interrupt_after;
      }
      const std::uint64_t here = address_of(state_.pc);
      if (state_.reported && *state_.reported != here) state_.reported.reset();
      if (!state_.reported) {
        bool stop = false;
        bool fired = false;
        for (std::size_t t = 0; t < armed_.size(); ++t) {
          if (armed_[t].kind != TriggerKind::kExecute || armed_[t].address != here) continue;
          fired = true;
          stop = on_hit(ReplayHit{t, false}) || stop;
        }
        if (fired) state_.reported = here;
        if (stop) return RunResult::stopped();
      }
      bool stop = false;
      for (const std::size_t t : execute()) stop = on_hit(ReplayHit{t, true}) || stop;
      if (stop) return RunResult::stopped();
    }
    return RunResult{RunResult::Kind::kEndOfLog, "runaway"};
  }
  RunResult step(const std::function<void(const ReplayHit&)>& on_hit) override {
    ++steps_taken;
    const std::uint64_t start = address_of(state_.pc);
    state_.reported = start;
    for (const std::size_t t : execute()) on_hit(ReplayHit{t, true});
    if (address_of(state_.pc) != start) state_.reported.reset();
    return RunResult::stopped();
  }
  std::uint64_t pc() override { return address_of(state_.pc); }
  std::optional<std::uint64_t> reported_here() override { return state_.reported; }
  void set_reported_here(std::optional<std::uint64_t> address) override {
    state_.reported = address;
  }
  std::vector<std::uint64_t> instructions_ending_at(std::uint64_t pc) override {
    if (pc <= kCodeBase) return {};
    return {pc - 4};
  }
  Fingerprint fingerprint() override {
    Fingerprint f;
    f.words[0] = state_.pc;
    for (std::size_t r = 0; r < kRegisters; ++r) f.words[1 + r] = state_.regs[r];
    f.words[kRegisters + 1] = diverge_after && state_.time > *diverge_after ? 1 : 0;
    return f;
  }
  std::uint64_t landmarks() override { return state_.landmarks; }
  bool memory_matches(std::size_t stop) override {
    return state_.memory == snapshots.at(stop).memory;
  }

 private:
  // Runs one instruction (one REP iteration); returns the data triggers it hit.
  std::vector<std::size_t> execute() {
    if (tracing && trace.size() == state_.time) trace.push_back(state_);
    const Instr& in = program_[state_.pc];
    std::vector<Access> accesses;
    auto& r = state_.regs;
    state_.inside_rep = false;
    switch (in.op) {
      case Instr::kSet:
        r[in.reg] = in.value;
        ++state_.pc;
        break;
      case Instr::kAdd:
        r[in.reg] += in.value;
        ++state_.pc;
        break;
      case Instr::kStore:
        for (unsigned i = 0; i < in.size; ++i) {
          state_.memory[in.value - kDataBase + i] = static_cast<std::uint8_t>(r[in.reg] >> (8 * i));
        }
        accesses.push_back(Access{true, in.value, in.size});
        ++state_.pc;
        break;
      case Instr::kLoad: {
        std::uint64_t value = 0;
        for (unsigned i = 0; i < in.size; ++i) {
          value |= std::uint64_t{state_.memory[in.value - kDataBase + i]} << (8 * i);
        }
        r[in.reg] = value;
        accesses.push_back(Access{false, in.value, in.size});
        ++state_.pc;
        break;
      }
      case Instr::kLoop:
        state_.pc = r[in.reg] < in.value ? in.target : state_.pc + 1;
        break;
      case Instr::kRep:
        if (r[in.reg] == 0) {
          ++state_.pc;
          break;
        }
        state_.memory[r[in.reg2] - kDataBase] = static_cast<std::uint8_t>(r[in.reg]);
        accesses.push_back(Access{true, r[in.reg2], 1});
        ++r[in.reg2];
        --r[in.reg];
        state_.inside_rep = r[in.reg] > 0;
        if (r[in.reg] == 0) ++state_.pc;
        break;
      case Instr::kIo:
        ++state_.landmarks;
        ++state_.pc;
        break;
      case Instr::kJump:
        ++r[6];  // a real program's state moves on: the same round never repeats exactly
        state_.pc = in.target;
        break;
    }
    if (tracing && trace_accesses.size() == state_.time) trace_accesses.push_back(accesses);
    ++state_.time;
    std::vector<std::size_t> hits;
    for (std::size_t t = 0; t < armed_.size(); ++t) {
      const Trigger& trigger = armed_[t];
      if (trigger.kind == TriggerKind::kExecute) continue;
      for (const Access& a : accesses) {
        const bool kind_ok =
            trigger.kind == TriggerKind::kAccess ||
            (a.write ? trigger.kind == TriggerKind::kWrite : trigger.kind == TriggerKind::kRead);
        if (kind_ok && a.address < trigger.address + trigger.length &&
            trigger.address < a.address + a.size) {
          hits.push_back(t);
          break;
        }
      }
    }
    return hits;
  }

  std::vector<Instr> program_;
  ToyState state_;
  std::vector<Trigger> armed_;
};

}  // namespace drvm::vmm::replay::testing

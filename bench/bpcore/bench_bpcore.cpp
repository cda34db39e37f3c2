// bpcore hot paths: reservation, modify, scheduling and #DB dispatch.
#include <benchmark/benchmark.h>

#include <vector>

#include "bpcore/manager.hpp"

namespace drvm::bp {
namespace {

constexpr std::uint32_t kVcpus = 64;

EventSpec make_spec(BpAttr attr, Binding binding, bool pinned = true) {
  EventSpec s;
  s.attr = attr;
  s.binding = binding;
  s.pinned = pinned;
  return s;
}

// `existing` all-vCPU events of other targets (two per target) on 64 vCPUs and 4 slots.
void fill(BreakpointManager& m, std::int64_t existing) {
  for (std::int64_t k = 0; k < existing; ++k) {
    const TargetId target = 1000 + static_cast<TargetId>(k / 2);
    EventSpec s = make_spec({static_cast<std::uint64_t>(0x1000 + 8 * k), 8, BpType::kWrite},
                            Binding::target_all(target));
    s.disabled = true;
    if (!m.create(s)) throw std::runtime_error("fill failed");
  }
}

// Constraint bookkeeping only: the kernel's fast path for a target bound to all vCPUs.
void BM_ReserveReleaseConstraints(benchmark::State& state) {
  SlotConstraints c(SlotLayout::mixed(4), kVcpus);
  for (std::int64_t k = 0; k < state.range(0); ++k) {
    if (!c.reserve(Binding::target_all(1000 + static_cast<TargetId>(k / 2)), 0, 1)) {
      throw std::runtime_error("fill failed");
    }
  }
  for (auto _ : state) {
    auto r = c.reserve(Binding::target_all(1), 0, 1);
    benchmark::DoNotOptimize(r);
    c.release(Binding::target_all(1), 0, 1);
  }
}
BENCHMARK(BM_ReserveReleaseConstraints)->Arg(0)->Arg(100)->Arg(10000);

// The same through the manager: create (disabled, so nothing to schedule) and destroy.
void BM_CreateDestroyEvent(benchmark::State& state) {
  ManualClock clock;
  BreakpointManager m(ManagerConfig{kVcpus, SlotLayout::mixed(4)}, &clock);
  fill(m, state.range(0));
  EventSpec s = make_spec({0x400000, 1, BpType::kExecute}, Binding::target_all(1));
  s.disabled = true;
  for (auto _ : state) {
    auto id = m.create(s);
    benchmark::DoNotOptimize(id);
    (void)m.destroy(id.value());
  }
}
BENCHMARK(BM_CreateDestroyEvent)->Arg(0)->Arg(100)->Arg(10000);

// The slow path for comparison: the target also has a single-vCPU event, so the check
// walks every vCPU.
void BM_ReserveReleaseSlowPath(benchmark::State& state) {
  SlotConstraints c(SlotLayout::mixed(4), kVcpus);
  (void)c.reserve(Binding::target_on(1, 3), 0, 1);
  for (auto _ : state) {
    auto r = c.reserve(Binding::target_all(1), 0, 1);
    benchmark::DoNotOptimize(r);
    c.release(Binding::target_all(1), 0, 1);
  }
}
BENCHMARK(BM_ReserveReleaseSlowPath);

// modify(): a new address for an enabled single-vCPU event, then the reschedule it causes.
void BM_ModifyAndSchedule(benchmark::State& state) {
  ManualClock clock;
  BreakpointManager m(ManagerConfig{kVcpus, SlotLayout::mixed(4)}, &clock);
  const EventId id =
      m.create(make_spec({0x1000, 8, BpType::kWrite}, Binding::target_on(1, 0))).value();
  m.schedule(0);
  std::uint64_t addr = 0x1000;
  for (auto _ : state) {
    addr ^= 0x8;
    (void)m.modify(id, {addr, 8, BpType::kWrite});
    benchmark::DoNotOptimize(m.schedule(0).dr7);
  }
}
BENCHMARK(BM_ModifyAndSchedule);

// modify() alone (constraint check + bookkeeping), moving between separate pools.
void BM_ModifyAcrossPools(benchmark::State& state) {
  ManualClock clock;
  BreakpointManager m(ManagerConfig{kVcpus, SlotLayout::separate(4, 4)}, &clock);
  const EventId id =
      m.create(make_spec({0x1000, 1, BpType::kExecute}, Binding::target_all(1))).value();
  bool exec = true;
  for (auto _ : state) {
    exec = !exec;
    auto r = m.modify(id, {0x1000, 1, exec ? BpType::kExecute : BpType::kWrite});
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ModifyAcrossPools);

// A full reschedule of one vCPU with 4 slots and N flexible events (rotate() forces it).
void BM_ScheduleRotate(benchmark::State& state) {
  ManualClock clock;
  BreakpointManager m(ManagerConfig{1, SlotLayout::mixed(4)}, &clock);
  for (std::int64_t k = 0; k < state.range(0); ++k) {
    (void)m.create(make_spec({static_cast<std::uint64_t>(0x1000 + k), 1, BpType::kExecute},
                             Binding::target_on(1, 0), false));
  }
  m.schedule(0);
  for (auto _ : state) {
    if (!m.rotate(0)) {
      // Everything fits: force the same full pass rotate() would do.
      (void)m.modify(m.effective(0).slot_event[0], m.effective(0).slot_attr[0]);
      benchmark::DoNotOptimize(m.schedule(0).generation);
    }
  }
}
BENCHMARK(BM_ScheduleRotate)->Arg(1)->Arg(8)->Arg(64);

// schedule() when nothing changed: the per-VM-entry cost.
void BM_ScheduleUnchanged(benchmark::State& state) {
  ManualClock clock;
  BreakpointManager m(ManagerConfig{1, SlotLayout::mixed(4)}, &clock);
  for (std::int64_t k = 0; k < state.range(0); ++k) {
    (void)m.create(make_spec({static_cast<std::uint64_t>(0x1000 + k), 1, BpType::kExecute},
                             Binding::target_on(1, 0), false));
  }
  m.schedule(0);
  for (auto _ : state) benchmark::DoNotOptimize(m.schedule(0).generation);
}
BENCHMARK(BM_ScheduleUnchanged)->Arg(1)->Arg(8)->Arg(64);

// One #DB with one slot hit on a counting event with a sample period and handler.
void BM_DispatchOneHit(benchmark::State& state) {
  ManualClock clock;
  BreakpointManager m(ManagerConfig{kVcpus, SlotLayout::mixed(4)}, &clock);
  EventSpec s = make_spec({0x2000, 4, BpType::kWrite}, Binding::target_all(1));
  s.sample_period = 1000;
  s.on_overflow.fn = [](void*, const Overflow&) { return HitAction::kContinue; };
  (void)m.create(s);
  m.schedule(5);
  DispatchResult out;
  for (auto _ : state) {
    m.dispatch(5, DbHit{1, 0}, out);
    benchmark::DoNotOptimize(out.fired_count);
  }
}
BENCHMARK(BM_DispatchOneHit);

// One guest breakpoint hit: dispatch plus the guest DR6 update.
void BM_DispatchGuestHit(benchmark::State& state) {
  ManualClock clock;
  BreakpointManager m(ManagerConfig{1, SlotLayout::mixed(4)}, &clock);
  CpuMode mode;
  (void)m.guest(0).mov_to_dr(1, 0x3000, mode);
  (void)m.guest(0).mov_to_dr(7, dr7::l(1), mode);
  m.schedule(0);
  DispatchResult out;
  for (auto _ : state) {
    m.dispatch(0, DbHit{1, 0}, out);
    benchmark::DoNotOptimize(out.guest_dr6);
  }
}
BENCHMARK(BM_DispatchGuestHit);

// An engine-reported access matched against 16 armed software slots.
void BM_ReportAccess16Slots(benchmark::State& state) {
  ManualClock clock;
  BreakpointManager m(ManagerConfig{1, SlotLayout::mixed(16)}, &clock);
  for (std::uint64_t k = 0; k < 16; ++k) {
    (void)m.create(make_spec({0x10000 + 0x100 * k, 8, BpType::kReadWrite}, Binding::target_all(1)));
  }
  m.schedule(0);
  DispatchResult out;
  for (auto _ : state) {
    m.report_access(0, 0x10f04, 4, Access::kWrite, out);
    benchmark::DoNotOptimize(out.fired_count);
  }
}
BENCHMARK(BM_ReportAccess16Slots);

}  // namespace
}  // namespace drvm::bp

BENCHMARK_MAIN();

// Host events under drvm: exact counts with every engine, overflow handlers, stops, --exact as
// the reference hit by hit, CR3 switches, and coexistence with the guest's own breakpoints.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include "debug_harness.hpp"
#include "vmm/run_outcome.hpp"

namespace drvm::test {
namespace {

using vmm::debug::DebugController;
using vmm::debug::Engine;
using vmm::debug::HostHit;

constexpr unsigned kLoopIterations = 200;  // debugwork_main.c LOOP_ITERATIONS

struct LoopEvents {
  bp::EventId write, read, read_write, exec, block, write_len1;
};

LoopEvents add_loop_events(GuestRun& run) {
  auto& c = run.controller();
  const std::uint64_t write = run.symbol("host_write_target");
  const std::uint64_t read = run.symbol("host_read_target");
  LoopEvents e;
  e.write = create(c, host_event(write, 8, bp::BpType::kWrite));
  e.read = create(c, host_event(read, 8, bp::BpType::kRead));
  e.read_write = create(c, host_event(read, 4, bp::BpType::kReadWrite));
  e.exec = create(c, host_event(run.symbol("host_exec_target"), 1, bp::BpType::kExecute));
  e.block = create(c, host_event(run.symbol("host_block") + 10, 1, bp::BpType::kWrite));
  e.write_len1 = create(c, host_event(write + 7, 1, bp::BpType::kReadWrite));
  return e;
}

class HostEvents : public testing::TestWithParam<bool> {};

TEST_P(HostEvents, CountsAreExactInALoop) {
  DRVM_REQUIRE_KVM();
  GuestRun run(kDebugworkImage, "work=loop", GetParam());
  auto& c = run.controller();
  const LoopEvents e = add_loop_events(run);
  const vmm::RunOutcome outcome = run.run();
  ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  EXPECT_EQ(count(c, e.write), kLoopIterations);
  EXPECT_EQ(count(c, e.read), kLoopIterations);
  EXPECT_EQ(count(c, e.read_write), kLoopIterations);
  EXPECT_EQ(count(c, e.exec), kLoopIterations);
  EXPECT_EQ(count(c, e.block), 1u);  // one REP STOS
  EXPECT_EQ(count(c, e.write_len1), kLoopIterations);
  if (!GetParam()) {
    EXPECT_NE(c.engine_of(0, e.write), Engine::kNone);
    EXPECT_NE(c.engine_of(0, e.exec), Engine::kNone);
  } else {
    EXPECT_EQ(c.engine_of(0, e.write), Engine::kSingleStep);
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, HostEvents, testing::Values(false, true),
                         [](const auto& info) { return info.param ? "exact" : "fast"; });

// Every hit, as (event index, RIP, access address): the fast engines must report exactly what
// the --exact reference does.
std::vector<std::tuple<int, std::uint64_t, std::uint64_t>> record_hits(bool exact) {
  GuestRun run(kDebugworkImage, "work=loop", exact);
  const LoopEvents e = add_loop_events(run);
  const std::array<bp::EventId, 6> ids{e.write, e.read,  e.read_write,
                                       e.exec,  e.block, e.write_len1};
  std::vector<std::tuple<int, std::uint64_t, std::uint64_t>> hits;
  run.controller().set_hit_callback(vmm::debug::kSessionOwner, [&](const HostHit& hit) {
    const int index = static_cast<int>(std::find(ids.begin(), ids.end(), hit.event) - ids.begin());
    hits.emplace_back(index, hit.rip, hit.access ? hit.access->linear & ~7ull : 0);
    return false;
  });
  const vmm::RunOutcome outcome = run.run();
  EXPECT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  return hits;
}

TEST(HostEventsReference, FastEnginesMatchExactHitByHit) {
  DRVM_REQUIRE_KVM();
  const auto fast = record_hits(false);
  const auto exact = record_hits(true);
  ASSERT_EQ(fast.size(), exact.size());
  for (std::size_t i = 0; i < fast.size(); ++i) {
    EXPECT_EQ(fast[i], exact[i]) << "hit " << i << ": fast event " << std::get<0>(fast[i])
                                 << " rip " << std::hex << std::get<1>(fast[i]) << " exact event "
                                 << std::dec << std::get<0>(exact[i]) << " rip " << std::hex
                                 << std::get<1>(exact[i]);
    if (fast[i] != exact[i]) break;
  }
}

TEST(HostEventsOverflow, HandlerRunsEveryNthHit) {
  DRVM_REQUIRE_KVM();
  GuestRun run(kDebugworkImage, "work=loop", false);
  unsigned overflows = 0;
  bp::EventSpec s = host_event(run.symbol("host_write_target"), 8, bp::BpType::kWrite);
  s.sample_period = 50;
  s.on_overflow = {[](void* context, const bp::Overflow&) {
                     ++*static_cast<unsigned*>(context);
                     return bp::HitAction::kContinue;
                   },
                   &overflows};
  const bp::EventId id = create(run.controller(), s);
  ASSERT_EQ(run.run().status, vmm::status::exit_port(0)) << run.output();
  EXPECT_EQ(overflows, kLoopIterations / 50);
  EXPECT_EQ(count(run.controller(), id), kLoopIterations);
}

TEST(HostEventsStop, StopsAtTheBreakpointAndResumes) {
  DRVM_REQUIRE_KVM();
  GuestRun run(kDebugworkImage, "work=loop", false);
  auto& c = run.controller();
  const std::uint64_t target = run.symbol("host_exec_target");
  const bp::EventId exec =
      create(c, host_event(target, 1, bp::BpType::kExecute, vmm::debug::kGdbOwner));
  const bp::EventId watch = create(
      c, host_event(run.symbol("host_write_target"), 8, bp::BpType::kWrite, vmm::debug::kGdbOwner));
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<vmm::debug::StopInfo> stops;
  c.set_hit_callback(vmm::debug::kGdbOwner, [](const HostHit&) { return true; });
  c.set_stop_callback([&](unsigned, const vmm::debug::StopInfo& info) {
    std::lock_guard lock(mutex);
    stops.push_back(info);
    changed.notify_all();
  });
  std::thread debugger([&] {
    // Like gdb: resume from another thread; after 6 stops, remove the events and let it run.
    for (unsigned handled = 0; handled < 6; ++handled) {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return stops.size() > handled; });
      lock.unlock();
      if (handled == 5) {
        EXPECT_TRUE(c.destroy_event(exec).ok());
        EXPECT_TRUE(c.destroy_event(watch).ok());
      }
      c.resume(0);
    }
  });
  const vmm::RunOutcome outcome = run.run(60);
  debugger.join();
  ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  ASSERT_EQ(stops.size(), 6u);
  // Alternating: the write (trap-like, after it) then the call (fault-like, at the target).
  EXPECT_EQ(stops[0].kind, vmm::debug::StopKind::kWatchpoint);
  // The page engines see the access; a hardware data breakpoint only that its slot fired.
  if (stops[0].access) {
    EXPECT_EQ(stops[0].access->linear, run.symbol("host_write_target"));
  }
  EXPECT_EQ(stops[1].kind, vmm::debug::StopKind::kBreakpoint);
  EXPECT_EQ(stops[1].rip, target);
  EXPECT_EQ(stops[2].kind, vmm::debug::StopKind::kWatchpoint);
  EXPECT_EQ(stops[3].rip, target);
}

TEST(HostEventsStop, SingleStepExecutesOneInstruction) {
  DRVM_REQUIRE_KVM();
  GuestRun run(kDebugworkImage, "work=loop", false);
  auto& c = run.controller();
  const std::uint64_t target = run.symbol("host_exec_target");
  const bp::EventId exec =
      create(c, host_event(target, 1, bp::BpType::kExecute, vmm::debug::kGdbOwner));
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<vmm::debug::StopInfo> stops;
  c.set_hit_callback(vmm::debug::kGdbOwner, [](const HostHit&) { return true; });
  c.set_stop_callback([&](unsigned, const vmm::debug::StopInfo& info) {
    std::lock_guard lock(mutex);
    stops.push_back(info);
    changed.notify_all();
  });
  std::thread debugger([&] {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return stops.size() >= 1; });
    lock.unlock();
    c.single_step(0);  // the instruction at the breakpoint runs, the breakpoint is not reported
    lock.lock();
    changed.wait(lock, [&] { return stops.size() >= 2; });
    lock.unlock();
    EXPECT_TRUE(c.destroy_event(exec).ok());
    c.resume(0);
  });
  const vmm::RunOutcome outcome = run.run(60);
  debugger.join();
  ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  ASSERT_EQ(stops.size(), 2u);
  EXPECT_EQ(stops[0].kind, vmm::debug::StopKind::kBreakpoint);
  EXPECT_EQ(stops[1].kind, vmm::debug::StopKind::kStep);
  EXPECT_NE(stops[1].rip, target);  // host_exec_target is one RET: back in the loop
}

// A debugger's step of a REP string instruction runs one iteration (as TF does on the processor):
// RIP stays at the instruction and RCX counts down.
TEST(HostEventsStop, SingleStepRunsOneIterationOfARepString) {
  DRVM_REQUIRE_KVM();
  GuestRun run(kDebugworkImage, "work=loop", false);
  auto& c = run.controller();
  // loop_workload's REP STOSB (F3 AA), inlined into guest_main or not.
  std::uint64_t rep = 0;
  for (const char* function : {"loop_workload", "guest_main"}) {
    const auto address = elf_symbol_address(run.image().name, function);
    std::array<std::uint8_t, 1024> code{};
    if (!address ||
        !run.machine().memory().read(*address, std::as_writable_bytes(std::span(code)))) {
      continue;
    }
    for (std::size_t i = 0; i + 1 < code.size() && !rep; ++i) {
      if (code[i] == 0xf3 && code[i + 1] == 0xaa) rep = *address + i;
    }
    if (rep) break;
  }
  ASSERT_NE(rep, 0u);
  const bp::EventId exec =
      create(c, host_event(rep, 1, bp::BpType::kExecute, vmm::debug::kGdbOwner));
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<vmm::debug::StopInfo> stops;
  std::vector<std::uint64_t> counts;  // RCX at each stop
  c.set_hit_callback(vmm::debug::kGdbOwner, [](const HostHit&) { return true; });
  c.set_stop_callback([&](unsigned, const vmm::debug::StopInfo& info) {
    std::lock_guard lock(mutex);
    stops.push_back(info);
    changed.notify_all();
  });
  std::thread debugger([&] {
    for (std::size_t stop = 1; stop <= 3; ++stop) {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return stops.size() >= stop; });
      lock.unlock();
      run.machine().vcpu(0).pause();  // stopped already: this only waits until it is parked
      counts.push_back(run.machine().vcpu(0).vcpu().regs().rcx);
      if (stop < 3) c.single_step(0);
    }
    EXPECT_TRUE(c.destroy_event(exec).ok());
    c.resume(0);
  });
  const vmm::RunOutcome outcome = run.run(60);
  debugger.join();
  ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  ASSERT_EQ(stops.size(), 3u);
  EXPECT_EQ(stops[0].kind, vmm::debug::StopKind::kBreakpoint);
  for (std::size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(stops[i].kind, vmm::debug::StopKind::kStep);
    EXPECT_EQ(stops[i].rip, rep);
  }
  EXPECT_EQ(counts, (std::vector<std::uint64_t>{64, 63, 62}));
}

// work=cr3 switches CR3 between two page tables mapping the watched address to different pages;
// work=pte edits the page-directory entry mapping it in place (no CR3 switch, no other exit): the
// watch must follow either way (CR3 checks at exits; write-protected paging structures).
class HostEventsPaging : public testing::TestWithParam<const char*> {};

TEST_P(HostEventsPaging, WatchFollowsTheTranslation) {
  DRVM_REQUIRE_KVM();
  const std::string work = GetParam();
  GuestRun run(kDebugworkImage, "work=" + work, false);
  constexpr std::uint64_t kWatchLinear = 0x380000;  // debugwork_main.c CR3_WATCH_LINEAR
  const bp::EventId id = create(run.controller(), host_event(kWatchLinear, 8, bp::BpType::kWrite));
  const vmm::RunOutcome outcome = run.run();
  ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  EXPECT_NE(run.output().find(work + " done 4 3"), std::string::npos) << run.output();
  EXPECT_EQ(count(run.controller(), id), 4u);
}

INSTANTIATE_TEST_SUITE_P(Edits, HostEventsPaging, testing::Values("cr3", "pte"),
                         [](const auto& info) { return std::string(info.param); });

// The guest's cases pass while the host holds 8+ events on the same and other addresses, and
// every host count is exact (debugwork_cases.c touches each watched byte a known number of times).
TEST_P(HostEvents, CoexistWithTheGuestsOwnBreakpoints) {
  DRVM_REQUIRE_KVM();
  GuestRun run(kDebugworkImage, "", GetParam());
  auto& c = run.controller();
  const std::uint64_t watched = run.symbol("watched");
  const std::uint64_t target = run.symbol("breakpoint_target");
  struct Expect {
    bp::EventId id;
    std::uint64_t count;
  };
  std::vector<Expect> expects = {
      {create(c, host_event(watched + 400, 1, bp::BpType::kWrite)), 1},  // two_slots_one_exception
      {create(c, host_event(watched + 400, 8, bp::BpType::kReadWrite)),
       1},                                                               // same address, other type
      {create(c, host_event(watched + 200, 1, bp::BpType::kWrite)), 1},  // rep_stos_hits_once
      {create(c, host_event(watched + 300, 1, bp::BpType::kWrite)), 1},  // rep_movs_hits_once
      {create(c, host_event(watched + 128, 4, bp::BpType::kRead)), 1},   // read_write_watch
      {create(c, host_event(target, 1, bp::BpType::kExecute)), 3},       // instruction_breakpoint
      {create(c, host_event(target, 1, bp::BpType::kExecute, vmm::debug::kGdbOwner)), 3},
      {create(c, host_event(watched + 4096 + 64, 8, bp::BpType::kWrite)), 0},  // never touched
      {create(c, host_event(watched + 1024, 8, bp::BpType::kReadWrite)), 0},   // never touched
  };
  const vmm::RunOutcome outcome = run.run();
  const std::string output = run.output();
  EXPECT_EQ(outcome.status, vmm::status::exit_port(0)) << output << outcome.report;
  EXPECT_NE(output.find("12 passed, 0 failed"), std::string::npos) << output;
  for (std::size_t i = 0; i < expects.size(); ++i) {
    EXPECT_EQ(count(c, expects[i].id), expects[i].count) << "event " << i;
  }
}

}  // namespace
}  // namespace drvm::test

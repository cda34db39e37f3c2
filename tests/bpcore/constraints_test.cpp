// Slot constraint rules: worked examples, an exhaustive check and a randomized check, both
// against a brute-force model that recomputes the rule from the list of reservations.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "bpcore/constraints.hpp"

namespace drvm::bp {
namespace {

struct Res {
  Binding binding;
  PoolIndex pool;
  std::uint32_t weight;
};

// The rule, from first principles: on every vCPU, vCPU-bound weight plus the largest weight of
// any one target must fit the pool.
class Model {
 public:
  Model(SlotLayout layout, std::uint32_t vcpus) : layout_(layout), vcpus_(vcpus) {}

  std::uint32_t cpu(VcpuId v, PoolIndex p) const {
    std::uint32_t sum = 0;
    for (const Res& r : held_) {
      if (r.pool == p && r.binding.scope == Scope::kVcpu && r.binding.vcpu == v) sum += r.weight;
    }
    return sum;
  }
  std::uint32_t target(TargetId t, VcpuId v, PoolIndex p) const {
    std::uint32_t sum = 0;
    for (const Res& r : held_) {
      if (r.pool == p && r.binding.scope == Scope::kTarget && r.binding.target == t &&
          r.binding.applies_to(v)) {
        sum += r.weight;
      }
    }
    return sum;
  }
  std::uint32_t max_target(VcpuId v, PoolIndex p) const {
    std::uint32_t best = 0;
    for (const Res& r : held_) {
      if (r.binding.scope == Scope::kTarget) best = std::max(best, target(r.binding.target, v, p));
    }
    return best;
  }
  std::uint32_t max_pinned(const Binding& b, PoolIndex p) const {
    std::uint32_t worst = 0;
    for (VcpuId v = 0; v < vcpus_; ++v) {
      if (!b.applies_to(v)) continue;
      const std::uint32_t others =
          b.scope == Scope::kVcpu ? max_target(v, p) : target(b.target, v, p);
      worst = std::max(worst, cpu(v, p) + others);
    }
    return worst;
  }
  bool admits(const Res& r) const {
    return max_pinned(r.binding, r.pool) + r.weight <= layout_.pool_size(r.pool);
  }
  bool invariant_holds() const {
    for (PoolIndex p = 0; p < layout_.pool_count(); ++p) {
      for (VcpuId v = 0; v < vcpus_; ++v) {
        if (cpu(v, p) + max_target(v, p) > layout_.pool_size(p)) return false;
      }
    }
    return true;
  }
  std::vector<Res>& held() { return held_; }
  const std::vector<Res>& held() const { return held_; }

 private:
  SlotLayout layout_;
  std::uint32_t vcpus_;
  std::vector<Res> held_;
};

TEST(Constraints, VcpuBoundEventsFillTheirVcpuOnly) {
  SlotConstraints c(SlotLayout::mixed(4), 2);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(c.reserve(Binding::on_vcpu(0), 0, 1).ok());
  EXPECT_EQ(c.reserve(Binding::on_vcpu(0), 0, 1).error(), Error::kNoSpace);
  EXPECT_TRUE(c.reserve(Binding::on_vcpu(1), 0, 1).ok());
  EXPECT_EQ(c.vcpu_pinned(0, 0), 4u);
  EXPECT_EQ(c.vcpu_pinned(1, 0), 1u);
}

TEST(Constraints, TargetsDoNotCompeteWithEachOther) {
  // Example from docs/bpcore.md: two debuggers may each use all 4 slots on every vCPU.
  SlotConstraints c(SlotLayout::mixed(4), 2);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(c.reserve(Binding::target_all(1), 0, 1).ok());
    ASSERT_TRUE(c.reserve(Binding::target_all(2), 0, 1).ok());
  }
  EXPECT_EQ(c.reserve(Binding::target_all(1), 0, 1).error(), Error::kNoSpace);
  EXPECT_EQ(c.reserve(Binding::target_on(2, 1), 0, 1).error(), Error::kNoSpace);
  // ...but a vCPU-bound event now has no room anywhere.
  EXPECT_EQ(c.reserve(Binding::on_vcpu(0), 0, 1).error(), Error::kNoSpace);
}

TEST(Constraints, VcpuBoundEventTakesASlotFromEveryTarget) {
  SlotConstraints c(SlotLayout::mixed(4), 2);
  ASSERT_TRUE(c.reserve(Binding::on_vcpu(1), 0, 1).ok());
  ASSERT_TRUE(c.reserve(Binding::target_on(7, 0), 0, 4).ok());  // vCPU 0 is free
  EXPECT_EQ(c.reserve(Binding::target_all(8), 0, 4).error(), Error::kNoSpace);
  EXPECT_TRUE(c.reserve(Binding::target_all(8), 0, 3).ok());
  EXPECT_EQ(c.max_pinned(Binding::target_all(9), 0), 1u);  // fast path: max vCPU-bound
  EXPECT_EQ(c.max_pinned(Binding::target_on(7, 1), 0), 1u);
  EXPECT_EQ(c.max_pinned(Binding::target_all(7), 0), 4u);  // slow path
}

TEST(Constraints, FailedReserveChangesNothing) {
  SlotConstraints c(SlotLayout::mixed(4), 3);
  ASSERT_TRUE(c.reserve(Binding::target_all(1), 0, 3).ok());
  ASSERT_TRUE(c.reserve(Binding::on_vcpu(2), 0, 1).ok());
  const auto before = [&] {
    std::vector<std::uint32_t> s;
    for (VcpuId v = 0; v < 3; ++v) {
      s.push_back(c.vcpu_pinned(v, 0));
      s.push_back(c.target_pinned(1, v, 0));
      s.push_back(c.max_pinned(Binding::on_vcpu(v), 0));
      s.push_back(c.max_pinned(Binding::target_on(1, v), 0));
    }
    s.push_back(c.max_pinned(Binding::target_all(1), 0));
    return s;
  };
  const auto snapshot = before();
  EXPECT_EQ(c.reserve(Binding::target_on(1, 2), 0, 1).error(), Error::kNoSpace);
  EXPECT_EQ(c.reserve(Binding::on_vcpu(0), 0, 2).error(), Error::kNoSpace);
  EXPECT_EQ(c.reserve(Binding::target_all(1), 0, 1).error(), Error::kNoSpace);
  EXPECT_EQ(before(), snapshot);
}

TEST(Constraints, BadArguments) {
  SlotConstraints c(SlotLayout::mixed(4), 2);
  EXPECT_EQ(c.reserve(Binding::on_vcpu(2), 0, 1).error(), Error::kBadVcpu);
  EXPECT_EQ(c.reserve(Binding::on_vcpu(kAllVcpus), 0, 1).error(), Error::kBadVcpu);
  EXPECT_EQ(c.reserve(Binding::target_on(1, 5), 0, 1).error(), Error::kBadVcpu);
  EXPECT_EQ(c.reserve(Binding::target_all(1), 0, 0).error(), Error::kBadWeight);
  EXPECT_EQ(c.reserve(Binding::target_all(1), 0, 5).error(), Error::kBadWeight);
  EXPECT_THROW(SlotConstraints(SlotLayout::mixed(0), 1), std::invalid_argument);
  EXPECT_THROW(SlotConstraints(SlotLayout::mixed(65), 1), std::invalid_argument);
  EXPECT_THROW(SlotConstraints(SlotLayout::mixed(4), 0), std::invalid_argument);
}

TEST(Constraints, SwitchingBetweenFastAndSlowPathKeepsCounts) {
  SlotConstraints c(SlotLayout::mixed(4), 4);
  ASSERT_TRUE(c.reserve(Binding::target_all(1), 0, 2).ok());
  ASSERT_TRUE(c.reserve(Binding::target_on(1, 3), 0, 1).ok());  // target 1 now per vCPU
  EXPECT_EQ(c.target_pinned(1, 3, 0), 3u);
  EXPECT_EQ(c.target_pinned(1, 0, 0), 2u);
  EXPECT_EQ(c.max_pinned(Binding::on_vcpu(3), 0), 3u);
  EXPECT_EQ(c.max_pinned(Binding::on_vcpu(0), 0), 2u);
  c.release(Binding::target_on(1, 3), 0, 1);  // back to the global histogram
  EXPECT_EQ(c.max_pinned(Binding::on_vcpu(3), 0), 2u);
  c.release(Binding::target_all(1), 0, 2);
  for (VcpuId v = 0; v < 4; ++v) EXPECT_EQ(c.max_pinned(Binding::on_vcpu(v), 0), 0u);
  EXPECT_TRUE(c.reserve(Binding::on_vcpu(0), 0, 4).ok());
}

TEST(Constraints, MixedPoolSharesSeparatePoolsDoNot) {
  SlotConstraints mixed(SlotLayout::mixed(4), 1);
  const SlotLayout sep = SlotLayout::separate(2, 2);
  SlotConstraints separate(sep, 1);
  ASSERT_TRUE(mixed.reserve(Binding::target_all(1), 0, 4).ok());
  EXPECT_EQ(mixed.reserve(Binding::target_all(1), 0, 1).error(), Error::kNoSpace);
  EXPECT_EQ(sep.pool_of(BpType::kExecute), 0u);
  EXPECT_EQ(sep.pool_of(BpType::kWrite), 1u);
  ASSERT_TRUE(separate.reserve(Binding::target_all(1), 0, 2).ok());
  EXPECT_EQ(separate.reserve(Binding::target_all(1), 0, 1).error(), Error::kNoSpace);
  EXPECT_TRUE(separate.reserve(Binding::target_all(1), 1, 2).ok());
}

TEST(Constraints, ModifyMovesPoolsAndRollsBack) {
  SlotConstraints c(SlotLayout::separate(1, 2), 1);
  ASSERT_TRUE(c.reserve(Binding::target_all(1), 0, 1).ok());  // inst pool full
  ASSERT_TRUE(c.reserve(Binding::target_all(1), 1, 1).ok());
  ASSERT_TRUE(c.reserve(Binding::target_all(1), 1, 1).ok());  // data pool full
  EXPECT_EQ(c.modify(Binding::target_all(1), 1, 0, 1).error(), Error::kNoSpace);
  EXPECT_EQ(c.target_pinned(1, 0, 0), 1u);
  EXPECT_EQ(c.target_pinned(1, 0, 1), 2u);
  c.release(Binding::target_all(1), 0, 1);
  EXPECT_TRUE(c.modify(Binding::target_all(1), 1, 0, 1).ok());
  EXPECT_EQ(c.target_pinned(1, 0, 0), 1u);
  EXPECT_EQ(c.target_pinned(1, 0, 1), 1u);
  EXPECT_TRUE(c.modify(Binding::target_all(1), 0, 0, 1).ok());  // same pool: no-op
}

// Every multiset of reservations up to the slot limit, built in canonical order, and at each
// one every possible next reservation, compared with the model.
class Exhaustive {
 public:
  Exhaustive(SlotLayout layout, std::uint32_t vcpus, std::vector<Res> kinds)
      : layout_(layout), c_(layout, vcpus), model_(layout, vcpus), kinds_(std::move(kinds)) {}

  void run(std::size_t depth) { visit(0, depth); }
  std::size_t probes() const { return probes_; }

 private:
  void visit(std::size_t first, std::size_t depth) {
    for (std::size_t k = 0; k < kinds_.size(); ++k) {
      const Res& r = kinds_[k];
      ++probes_;
      ASSERT_EQ(c_.max_pinned(r.binding, r.pool), model_.max_pinned(r.binding, r.pool))
          << describe(k);
      const bool admitted = c_.reserve(r.binding, r.pool, r.weight).ok();
      ASSERT_EQ(admitted, model_.admits(r)) << describe(k);
      if (!admitted) continue;
      model_.held().push_back(r);
      ASSERT_TRUE(model_.invariant_holds());
      if (k >= first && depth > 1) visit(k, depth - 1);
      if (::testing::Test::HasFatalFailure()) return;
      c_.release(r.binding, r.pool, r.weight);
      model_.held().pop_back();
    }
  }
  std::string describe(std::size_t k) const {
    std::string s = "held:";
    for (const Res& r : model_.held()) s += " " + name(r);
    return s + " probe: " + name(kinds_[k]);
  }
  static std::string name(const Res& r) {
    std::string s =
        r.binding.scope == Scope::kVcpu ? "cpu" : "t" + std::to_string(r.binding.target);
    s += r.binding.vcpu == kAllVcpus ? "@all" : "@" + std::to_string(r.binding.vcpu);
    return s + "/p" + std::to_string(r.pool) + "w" + std::to_string(r.weight);
  }

  SlotLayout layout_;
  SlotConstraints c_;
  Model model_;
  std::vector<Res> kinds_;
  std::size_t probes_ = 0;
};

std::vector<Res> kinds_for(std::uint32_t vcpus, std::vector<std::uint32_t> weights,
                           PoolIndex pools) {
  std::vector<Res> kinds;
  for (PoolIndex p = 0; p < pools; ++p) {
    for (std::uint32_t w : weights) {
      for (VcpuId v = 0; v < vcpus; ++v) kinds.push_back({Binding::on_vcpu(v), p, w});
      for (TargetId t : {1u, 2u}) {
        kinds.push_back({Binding::target_all(t), p, w});
        for (VcpuId v = 0; v < vcpus; ++v) kinds.push_back({Binding::target_on(t, v), p, w});
      }
    }
  }
  return kinds;
}

TEST(ConstraintsExhaustive, OneVcpu) {
  Exhaustive e(SlotLayout::mixed(4), 1, kinds_for(1, {1, 2}, 1));
  e.run(4);
  EXPECT_GT(e.probes(), 1000u);
}

TEST(ConstraintsExhaustive, TwoVcpus) {
  Exhaustive e(SlotLayout::mixed(4), 2, kinds_for(2, {1, 2}, 1));
  e.run(4);
  EXPECT_GT(e.probes(), 10000u);
}

TEST(ConstraintsExhaustive, EightVcpus) {
  Exhaustive e(SlotLayout::mixed(4), 8, kinds_for(8, {1}, 1));
  e.run(4);
  EXPECT_GT(e.probes(), 90000u);
}

TEST(ConstraintsExhaustive, TwoVcpusSeparatePools) {
  Exhaustive e(SlotLayout::separate(2, 2), 2, kinds_for(2, {1}, 2));
  e.run(4);
  EXPECT_GT(e.probes(), 10000u);
}

// Thousands of random reserve / release / modify operations per seed, in any order.
void random_run(SlotLayout layout, std::uint32_t vcpus, unsigned seed, int ops) {
  SlotConstraints c(layout, vcpus);
  Model model(layout, vcpus);
  std::mt19937 rng(seed);
  const auto pick = [&](std::uint32_t n) {
    return std::uniform_int_distribution<std::uint32_t>(0, n - 1)(rng);
  };
  const auto random_res = [&] {
    Res r;
    r.pool = pick(layout.pool_count());
    r.weight = 1 + pick(2);
    const std::uint32_t v = pick(vcpus);
    switch (pick(3)) {
      case 0:
        r.binding = Binding::on_vcpu(v);
        break;
      case 1:
        r.binding = Binding::target_all(1 + pick(3));
        break;
      default:
        r.binding = Binding::target_on(1 + pick(3), v);
    }
    return r;
  };
  int admitted = 0;
  int refused = 0;
  for (int i = 0; i < ops; ++i) {
    auto& held = model.held();
    const std::uint32_t op = pick(10);
    if (op < 5 || held.empty()) {
      const Res r = random_res();
      const bool ok = c.reserve(r.binding, r.pool, r.weight).ok();
      ASSERT_EQ(ok, model.admits(r)) << "seed " << seed << " op " << i;
      if (ok) {
        held.push_back(r);
        ++admitted;
      } else {
        ++refused;
      }
    } else if (op < 8) {
      const std::uint32_t k = pick(static_cast<std::uint32_t>(held.size()));
      c.release(held[k].binding, held[k].pool, held[k].weight);
      held.erase(held.begin() + k);
    } else {
      const std::uint32_t k = pick(static_cast<std::uint32_t>(held.size()));
      const Res old = held[k];
      Res moved = old;
      moved.pool = pick(layout.pool_count());
      held.erase(held.begin() + k);
      const bool fits = old.pool == moved.pool || model.admits(moved);
      ASSERT_EQ(c.modify(old.binding, old.pool, moved.pool, old.weight).ok(), fits)
          << "seed " << seed << " op " << i;
      held.push_back(fits ? moved : old);
    }
    ASSERT_TRUE(model.invariant_holds());
    for (int probe = 0; probe < 3; ++probe) {
      const Res r = random_res();
      ASSERT_EQ(c.max_pinned(r.binding, r.pool), model.max_pinned(r.binding, r.pool))
          << "seed " << seed << " op " << i;
    }
    const VcpuId v = pick(vcpus);
    const PoolIndex p = pick(layout.pool_count());
    ASSERT_EQ(c.vcpu_pinned(v, p), model.cpu(v, p));
    const TargetId t = 1 + pick(3);
    ASSERT_EQ(c.target_pinned(t, v, p), model.target(t, v, p));
  }
  EXPECT_GT(admitted, ops / 10);
  EXPECT_GT(refused, ops / 20);
}

TEST(ConstraintsRandom, MixedPoolAgainstModel) {
  for (unsigned seed : {1u, 2u, 3u, 4u}) random_run(SlotLayout::mixed(4), 3, seed, 3000);
}

TEST(ConstraintsRandom, SeparatePoolsAgainstModel) {
  for (unsigned seed : {11u, 12u, 13u}) random_run(SlotLayout::separate(2, 3), 3, seed, 3000);
}

TEST(ConstraintsRandom, ManySlotsManyVcpus) {
  random_run(SlotLayout::mixed(8), 5, 99, 2000);
}

}  // namespace
}  // namespace drvm::bp

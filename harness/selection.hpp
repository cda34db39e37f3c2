// Which cases a run executes: --filter patterns, then --shard I/N over what is left.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/manifest.hpp"

namespace drvm::harness {

struct SelectedCase {
  const Suite* suite;
  const Case* test;
  std::string full_name() const { return suite->name + "/" + test->name; }
};

// Shard `index` (1-based) of `count`.
struct Shard {
  unsigned index = 1;
  unsigned count = 1;
};

// Parses "I/N" with 1 <= I <= N; nullopt when malformed.
std::optional<Shard> parse_shard(std::string_view text);

// Glob (*, ?, [...]) against "SUITE/CASE"; a pattern without '/' matches the case name alone.
bool matches_filter(const SelectedCase& c, std::string_view pattern);

// The cases of `suites` in manifest order that match any of `filters` (all when empty).
std::vector<SelectedCase> filter_cases(const std::vector<Suite>& suites,
                                       const std::vector<std::string>& filters);

// Round-robin by position in `cases`: case k goes to shard (k mod N) + 1, so the N shards cover
// every case exactly once, are balanced within one case, and agree between machines because the
// order of the manifests and cases is the same everywhere.
std::vector<SelectedCase> shard_cases(const std::vector<SelectedCase>& cases, Shard shard);

}  // namespace drvm::harness

#include "harness/selection.hpp"

#include <fnmatch.h>

#include "cmdline/numbers.hpp"

namespace drvm::harness {

std::optional<Shard> parse_shard(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto index = cmdline::parse_whole_number(text.substr(0, slash));
  const auto count = cmdline::parse_whole_number(text.substr(slash + 1));
  if (!index || !count || *index < 1 || *index > *count || *count > 1'000'000) return std::nullopt;
  return Shard{static_cast<unsigned>(*index), static_cast<unsigned>(*count)};
}

bool matches_filter(const SelectedCase& c, std::string_view pattern) {
  const std::string glob(pattern);
  const std::string subject = glob.find('/') == std::string::npos ? c.test->name : c.full_name();
  return fnmatch(glob.c_str(), subject.c_str(), 0) == 0;
}

std::vector<SelectedCase> filter_cases(const std::vector<Suite>& suites,
                                       const std::vector<std::string>& filters) {
  std::vector<SelectedCase> out;
  for (const Suite& suite : suites) {
    for (const Case& test : suite.cases) {
      const SelectedCase candidate{&suite, &test};
      bool keep = filters.empty();
      for (const std::string& pattern : filters) keep = keep || matches_filter(candidate, pattern);
      if (keep) out.push_back(candidate);
    }
  }
  return out;
}

std::vector<SelectedCase> shard_cases(const std::vector<SelectedCase>& cases, Shard shard) {
  std::vector<SelectedCase> out;
  for (std::size_t k = shard.index - 1; k < cases.size(); k += shard.count) {
    out.push_back(cases[k]);
  }
  return out;
}

}  // namespace drvm::harness

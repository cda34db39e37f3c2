#include "harness/selection.hpp"

#include <fnmatch.h>

#include <charconv>

namespace drvm::harness {
namespace {

std::optional<unsigned> parse_unsigned(std::string_view text) {
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::optional<Shard> parse_shard(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto index = parse_unsigned(text.substr(0, slash));
  const auto count = parse_unsigned(text.substr(slash + 1));
  if (!index || !count || *index < 1 || *index > *count) return std::nullopt;
  return Shard{*index, *count};
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

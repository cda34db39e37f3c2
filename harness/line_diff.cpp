#include "harness/line_diff.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "harness/text_escape.hpp"

namespace drvm::harness {
namespace {

// Lines keep their '\n' so that a missing final newline is a difference too.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::size_t length = end == std::string_view::npos ? text.size() : end + 1;
    lines.push_back(text.substr(0, length));
    text.remove_prefix(length);
  }
  return lines;
}

enum class Op : char { Same = ' ', Removed = '-', Added = '+' };

struct Edit {
  Op op;
  std::string_view line;
};

// The shortest edit script between a and b (which share no prefix or suffix), by LCS.
void lcs_edits(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b,
               std::vector<Edit>& edits) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::uint32_t> lcs((n + 1) * (m + 1), 0);  // lcs of a[i..] and b[j..]
  const auto at = [&](std::size_t i, std::size_t j) -> std::uint32_t& {
    return lcs[i * (m + 1) + j];
  };
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t j = m; j-- > 0;) {
      at(i, j) = a[i] == b[j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
    }
  }
  std::size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      edits.push_back({Op::Same, a[i++]});
      ++j;
    } else if (i < n && (j == m || at(i + 1, j) >= at(i, j + 1))) {
      edits.push_back({Op::Removed, a[i++]});  // removals first, as diff(1) shows them
    } else {
      edits.push_back({Op::Added, b[j++]});
    }
  }
}

void render_line(const Edit& edit, std::vector<std::string>& lines) {
  std::string_view line = edit.line;
  const bool newline = !line.empty() && line.back() == '\n';
  if (newline) line.remove_suffix(1);
  lines.push_back(fmt::format("{}{}\n", static_cast<char>(edit.op), printable_text(line, false)));
  if (!newline) lines.push_back("\\ No newline at end of file\n");
}

}  // namespace

std::string unified_diff(std::string_view expected, std::string_view actual,
                         std::string_view expected_label, std::string_view actual_label,
                         const DiffLimits& limits) {
  if (expected == actual) return {};
  const auto a = split_lines(expected);
  const auto b = split_lines(actual);
  std::size_t prefix = 0;
  while (prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix]) ++prefix;
  std::size_t suffix = 0;
  while (suffix < a.size() - prefix && suffix < b.size() - prefix &&
         a[a.size() - 1 - suffix] == b[b.size() - 1 - suffix]) {
    ++suffix;
  }
  const std::vector<std::string_view> a_mid(a.begin() + prefix, a.end() - suffix);
  const std::vector<std::string_view> b_mid(b.begin() + prefix, b.end() - suffix);

  std::string out = fmt::format("--- {}\n+++ {}\n", expected_label, actual_label);
  if ((a_mid.size() + 1) * (b_mid.size() + 1) > limits.max_cells) {
    out += fmt::format(
        "@@ outputs differ from line {}: {} expected lines vs {} actual lines, "
        "too many to diff @@\n",
        prefix + 1, a_mid.size(), b_mid.size());
    std::vector<std::string> lines;
    if (!a_mid.empty()) render_line({Op::Removed, a_mid.front()}, lines);
    if (!b_mid.empty()) render_line({Op::Added, b_mid.front()}, lines);
    for (const std::string& line : lines) out += line;
    return out;
  }

  std::vector<Edit> edits;
  for (std::size_t i = 0; i < prefix; ++i) edits.push_back({Op::Same, a[i]});
  lcs_edits(a_mid, b_mid, edits);
  for (std::size_t i = a.size() - suffix; i < a.size(); ++i) edits.push_back({Op::Same, a[i]});

  // Hunks: runs of changes with up to `context` unchanged lines around them; changes separated
  // by at most 2 * context unchanged lines share a hunk.
  std::vector<std::string> lines;
  std::size_t k = 0;
  std::size_t old_line = 0, new_line = 0;  // 0-based line numbers at edits[k]
  while (k < edits.size()) {
    std::size_t change = k;
    while (change < edits.size() && edits[change].op == Op::Same) ++change;
    if (change == edits.size()) break;
    const std::size_t lead = std::min(limits.context, change - k);
    const std::size_t begin = change - lead;
    std::size_t end = change;
    std::size_t same_run = 0;
    while (end < edits.size() && same_run <= 2 * limits.context) {
      same_run = edits[end].op == Op::Same ? same_run + 1 : 0;
      ++end;
    }
    std::size_t trailing = 0;
    while (trailing < end - change && edits[end - 1 - trailing].op == Op::Same) ++trailing;
    end -= trailing > limits.context ? trailing - limits.context : 0;

    const std::size_t old_at = old_line + (begin - k), new_at = new_line + (begin - k);
    std::size_t old_count = 0, new_count = 0;
    for (std::size_t i = begin; i < end; ++i) {
      if (edits[i].op != Op::Added) ++old_count;
      if (edits[i].op != Op::Removed) ++new_count;
    }
    lines.push_back(fmt::format("@@ -{},{} +{},{} @@\n", old_count ? old_at + 1 : old_at, old_count,
                                new_count ? new_at + 1 : new_at, new_count));
    for (std::size_t i = begin; i < end; ++i) render_line(edits[i], lines);
    for (std::size_t i = k; i < end; ++i) {
      if (edits[i].op != Op::Added) ++old_line;
      if (edits[i].op != Op::Removed) ++new_line;
    }
    k = end;
  }
  const std::size_t shown = std::min(lines.size(), limits.max_output_lines);
  for (std::size_t i = 0; i < shown; ++i) out += lines[i];
  const std::size_t hidden = lines.size() - shown;
  if (hidden > 0) out += fmt::format("... {} more diff lines not shown\n", hidden);
  return out;
}

}  // namespace drvm::harness

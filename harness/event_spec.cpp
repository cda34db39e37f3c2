#include "harness/event_spec.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cstdint>

namespace drvm::harness {
namespace {

bool is_number(std::string_view text) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    base = 16;
  }
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  return !text.empty() && error == std::errc() && end == text.data() + text.size();
}

bool is_symbol(std::string_view text) {
  if (text.empty() || std::isdigit(static_cast<unsigned char>(text[0]))) return false;
  for (const char ch : text) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.' && ch != '$') {
      return false;
    }
  }
  return true;
}

std::optional<std::string> option_problem(std::string_view option) {
  if (option == "pinned" || option == "exclusive") return std::nullopt;
  const std::size_t equals = option.find('=');
  const std::string_view name = option.substr(0, equals);
  if (equals != std::string_view::npos && (name == "period" || name == "vcpu")) {
    if (is_number(option.substr(equals + 1))) return std::nullopt;
    return fmt::format("option '{}' needs a number", name);
  }
  return fmt::format("unknown option '{}'; expected period=N, pinned, exclusive or vcpu=N", option);
}

}  // namespace

std::optional<std::string> event_spec_problem(std::string_view spec) {
  constexpr std::string_view kPrefix = "mem:";
  if (!spec.starts_with(kPrefix)) {
    return fmt::format("event '{}' must start with 'mem:' (mem:SYMBOL[/LEN][:rw])", spec);
  }
  std::string_view rest = spec.substr(kPrefix.size());
  const std::size_t comma = rest.find(',');
  std::string_view options = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
  rest = rest.substr(0, comma);

  if (const std::size_t colon = rest.find(':'); colon != std::string_view::npos) {
    const std::string_view access = rest.substr(colon + 1);
    if (access != "r" && access != "w" && access != "rw" && access != "x") {
      return fmt::format("access '{}' in event '{}' must be r, w, rw or x", access, spec);
    }
    rest = rest.substr(0, colon);
  }
  if (const std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
    if (!is_number(rest.substr(slash + 1))) {
      return fmt::format("length '{}' in event '{}' must be a number", rest.substr(slash + 1),
                         spec);
    }
    rest = rest.substr(0, slash);
  }
  if (const std::size_t plus = rest.find('+'); plus != std::string_view::npos) {
    if (!is_number(rest.substr(plus + 1))) {
      return fmt::format("offset '{}' in event '{}' must be a number", rest.substr(plus + 1), spec);
    }
    rest = rest.substr(0, plus);
  }
  if (!is_number(rest) && !is_symbol(rest)) {
    return fmt::format("'{}' in event '{}' must be an address or a symbol name", rest, spec);
  }
  while (comma != std::string_view::npos && !options.empty()) {
    const std::size_t next = options.find(',');
    if (auto problem = option_problem(options.substr(0, next))) return problem;
    if (next == std::string_view::npos) break;
    options.remove_prefix(next + 1);
  }
  if (comma != std::string_view::npos && (options.empty() || spec.back() == ',')) {
    return fmt::format("event '{}' has an empty option after ','", spec);
  }
  return std::nullopt;
}

}  // namespace drvm::harness

#include "options.hpp"

#include <fmt/format.h>
#include <charconv>
#include <cmath>

namespace drvm::cli {

void OptionParser::add_flag(std::string name, bool* target, std::string help) {
  options_.push_back({std::move(name), "", target, nullptr, std::move(help)});
}

void OptionParser::add_value(std::string name, std::string metavar, Setter setter,
                             std::string help) {
  options_.push_back(
      {std::move(name), std::move(metavar), nullptr, std::move(setter), std::move(help)});
}

const OptionParser::Option* OptionParser::find(std::string_view name) const {
  for (const Option& option : options_) {
    if (option.name == name) return &option;
  }
  return nullptr;
}

std::vector<std::string_view> OptionParser::parse(std::span<const std::string_view> args) const {
  std::vector<std::string_view> positionals;
  bool options_ended = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (options_ended || arg.size() < 2 || arg[0] != '-') {
      positionals.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    const std::size_t equals = arg.find('=');
    const std::string_view name = arg.substr(0, equals);
    const Option* option = find(name);
    if (option == nullptr) {
      throw UsageError(fmt::format("{}: unknown option '{}'; run 'drvm {} --help' for the list",
                                   command_, name, command_));
    }
    if (option->flag != nullptr) {
      if (equals != std::string_view::npos) {
        throw UsageError(
            fmt::format("{}: option '{}' takes no value; write just '{}'", command_, name, name));
      }
      *option->flag = true;
      continue;
    }
    std::string_view value;
    if (equals != std::string_view::npos) {
      value = arg.substr(equals + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw UsageError(fmt::format("{}: option '{}' needs a value; write '{} {}'", command_, name,
                                   name, option->metavar));
    }
    option->setter(value);
  }
  return positionals;
}

std::string OptionParser::option_help() const {
  std::string out;
  for (const Option& option : options_) {
    const std::string left =
        option.metavar.empty() ? option.name : option.name + " " + option.metavar;
    out += fmt::format("  {:<22} {}\n", left, option.help);
  }
  return out;
}

std::uint64_t parse_size(std::string_view option, std::string_view text) {
  std::uint64_t number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  std::string_view suffix(end, static_cast<std::size_t>(text.data() + text.size() - end));
  unsigned shift = 0;
  if (suffix == "k" || suffix == "K")
    shift = 10;
  else if (suffix == "m" || suffix == "M")
    shift = 20;
  else if (suffix == "g" || suffix == "G")
    shift = 30;
  else if (!suffix.empty())
    number = 0, shift = 64;  // marks a bad suffix
  if (error != std::errc() || end == text.data() || shift == 64 ||
      number > (~std::uint64_t{0} >> shift)) {
    throw UsageError(
        fmt::format("{}: '{}' is not a size; write bytes or a number with K, M or "
                    "G (e.g. 64M, 1G)",
                    option, text));
  }
  return number << shift;
}

double parse_seconds(std::string_view option, std::string_view text) {
  double seconds = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(seconds) ||
      seconds <= 0) {
    throw UsageError(
        fmt::format("{}: '{}' is not a positive number of seconds; write e.g. 0.5 "
                    "or 10",
                    option, text));
  }
  return seconds;
}

}  // namespace drvm::cli

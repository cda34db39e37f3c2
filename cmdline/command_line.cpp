#include "cmdline/command_line.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <map>

namespace drvm::cmdline {

namespace {

constexpr std::size_t kOptionColumn = 24;  // "  -j, --jobs N" padded; the help starts after it

// "-j,--jobs" -> "-j, --jobs"
std::string display_names(const std::string& names) {
  std::string out;
  for (const char c : names) {
    out += c;
    if (c == ',') out += ' ';
  }
  return out;
}

// The long spelling, as a user would write it: "-j,--jobs" -> "--jobs".
std::string main_name(const std::string& names) {
  const std::size_t comma = names.rfind(',');
  return comma == std::string::npos ? names : names.substr(comma + 1);
}

}  // namespace

CommandLine::CommandLine(std::string command)
    : command_(std::move(command)), app_(std::make_unique<CLI::App>("", "drvm " + command_)) {
  // --help is an ordinary flag here: the command prints its own help text.
  app_->set_help_flag();
  // Unknown options are collected and reported in the project's words, not CLI11's.
  app_->allow_extras(true);
  app_->add_option("positionals", positionals_);
}

CommandLine::~CommandLine() = default;

void CommandLine::add_flag(const std::string& names, bool* target, std::string help) {
  auto option = std::make_unique<Option>(Option{names, "", target, nullptr, std::move(help)});
  option->parsed = app_->add_flag(names)->disable_flag_override();
  options_.push_back(std::move(option));
}

void CommandLine::add_value(const std::string& names, std::string metavar, Setter setter,
                            std::string help) {
  auto option = std::make_unique<Option>(
      Option{names, std::move(metavar), nullptr, std::move(setter), std::move(help)});
  // Repeats are kept (TakeAll) and replayed in order below; each takes exactly one value.
  option->parsed = app_->add_option(names)
                       ->type_name(option->metavar)
                       ->expected(1)
                       ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  options_.push_back(std::move(option));
}

const CommandLine::Option* CommandLine::find(const CLI::Option* parsed) const {
  for (const auto& option : options_) {
    if (option->parsed == parsed) return option.get();
  }
  return nullptr;
}

const CommandLine::Option* CommandLine::find_name(std::string_view name) const {
  for (const auto& option : options_) {
    if (option->parsed->check_name(std::string(name))) return option.get();
  }
  return nullptr;
}

UsageError CommandLine::error(std::string_view message) const {
  return UsageError(fmt::format("{}: {}", command_, message));
}

void CommandLine::rethrow_mismatch(const std::string& cli_message) const {
  // CLI11 names the option first: "--mem: 1 required SIZE missing" or "tap was given a
  // disallowed flag override".
  const std::size_t end = cli_message.find_first_of(": ");
  const std::string name = cli_message.substr(0, end);
  const Option* option = find_name(name);
  if (option == nullptr) option = find_name("--" + name);
  if (option == nullptr) option = find_name("-" + name);
  if (option == nullptr) {
    throw error(fmt::format("{}; run 'drvm {} --help' for the options", cli_message, command_));
  }
  const std::string spelled = main_name(option->names);
  if (option->flag != nullptr) {
    throw error(fmt::format("option '{}' takes no value; write just '{}'", spelled, spelled));
  }
  throw error(
      fmt::format("option '{}' needs a value; write '{} {}'", spelled, spelled, option->metavar));
}

std::vector<std::string> CommandLine::parse(std::span<const std::string_view> args) {
  positionals_.clear();
  app_->clear();
  // clear() keeps the previous parse's order: this parse's entries follow it.
  const std::size_t first_parsed = app_->parse_order().size();
  // CLI11 reads "--mem=" (an empty value) as "--mem" and takes the next argument as its value.
  for (const std::string_view arg : args) {
    if (arg == "--") break;
    if (arg.size() > 3 && arg.starts_with("--") && arg.ends_with('=')) {
      const Option* option = find_name(arg.substr(0, arg.size() - 1));
      if (option != nullptr && option->flag == nullptr) {
        const std::string spelled = main_name(option->names);
        throw error(fmt::format("option '{}' needs a value; write '{} {}'", spelled, spelled,
                                option->metavar));
      }
    }
  }
  // CLI11 consumes its argument vector from the back.
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app_->parse(reversed);
  } catch (const CLI::ArgumentMismatch& mismatch) {
    rethrow_mismatch(mismatch.what());
  } catch (const CLI::ParseError& other) {
    throw error(fmt::format("{}; run 'drvm {} --help' for the options", other.what(), command_));
  }
  for (const std::string& extra : app_->remaining()) {
    if (extra == "--") continue;  // CLI11 keeps the end-of-options mark among the extras
    const std::string name = extra.substr(0, extra.find('='));
    throw error(
        fmt::format("unknown option '{}'; run 'drvm {} --help' for the list", name, command_));
  }
  // Values in command-line order: parse_order() has one entry per occurrence.
  std::map<const CLI::Option*, std::size_t> used;
  const std::vector<CLI::Option*>& order = app_->parse_order();
  for (std::size_t i = first_parsed; i < order.size(); ++i) {
    const CLI::Option* parsed = order[i];
    const Option* option = find(parsed);
    if (option == nullptr) continue;  // a positional
    if (option->flag != nullptr) {
      *option->flag = true;
      continue;
    }
    const std::size_t index = used[parsed]++;
    option->setter(parsed->results().at(index));
  }
  return positionals_;
}

std::string CommandLine::option_help() const {
  std::string out;
  for (const auto& option : options_) {
    if (option->help.empty()) continue;
    std::string left = "  " + display_names(option->names);
    if (!option->metavar.empty()) left += " " + option->metavar;
    if (left.size() > kOptionColumn) {
      out += left + "\n" + std::string(kOptionColumn + 1, ' ');
    } else {
      out += fmt::format("{:<{}} ", left, kOptionColumn);
    }
    out += wrap_text(option->help, kOptionColumn + 1, kOptionColumn + 1) + "\n";
  }
  return out;
}

std::string wrap_text(std::string_view text, std::size_t first_column, std::size_t indent,
                      std::size_t width) {
  std::string out;
  std::size_t column = first_column;
  bool line_empty = true;
  while (!text.empty()) {
    const std::size_t start = text.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    text.remove_prefix(start);
    const std::size_t length = std::min(text.find(' '), text.size());
    const std::string_view word = text.substr(0, length);
    text.remove_prefix(length);
    if (!line_empty && column + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      column = indent;
      line_empty = true;
    }
    if (!line_empty) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    line_empty = false;
  }
  return out;
}

}  // namespace drvm::cmdline

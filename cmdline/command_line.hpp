// One subcommand's command line, parsed by CLI11: --flag, --name VALUE, --name=VALUE, -j4,
// "--" ends the options, positionals in order. Values reach their setters in command-line order,
// so a later --mem wins and --event keeps its order. Errors are one line in the project's style;
// the option list for --help is wrapped at 100 columns.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace drvm::cmdline {

// what(): "<command>: <what failed>: <cause>; <what to do>" -- the caller prints "drvm: " first
// and exits with status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr std::size_t kHelpWidth = 100;

class CommandLine {
 public:
  using Setter = std::function<void(const std::string& value)>;  // may throw UsageError

  explicit CommandLine(std::string command);  // "run", "test", "probe"
  ~CommandLine();
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  const std::string& command() const { return command_; }

  // `names`: "--tap" or "-v,--verbose". An empty `help` keeps an internal option out of --help.
  void add_flag(const std::string& names, bool* target, std::string help);
  void add_value(const std::string& names, std::string metavar, Setter setter, std::string help);

  // Runs the setters and returns the positionals. Throws UsageError naming the bad argument.
  std::vector<std::string> parse(std::span<const std::string_view> args);

  // One entry per option ("  -j, --jobs N          cases run in parallel ..."), for --help.
  std::string option_help() const;

  // A usage error of this command: "<command>: <message>".
  UsageError error(std::string_view message) const;

 private:
  struct Option {
    std::string names;
    std::string metavar;  // empty for flags
    bool* flag = nullptr;
    Setter setter;
    std::string help;
    CLI::Option* parsed = nullptr;
  };
  const Option* find(const CLI::Option* parsed) const;
  const Option* find_name(std::string_view name) const;
  [[noreturn]] void rethrow_mismatch(const std::string& cli_message) const;

  std::string command_;
  std::unique_ptr<CLI::App> app_;
  std::vector<std::unique_ptr<Option>> options_;
  std::vector<std::string> positionals_;
};

// `text` wrapped to `width` columns; continuation lines start with `indent` spaces (the first
// line is the caller's, already `first_column` wide).
std::string wrap_text(std::string_view text, std::size_t first_column, std::size_t indent,
                      std::size_t width = kHelpWidth);

}  // namespace drvm::cmdline

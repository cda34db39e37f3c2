// A small command-line option parser shared by the subcommands: --flag, --name VALUE and
// --name=VALUE, "--" to end options, positionals in order. Errors throw UsageError with a one-line
// message (without "drvm: ").
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace drvm::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class OptionParser {
 public:
  using Setter = std::function<void(std::string_view value)>;  // may throw UsageError

  explicit OptionParser(std::string command) : command_(std::move(command)) {}

  void add_flag(std::string name, bool* target, std::string help);
  void add_value(std::string name, std::string metavar, Setter setter, std::string help);

  // Returns the positional arguments. Throws UsageError naming the bad argument.
  std::vector<std::string_view> parse(std::span<const std::string_view> args) const;
  // The option list, one line per option, for --help.
  std::string option_help() const;

 private:
  struct Option {
    std::string name;     // with the leading "--"
    std::string metavar;  // empty for flags
    bool* flag = nullptr;
    Setter setter;
    std::string help;
  };
  const Option* find(std::string_view name) const;

  std::string command_;
  std::vector<Option> options_;
};

// "128M", "1G", "64k", "4096" (bytes). Binary units. Throws UsageError.
std::uint64_t parse_size(std::string_view option, std::string_view text);
// Non-negative decimal seconds, fractions allowed ("0.5"). Throws UsageError.
double parse_seconds(std::string_view option, std::string_view text);

}  // namespace drvm::cli

// Suite manifests: the TOML files `drvm test` reads. A manifest lists cases (an image, how to boot
// it, what must happen); parsing validates everything up front so that a typo fails before any
// guest runs, with the file, line and key in the message.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace drvm::harness {

// How a run may end, as far as a manifest can expect it.
enum class ExpectedOutcome { Exit, Halt, Timeout, Fault };

std::string_view to_string(ExpectedOutcome outcome);

struct Expectation {
  ExpectedOutcome outcome = ExpectedOutcome::Exit;
  // The value the guest writes to the exit port; only meaningful for Exit. nullopt: any value.
  std::optional<unsigned> exit_value = 0;
};

// A regular expression (RE2 syntax, matched on bytes) searched for in each line of the serial
// output. RE2 runs in time linear in the line and never recurses, so no guest output can crash or
// stall the harness (std::regex overflowed the stack on long lines).
struct LinePattern {
  std::string source;
  std::shared_ptr<const re2::RE2> regex;  // shared: cases copy their defaults' patterns
};

// Compiles a pattern; the error is RE2's reason plus what drvm's syntax does not have.
std::shared_ptr<const re2::RE2> compile_line_pattern(const std::string& source, std::string& error);
// True when the pattern matches somewhere in `line`.
bool line_matches(const re2::RE2& regex, std::string_view line);

struct SerialExpectation {
  std::optional<std::filesystem::path> golden;  // absolute; compared byte for byte
  std::vector<LinePattern> require;             // each must match at least one line
  std::vector<LinePattern> forbid;              // none may match any line
};

// An inclusive range of expected event counts (`count = N` gives min == max == N).
struct CountRange {
  std::uint64_t min = 0;
  std::uint64_t max = 0;
  bool contains(std::uint64_t n) const { return n >= min && n <= max; }
};

struct EventExpectation {
  std::string spec;  // passed verbatim to `drvm run --event`
  CountRange count;
};

struct Case {
  std::string name;
  std::string location;             // "file:line" of the [[case]] table, for reports
  std::filesystem::path image;      // absolute
  std::string cmdline;              // empty: no --cmdline
  std::vector<std::string> initrd;  // one drvm run --initrd each: "FILE[ ARGS]", FILE absolute
  std::optional<std::uint64_t> mem_bytes;  // `mem`, by drvm run --mem's rule (cmdline/numbers.hpp)
  std::optional<unsigned> cpus;  // `cpus`, by drvm run --cpus's rule (1-255); nullopt: drvm's 1
  double timeout_s = 0;          // always > 0: every run has a wall-clock limit
  Expectation expect;
  SerialExpectation serial;
  std::vector<EventExpectation> events;
};

struct Suite {
  std::string name;            // `name` key, or the manifest's file stem
  std::filesystem::path file;  // the manifest as given
  std::vector<Case> cases;
};

// A manifest that cannot be used. what(): "FILE:LINE:COLUMN: KEY: problem".
class ManifestError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Looks up an environment variable for `${NAME}` expansion in image paths.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_environment();

// Reads and validates a manifest. Relative paths resolve against the manifest's directory.
Suite load_manifest(const std::filesystem::path& file,
                    const EnvLookup& env = process_environment());

// The same for manifest text already in memory (`file` names it in errors and anchors paths).
Suite parse_manifest(std::string_view text, const std::filesystem::path& file,
                     const EnvLookup& env = process_environment());

inline constexpr double kDefaultTimeoutSeconds = 10.0;

}  // namespace drvm::harness

#include "harness/manifest.hpp"

#include "bpcore/event_spec.hpp"
#include "cmdline/numbers.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <re2/re2.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cstdlib>

#include <cerrno>
#include <limits>
#include <set>
#include <sstream>

namespace drvm::harness {
namespace {

namespace fs = std::filesystem;

constexpr std::array kTopKeys = {"name", "defaults", "case"};
constexpr std::array kCaseKeys = {"name", "image",   "cmdline", "initrd", "mem",
                                  "cpus", "timeout", "expect",  "serial", "events"};
constexpr std::array kDefaultKeys = {"image",   "cmdline", "initrd", "mem",   "cpus",
                                     "timeout", "expect",  "serial", "events"};
constexpr std::array kExpectKeys = {"exit", "outcome"};
constexpr std::array kSerialKeys = {"golden", "require", "forbid"};
constexpr std::array kEventKeys = {"spec", "count", "min", "max"};

constexpr std::int64_t kMaxExitValue = 127;  // (v << 1) | 1 must fit the 8-bit process status
constexpr double kMaxTimeoutSeconds = 24 * 3600;
// Far above any real suite; a bound so that `drvm test /dev/zero`-like inputs cannot exhaust
// memory.
constexpr std::uint64_t kMaxManifestBytes = 16u << 20;

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Validates one manifest; every problem throws ManifestError naming file, line and key.
class ManifestParser {
 public:
  ManifestParser(fs::path file, const EnvLookup& env)
      : file_(std::move(file)), base_dir_(fs::absolute(file_).parent_path()), env_(env) {}

  Suite parse(std::string_view text) {
    toml::table root;
    try {
      root = toml::parse(text, file_.string());
    } catch (const toml::parse_error& e) {
      fail(e.source(), "", fmt::format("not valid TOML: {}", e.description()));
    }
    check_keys(root, "", kTopKeys);

    Suite suite;
    suite.file = file_;
    suite.name = file_.stem().string();
    if (const toml::node* name = root.get("name")) suite.name = identifier(*name, "name");

    const toml::table* defaults = nullptr;
    if (const toml::node* node = root.get("defaults")) {
      defaults = node->as_table();
      if (!defaults) fail(node->source(), "defaults", "must be a table ([defaults])");
      check_keys(*defaults, "defaults", kDefaultKeys);
    }

    const toml::node* cases_node = root.get("case");
    const toml::array* cases = cases_node ? cases_node->as_array() : nullptr;
    if (cases_node && !cases) fail(cases_node->source(), "case", "must be [[case]] tables");
    if (!cases || cases->empty()) {
      fail(root.source(), "case", "the manifest has no [[case]] tables; add at least one case");
    }

    std::set<std::string> names;
    for (std::size_t i = 0; i < cases->size(); ++i) {
      const toml::node& node = *cases->get(i);
      const std::string key = fmt::format("case[{}]", i);
      const toml::table* table = node.as_table();
      if (!table) fail(node.source(), key, "must be a table ([[case]])");
      Case c = parse_case(*table, defaults, key);
      if (!names.insert(c.name).second) {
        const toml::node* name = table->get("name");
        fail(name ? name->source() : table->source(), key + ".name",
             fmt::format("duplicate case name '{}'; case names must be unique in a suite", c.name));
      }
      suite.cases.push_back(std::move(c));
    }
    return suite;
  }

 private:
  [[noreturn]] void fail(const toml::source_region& where, std::string_view key,
                         std::string_view problem) const {
    std::string position = file_.string();
    if (where.begin.line > 0) {
      position += fmt::format(":{}:{}", where.begin.line, where.begin.column);
    }
    throw ManifestError(key.empty() ? fmt::format("{}: {}", position, problem)
                                    : fmt::format("{}: {}: {}", position, key, problem));
  }

  template <std::size_t N>
  void check_keys(const toml::table& table, std::string_view prefix,
                  const std::array<const char*, N>& allowed) const {
    for (auto&& [key, value] : table) {
      const std::string_view name = key.str();
      if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
      const std::string path =
          prefix.empty() ? std::string(name) : fmt::format("{}.{}", prefix, name);
      const char* closest = *std::min_element(allowed.begin(), allowed.end(), [&](auto a, auto b) {
        return edit_distance(name, a) < edit_distance(name, b);
      });
      if (edit_distance(name, closest) <= 2) {
        fail(key.source(), path, fmt::format("unknown key; did you mean '{}'?", closest));
      }
      fail(key.source(), path,
           fmt::format("unknown key; expected one of: {}", fmt::join(allowed, ", ")));
    }
  }

  const toml::node* lookup(const toml::table& table, const toml::table* defaults,
                           std::string_view key) const {
    if (const toml::node* node = table.get(key)) return node;
    return defaults ? defaults->get(key) : nullptr;
  }

  std::string string_value(const toml::node& node, std::string_view key) const {
    const auto* value = node.as_string();
    if (!value) fail(node.source(), key, "must be a string");
    return value->get();
  }

  std::string identifier(const toml::node& node, std::string_view key) const {
    std::string value = string_value(node, key);
    const bool printable = std::all_of(value.begin(), value.end(), [](unsigned char ch) {
      return ch >= 0x20 && ch != 0x7f && ch != '/';
    });
    if (value.empty() || !printable) {
      fail(node.source(), key, "must be a non-empty name without '/' or control characters");
    }
    return value;
  }

  std::int64_t integer(const toml::node& node, std::string_view key, std::int64_t min,
                       std::int64_t max) const {
    const auto* value = node.as_integer();
    if (!value || value->get() < min || value->get() > max) {
      fail(node.source(), key, fmt::format("must be an integer from {} to {}", min, max));
    }
    return value->get();
  }

  fs::path path_value(const toml::node& node, std::string_view key, bool expand_env) const {
    std::string text = string_value(node, key);
    bool from_environment = false;
    if (expand_env) text = expand_variables(text, node, key, &from_environment);
    if (text.empty()) fail(node.source(), key, "must not be empty");
    const fs::path path(text);
    if (path.is_absolute()) return path.lexically_normal();
    // A relative path that a user put in an environment variable means what it means in their
    // shell: relative to the current directory (`DRVM_GUEST_DIR=build/guest drvm test ...`).
    // The manifest's own text, defaults included, is relative to the manifest's folder.
    return ((from_environment ? fs::current_path() : base_dir_) / path).lexically_normal();
  }

  // `${NAME}` and `${NAME:-default}`, as in a shell, so that a suite can find images in a build
  // directory that CI chooses.
  // `*leading_from_environment` tells whether the text starts with a variable's value taken from
  // the environment (not its default).
  std::string expand_variables(const std::string& text, const toml::node& node,
                               std::string_view key, bool* leading_from_environment) const {
    *leading_from_environment = false;
    std::string out;
    std::size_t pos = 0;
    while (pos < text.size()) {
      const std::size_t open = text.find("${", pos);
      if (open == std::string::npos) break;
      const std::size_t close = text.find('}', open);
      if (close == std::string::npos) fail(node.source(), key, "'${' without a closing '}'");
      out.append(text, pos, open - pos);
      const std::string body = text.substr(open + 2, close - open - 2);
      const std::size_t dash = body.find(":-");
      const std::string name = body.substr(0, dash);
      const bool valid_name =
          !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char ch) {
            return std::isalnum(ch) || ch == '_';
          });
      if (!valid_name) fail(node.source(), key, fmt::format("bad variable '${{{}}}'", body));
      if (const auto value = env_(name); value && !value->empty()) {
        if (open == 0) *leading_from_environment = true;
        out += *value;
      } else if (dash != std::string::npos) {
        out += body.substr(dash + 2);
      } else {
        fail(node.source(), key,
             fmt::format("environment variable {} is not set; set it or write ${{{}:-DEFAULT}}",
                         name, name));
      }
      pos = close + 1;
    }
    out.append(text, pos);
    return out;
  }

  std::vector<LinePattern> patterns(const toml::node& node, std::string_view key) const {
    const toml::array* array = node.as_array();
    if (!array) fail(node.source(), key, "must be an array of regular expressions");
    std::vector<LinePattern> out;
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      const std::string element_key = fmt::format("{}[{}]", key, i);
      std::string source = string_value(element, element_key);
      std::string error;
      auto regex = compile_line_pattern(source, error);
      if (!regex) {
        fail(element.source(), element_key,
             fmt::format("bad regular expression '{}': {}", source, error));
      }
      out.push_back({std::move(source), std::move(regex)});
    }
    return out;
  }

  Expectation expectation(const toml::node& node, std::string_view key) const {
    const toml::table* table = node.as_table();
    if (!table) fail(node.source(), key, "must be a table (expect.exit = N or expect.outcome)");
    check_keys(*table, key, kExpectKeys);
    Expectation expect;
    const toml::node* exit = table->get("exit");
    const toml::node* outcome = table->get("outcome");
    if (outcome) {
      const std::string name = string_value(*outcome, fmt::format("{}.outcome", key));
      static constexpr std::array kOutcomes = {ExpectedOutcome::Exit, ExpectedOutcome::Halt,
                                               ExpectedOutcome::Timeout, ExpectedOutcome::Fault};
      const auto found = std::find_if(kOutcomes.begin(), kOutcomes.end(),
                                      [&](ExpectedOutcome o) { return to_string(o) == name; });
      if (found == kOutcomes.end()) {
        fail(outcome->source(), fmt::format("{}.outcome", key),
             fmt::format("unknown outcome '{}'; expected exit, halt, timeout or fault", name));
      }
      expect.outcome = *found;
      expect.exit_value = std::nullopt;
    }
    if (exit) {
      if (expect.outcome != ExpectedOutcome::Exit) {
        fail(exit->source(), fmt::format("{}.exit", key),
             fmt::format("an exit value contradicts outcome '{}'; remove one of them",
                         to_string(expect.outcome)));
      }
      expect.exit_value =
          static_cast<unsigned>(integer(*exit, fmt::format("{}.exit", key), 0, kMaxExitValue));
    }
    if (!exit && !outcome) fail(node.source(), key, "needs 'exit' or 'outcome'");
    return expect;
  }

  SerialExpectation serial(const toml::node& node, std::string_view key) const {
    const toml::table* table = node.as_table();
    if (!table) fail(node.source(), key, "must be a table (serial.golden, serial.require, ...)");
    check_keys(*table, key, kSerialKeys);
    SerialExpectation serial;
    if (const toml::node* golden = table->get("golden")) {
      serial.golden = path_value(*golden, fmt::format("{}.golden", key), false);
    }
    if (const toml::node* require = table->get("require")) {
      serial.require = patterns(*require, fmt::format("{}.require", key));
    }
    if (const toml::node* forbid = table->get("forbid")) {
      serial.forbid = patterns(*forbid, fmt::format("{}.forbid", key));
    }
    return serial;
  }

  // initrd = ["FILE ARGS", ...]: FILE resolved like `image`, ARGS kept; commas doubled, since
  // drvm run --initrd (like QEMU's -initrd) separates modules with single commas.
  std::vector<std::string> modules(const toml::node& node, std::string_view key) const {
    const toml::array* array = node.as_array();
    if (!array) fail(node.source(), key, "must be an array of strings \"FILE[ ARGS]\"");
    auto escape = [](std::string_view text) {
      std::string out;
      for (char c : text) out += c == ',' ? std::string(",,") : std::string(1, c);
      return out;
    };
    std::vector<std::string> out;
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      const std::string element_key = fmt::format("{}[{}]", key, i);
      bool from_environment = false;
      const std::string text = expand_variables(string_value(element, element_key), element,
                                                element_key, &from_environment);
      const std::size_t space = text.find(' ');
      const fs::path file(text.substr(0, space));
      if (file.empty()) fail(element.source(), element_key, "must start with a file name");
      // As for `image`: relative to the current directory when the path came from the environment.
      const fs::path base = from_environment ? fs::current_path() : base_dir_;
      const fs::path resolved = (file.is_absolute() ? file : base / file).lexically_normal();
      out.push_back(escape(resolved.string()) +
                    (space == std::string::npos ? "" : escape(text.substr(space))));
    }
    return out;
  }

  std::vector<EventExpectation> events(const toml::node& node, std::string_view key) const {
    const toml::array* array = node.as_array();
    if (!array) fail(node.source(), key, "must be an array of tables ([[case.events]])");
    constexpr auto kMaxCount = std::numeric_limits<std::int64_t>::max();
    std::vector<EventExpectation> out;
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      const std::string element_key = fmt::format("{}[{}]", key, i);
      const toml::table* table = element.as_table();
      if (!table) fail(element.source(), element_key, "must be a table {spec = ..., count = N}");
      check_keys(*table, element_key, kEventKeys);
      const toml::node* spec = table->get("spec");
      if (!spec) fail(element.source(), element_key, "needs 'spec'");
      EventExpectation event;
      event.spec = string_value(*spec, element_key + ".spec");
      try {
        (void)bp::parse_event_spec(event.spec);  // symbols are resolved by drvm run
      } catch (const bp::SpecError& error) {
        fail(spec->source(), element_key + ".spec",
             fmt::format("event '{}': {}", event.spec, error.what()));
      }
      const toml::node* count = table->get("count");
      const toml::node* min = table->get("min");
      const toml::node* max = table->get("max");
      if (count && (min || max)) {
        fail(count->source(), element_key + ".count", "give either 'count' or 'min'/'max'");
      }
      if (!count && !min && !max) {
        fail(element.source(), element_key, "needs 'count' or 'min'/'max'");
      }
      if (count) {
        event.count.min = event.count.max = integer(*count, element_key + ".count", 0, kMaxCount);
      } else {
        event.count.min = min ? integer(*min, element_key + ".min", 0, kMaxCount) : 0;
        event.count.max = max ? integer(*max, element_key + ".max", 0, kMaxCount)
                              : std::numeric_limits<std::uint64_t>::max();
        if (event.count.min > event.count.max) {
          fail(max->source(), element_key + ".max", "must not be less than 'min'");
        }
      }
      out.push_back(std::move(event));
    }
    return out;
  }

  Case parse_case(const toml::table& table, const toml::table* defaults, const std::string& key) {
    check_keys(table, key, kCaseKeys);
    Case c;
    c.location = fmt::format("{}:{}", file_.string(), table.source().begin.line);

    const toml::node* image = lookup(table, defaults, "image");
    if (!image) fail(table.source(), key, "needs 'image' (the guest image to boot)");
    c.image = path_value(*image, key + ".image", true);

    if (const toml::node* name = table.get("name")) {
      c.name = identifier(*name, key + ".name");
    } else {
      c.name = c.image.stem().string();
    }
    if (const toml::node* cmdline = lookup(table, defaults, "cmdline")) {
      c.cmdline = string_value(*cmdline, key + ".cmdline");
    }
    if (const toml::node* initrd = lookup(table, defaults, "initrd")) {
      c.initrd = modules(*initrd, key + ".initrd");
    }
    if (const toml::node* mem = lookup(table, defaults, "mem")) {
      // The same rule as drvm run --mem: a bare number is MiB, "64M"/"65536K"/"1G" too.
      std::string text;
      if (const auto* number = mem->as_integer()) {
        text = std::to_string(number->get());
      } else if (const auto* string = mem->as_string()) {
        text = string->get();
      } else {
        fail(mem->source(), key + ".mem",
             "must be MiB of guest memory (an integer, as drvm run --mem 64) or a size string "
             "such as \"64M\"");
      }
      try {
        c.mem_bytes = cmdline::parse_guest_memory(text);
      } catch (const cmdline::NumberError& error) {
        fail(mem->source(), key + ".mem", error.what());
      }
    }
    if (const toml::node* cpus = lookup(table, defaults, "cpus")) {
      // The same rule as drvm run --cpus (1-255).
      const auto* number = cpus->as_integer();
      if (!number) {
        fail(cpus->source(), key + ".cpus",
             fmt::format("must be a whole number of vCPUs from 1 to {}, as drvm run --cpus N",
                         cmdline::kMaxVcpus));
      }
      try {
        c.cpus = cmdline::parse_vcpu_count(std::to_string(number->get()));
      } catch (const cmdline::NumberError& error) {
        fail(cpus->source(), key + ".cpus", error.what());
      }
    }
    c.timeout_s = kDefaultTimeoutSeconds;
    if (const toml::node* timeout = lookup(table, defaults, "timeout")) {
      const auto seconds = timeout->value<double>();  // integers convert too
      if (!seconds || !(*seconds > 0) || *seconds > kMaxTimeoutSeconds) {
        fail(timeout->source(), key + ".timeout",
             fmt::format("must be a number of seconds greater than 0 and at most {}",
                         kMaxTimeoutSeconds));
      }
      c.timeout_s = *seconds;
    }
    if (const toml::node* expect = lookup(table, defaults, "expect")) {
      c.expect = expectation(*expect, key + ".expect");
    }
    if (const toml::node* serial_node = lookup(table, defaults, "serial")) {
      c.serial = serial(*serial_node, key + ".serial");
    }
    if (const toml::node* events_node = lookup(table, defaults, "events")) {
      c.events = events(*events_node, key + ".events");
    }
    return c;
  }

  fs::path file_;
  fs::path base_dir_;
  const EnvLookup& env_;
};

}  // namespace

std::string_view to_string(ExpectedOutcome outcome) {
  switch (outcome) {
    case ExpectedOutcome::Exit:
      return "exit";
    case ExpectedOutcome::Halt:
      return "halt";
    case ExpectedOutcome::Timeout:
      return "timeout";
    case ExpectedOutcome::Fault:
      return "fault";
  }
  return "?";
}

std::shared_ptr<const re2::RE2> compile_line_pattern(const std::string& source,
                                                     std::string& error) {
  RE2::Options options;
  options.set_log_errors(false);
  // Bytes, as the serial stream is: guest output need not be UTF-8.
  options.set_encoding(RE2::Options::EncodingLatin1);
  auto regex = std::make_shared<const RE2>(source, options);
  if (regex->ok()) return regex;
  error = regex->error();
  const auto code = regex->error_code();
  if (code == RE2::ErrorBadPerlOp || code == RE2::ErrorBadEscape) {
    error +=
        "; patterns use RE2 syntax, which has no backreferences or lookaround: rewrite "
        "without them";
  } else if (code == RE2::ErrorPatternTooLarge) {
    error += "; split it into several simpler patterns";
  } else {
    error += "; fix the pattern (RE2 syntax)";
  }
  return nullptr;
}

bool line_matches(const re2::RE2& regex, std::string_view line) {
  return RE2::PartialMatch(re2::StringPiece(line.data(), line.size()), regex);
}

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  };
}

Suite parse_manifest(std::string_view text, const fs::path& file, const EnvLookup& env) {
  return ManifestParser(file, env).parse(text);
}

Suite load_manifest(const fs::path& file, const EnvLookup& env) {
  auto refuse = [&](std::string_view problem) {
    throw ManifestError(fmt::format("{}: {}", file.string(), problem));
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
  const int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    refuse(fmt::format("cannot read the manifest: {}",
                       std::error_code(errno, std::generic_category()).message()));
  }
  std::string text;
  struct stat info {};
  const bool is_file = ::fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
  const bool is_directory = !is_file && S_ISDIR(info.st_mode);
  if (is_file && static_cast<std::uint64_t>(info.st_size) <= kMaxManifestBytes) {
    // Read at most one byte past the limit: the file may grow while it is read.
    text.resize(kMaxManifestBytes + 1);
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::read(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int error = errno;
        ::close(fd);
        refuse(fmt::format("cannot read the manifest: {}",
                           std::error_code(error, std::generic_category()).message()));
      }
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    text.resize(done);
  }
  ::close(fd);
  if (is_directory) refuse("is a directory; name a .toml manifest");
  if (!is_file) refuse("not a regular file; name a .toml manifest file");
  if (static_cast<std::uint64_t>(info.st_size) > kMaxManifestBytes ||
      text.size() > kMaxManifestBytes) {
    refuse(fmt::format("the manifest is larger than {} MiB; split it into several manifests",
                       kMaxManifestBytes >> 20));
  }
  return parse_manifest(text, file, env);
}

}  // namespace drvm::harness

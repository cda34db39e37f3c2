#include "harness/manifest.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <map>

#include "test_support.hpp"

namespace drvm::harness {
namespace {

namespace fs = std::filesystem;

const fs::path kManifest = "/suites/demo.toml";

EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

Suite parse(std::string_view text, const EnvLookup& env = fake_env({})) {
  return parse_manifest(text, kManifest, env);
}

// The error message for `text`, which must be rejected.
std::string error_of(std::string_view text, const EnvLookup& env = fake_env({})) {
  try {
    parse(text, env);
  } catch (const ManifestError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted:\n" << text;
  return {};
}

TEST(Manifest, ParsesEveryKey) {
  const Suite suite = parse(R"(
name = "firmware"

[defaults]
mem = 64
cpus = 2
timeout = 2.5
cmdline = "console=ttyS0"
serial.forbid = ["PANIC"]

[[case]]
name = "boot"
image = "../build/guest/hello.elf"
expect.exit = 3
serial.golden = "golden/boot.txt"
serial.require = ['^hello', 'world$']

[[case]]
image = "/abs/spin.elf"
timeout = 1
mem = 16
cpus = 4
cmdline = ""
expect.outcome = "timeout"

[[case]]
name = "count"
image = "img.elf"
events = [{spec = "mem:counter:w", count = 10}, {spec = "mem:0x1000/4:rw", min = 2}]

[[case]]
name = "modules"
image = "kernel.elf"
initrd = ["mods/a.bin arg1 x,y", "/abs/b,c.bin"]
)");
  EXPECT_EQ(suite.name, "firmware");
  ASSERT_EQ(suite.cases.size(), 4u);

  const Case& boot = suite.cases[0];
  EXPECT_EQ(boot.name, "boot");
  EXPECT_EQ(boot.location, "/suites/demo.toml:11");
  EXPECT_EQ(boot.image, fs::path("/build/guest/hello.elf"));
  EXPECT_EQ(boot.mem_bytes, 64u << 20);
  EXPECT_EQ(boot.cpus, 2u);  // from [defaults]
  EXPECT_DOUBLE_EQ(boot.timeout_s, 2.5);
  EXPECT_EQ(boot.cmdline, "console=ttyS0");
  EXPECT_EQ(boot.expect.outcome, ExpectedOutcome::Exit);
  EXPECT_EQ(boot.expect.exit_value, 3u);
  EXPECT_EQ(boot.serial.golden, fs::path("/suites/golden/boot.txt"));
  ASSERT_EQ(boot.serial.require.size(), 2u);
  EXPECT_EQ(boot.serial.require[1].source, "world$");
  // A case key replaces the default as a whole, so serial.forbid from [defaults] is gone.
  EXPECT_TRUE(boot.serial.forbid.empty());

  const Case& spin = suite.cases[1];
  EXPECT_EQ(spin.name, "spin");  // the image's stem when no name is given
  EXPECT_EQ(spin.image, fs::path("/abs/spin.elf"));
  EXPECT_DOUBLE_EQ(spin.timeout_s, 1.0);
  EXPECT_EQ(spin.mem_bytes, 16u << 20);
  EXPECT_EQ(spin.cpus, 4u);
  EXPECT_EQ(spin.cmdline, "");
  EXPECT_EQ(spin.expect.outcome, ExpectedOutcome::Timeout);
  EXPECT_FALSE(spin.expect.exit_value);
  ASSERT_EQ(spin.serial.forbid.size(), 1u);  // inherited from [defaults]
  EXPECT_EQ(spin.serial.forbid[0].source, "PANIC");

  const Case& count = suite.cases[2];
  ASSERT_EQ(count.events.size(), 2u);
  EXPECT_EQ(count.events[0].spec, "mem:counter:w");
  EXPECT_EQ(count.events[0].count.min, 10u);
  EXPECT_EQ(count.events[0].count.max, 10u);
  EXPECT_EQ(count.events[1].count.min, 2u);
  EXPECT_TRUE(count.events[1].count.contains(1u << 30));
  EXPECT_FALSE(count.events[1].count.contains(1));
  EXPECT_TRUE(count.initrd.empty());

  // Paths relative to the manifest; commas doubled for drvm run --initrd's splitting.
  EXPECT_EQ(suite.cases[3].initrd,
            (std::vector<std::string>{"/suites/mods/a.bin arg1 x,,y", "/abs/b,,c.bin"}));
}

TEST(Manifest, DefaultsWithoutAnyExpectation) {
  const Suite suite = parse("[[case]]\nimage = 'a.elf'\n");
  EXPECT_EQ(suite.name, "demo");  // the file stem
  const Case& c = suite.cases.at(0);
  EXPECT_EQ(c.expect.outcome, ExpectedOutcome::Exit);
  EXPECT_EQ(c.expect.exit_value, 0u);
  EXPECT_DOUBLE_EQ(c.timeout_s, kDefaultTimeoutSeconds);
  EXPECT_FALSE(c.mem_bytes);
  EXPECT_FALSE(c.cpus);  // drvm run's default: 1 vCPU
  // `mem` follows drvm run --mem's rule: a bare number is MiB, sizes with K/M/G as strings.
  EXPECT_EQ(parse("[[case]]\nimage='a'\nmem='64M'\n").cases[0].mem_bytes, 64u << 20);
  EXPECT_EQ(parse("[[case]]\nimage='a'\nmem='6148K'\n").cases[0].mem_bytes, 6148u << 10);
  EXPECT_EQ(parse("[[case]]\nimage='a'\nmem='1G'\n").cases[0].mem_bytes, 1u << 30);
  EXPECT_FALSE(c.serial.golden);
}

TEST(Manifest, OutcomeExitWithoutValueAcceptsAnyValue) {
  const Suite suite = parse("[[case]]\nimage = 'a.elf'\nexpect.outcome = 'exit'\n");
  EXPECT_FALSE(suite.cases[0].expect.exit_value);
  const Suite both = parse("[[case]]\nimage='a.elf'\nexpect = {outcome = 'exit', exit = 5}\n");
  EXPECT_EQ(both.cases[0].expect.exit_value, 5u);
}

TEST(Manifest, ExpandsEnvironmentVariablesInImagePaths) {
  const auto env = fake_env({{"GUEST", "/build/guest"}});
  EXPECT_EQ(parse("[[case]]\nimage = '${GUEST}/hello.elf'\n", env).cases[0].image,
            fs::path("/build/guest/hello.elf"));
  EXPECT_EQ(parse("[[case]]\nimage = '${UNSET:-../out}/hello.elf'\n", env).cases[0].image,
            fs::path("/out/hello.elf"));
  EXPECT_EQ(parse("[[case]]\nimage = '${GUEST:-/other}/x.elf'\n", env).cases[0].image,
            fs::path("/build/guest/x.elf"));
}

// `DRVM_GUEST_DIR=build/guest drvm test guestfw/suites/*.toml` (docs/testing-guide.md): a relative
// value in the environment is relative to the current directory, as in the user's shell; the
// manifest's own text (a default included) stays relative to the manifest's folder.
TEST(Manifest, RelativeEnvironmentValuesAreRelativeToTheCurrentDirectory) {
  const auto env = fake_env({{"GUEST", "build/guest"}});
  EXPECT_EQ(parse("[[case]]\nimage = '${GUEST}/hello.elf'\n", env).cases[0].image,
            fs::current_path() / "build/guest/hello.elf");
  EXPECT_EQ(parse("[[case]]\nimage = '${UNSET:-out}/hello.elf'\n", env).cases[0].image,
            fs::path(kManifest).parent_path() / "out/hello.elf");
  EXPECT_EQ(parse("[[case]]\nimage = 'images/${GUEST}/x.elf'\n", env).cases[0].image,
            fs::path(kManifest).parent_path() / "images/build/guest/x.elf");
}

TEST(Manifest, LoadsFromDiskAndResolvesRelativeToTheManifest) {
  testing::ScratchDir dir;
  const auto file = dir.write("sub/suite.toml", "[[case]]\nimage = 'img/a.elf'\n");
  const Suite suite = load_manifest(file);
  EXPECT_EQ(suite.cases[0].image, dir.path() / "sub/img/a.elf");
}

struct BadManifest {
  const char* what;
  const char* text;
  const char* expected;  // "LINE:COLUMN: KEY: problem" fragment
};

class ManifestErrors : public ::testing::TestWithParam<BadManifest> {};

TEST_P(ManifestErrors, NameFileLineAndKey) {
  const BadManifest& bad = GetParam();
  const std::string message = error_of(bad.text);
  EXPECT_EQ(message.rfind("/suites/demo.toml:", 0), 0u) << message;
  EXPECT_NE(message.find(bad.expected), std::string::npos)
      << "message: " << message << "\nexpected to contain: " << bad.expected;
}

const BadManifest kBadManifests[] = {
    {"not TOML", "[[case]\nimage='a'\n", ":1:"},
    {"unknown top-level key", "nmae = 'x'\n[[case]]\nimage='a'\n",
     ":1:1: nmae: unknown key; did you mean 'name'?"},
    {"unknown key far from any", "[[case]]\nimage='a'\nfrobnicate = 1\n",
     ":3:1: case[0].frobnicate: unknown key; expected one of: name, image"},
    {"typo in a case key", "[[case]]\nimage='a'\ntimout = 3\n",
     ":3:1: case[0].timout: unknown key; did you mean 'timeout'?"},
    {"name in defaults", "[defaults]\nname='x'\n[[case]]\nimage='a'\n",
     ":2:1: defaults.name: unknown key"},
    {"suite name not a string", "name = 3\n[[case]]\nimage='a'\n", ":1:8: name: must be a"},
    {"defaults not a table", "defaults = 3\n[[case]]\nimage='a'\n", "defaults: must be a table"},
    {"no cases", "name = 'x'\n", "case: the manifest has no [[case]] tables"},
    {"case not an array of tables", "case = 3\n", "case: must be [[case]] tables"},
    {"case not a table", "case = [1]\n", "case[0]: must be a table"},
    {"missing image", "[[case]]\nname='x'\n", ":1:1: case[0]: needs 'image'"},
    {"image not a string", "[[case]]\nimage=3\n", ":2:7: case[0].image: must be a string"},
    {"empty image", "[[case]]\nimage=''\n", "case[0].image: must not be empty"},
    {"unset variable", "[[case]]\nimage='${NOPE}/a'\n",
     "case[0].image: environment variable NOPE is not set"},
    {"unclosed variable", "[[case]]\nimage='${NOPE/a'\n", "without a closing '}'"},
    {"bad variable name", "[[case]]\nimage='${A-B}/a'\n", "bad variable '${A-B}'"},
    {"name with slash", "[[case]]\nimage='a'\nname='a/b'\n",
     ":3:6: case[0].name: must be a non-empty"},
    {"duplicate name", "[[case]]\nimage='a'\n[[case]]\nimage='b'\nname='a'\n",
     ":5:6: case[1].name: duplicate case name 'a'"},
    {"duplicate default name", "[[case]]\nimage='x/a'\n[[case]]\nimage='y/a'\n",
     "case[1].name: duplicate case name 'a'"},
    {"cmdline not a string", "[[case]]\nimage='a'\ncmdline=1\n",
     ":3:9: case[0].cmdline: must be a string"},
    {"initrd not an array", "[[case]]\nimage='a'\ninitrd='m.bin'\n",
     ":3:8: case[0].initrd: must be an array of strings \"FILE[ ARGS]\""},
    {"initrd without a file", "[[case]]\nimage='a'\ninitrd=[' arg']\n",
     ":3:9: case[0].initrd[0]: must start with a file name"},
    {"mem zero", "[[case]]\nimage='a'\nmem=0\n",
     ":3:5: case[0].mem: 0 is out of range; give a multiple of 4 KiB from 2M to 3G (a bare "
     "number is MiB)"},
    {"mem below drvm run's minimum", "[[case]]\nimage='a'\nmem=1\n",
     "case[0].mem: 1 is out of range; give a multiple of 4 KiB from 2M to 3G"},
    {"mem above drvm run's maximum", "[[case]]\nimage='a'\nmem=4096\n",
     ":3:5: case[0].mem: 4096 is out of range"},
    {"mem string above the maximum", "[[case]]\nimage='a'\nmem='4G'\n",
     ":3:5: case[0].mem: 4G is out of range"},
    {"mem bad suffix", "[[case]]\nimage='a'\nmem='64Q'\n",
     "case[0].mem: '64Q' is not a size; write a whole number of MiB or one with K, M or G"},
    {"mem neither number nor string", "[[case]]\nimage='a'\nmem=1.5\n",
     "case[0].mem: must be MiB of guest memory (an integer, as drvm run --mem 64) or a size"},
    {"cpus zero", "[[case]]\nimage='a'\ncpus=0\n",
     ":3:6: case[0].cpus: '0' is not a vCPU count; give a whole number from 1 to 255"},
    {"cpus above the xAPIC limit", "[[case]]\nimage='a'\ncpus=256\n",
     ":3:6: case[0].cpus: '256' is not a vCPU count; give a whole number from 1 to 255"},
    {"cpus negative", "[[case]]\nimage='a'\ncpus=-2\n", "case[0].cpus: '-2' is not a vCPU count"},
    {"cpus a string", "[[case]]\nimage='a'\ncpus='2'\n",
     ":3:6: case[0].cpus: must be a whole number of vCPUs from 1 to 255, as drvm run --cpus N"},
    {"cpus a fraction", "[[case]]\nimage='a'\ncpus=1.5\n", "case[0].cpus: must be a whole number"},
    {"cpus in defaults", "[defaults]\ncpus=300\n[[case]]\nimage='a'\n", ":2:6: case[0].cpus:"},
    {"cpu typo", "[[case]]\nimage='a'\ncpu=2\n", "case[0].cpu: unknown key; did you mean 'cpus'?"},
    {"lookahead is not RE2", "[[case]]\nimage='a'\nserial.require=['(?=x)']\n",
     "case[0].serial.require[0]: bad regular expression '(?=x)': invalid perl operator: (?=; "
     "patterns use RE2 syntax, which has no backreferences or lookaround"},
    {"backreference is not RE2", "[[case]]\nimage='a'\nserial.forbid=['(a)\\1']\n",
     "case[0].serial.forbid[0]: bad regular expression '(a)\\1': invalid escape sequence: \\1; "
     "patterns use RE2 syntax"},
    {"mem in defaults", "[defaults]\nmem=-1\n[[case]]\nimage='a'\n", ":2:5: case[0].mem:"},
    {"timeout zero", "[[case]]\nimage='a'\ntimeout=0\n",
     "case[0].timeout: must be a number of seconds"},
    {"timeout negative", "[[case]]\nimage='a'\ntimeout=-1.5\n", "case[0].timeout: must be"},
    {"timeout string", "[[case]]\nimage='a'\ntimeout='5s'\n", "case[0].timeout: must be"},
    {"timeout huge", "[[case]]\nimage='a'\ntimeout=1e9\n", "case[0].timeout: must be"},
    {"expect not a table", "[[case]]\nimage='a'\nexpect=0\n", "case[0].expect: must be a table"},
    {"expect empty", "[[case]]\nimage='a'\nexpect={}\n",
     "case[0].expect: needs 'exit' or 'outcome'"},
    {"expect typo", "[[case]]\nimage='a'\nexpect.exitt=0\n",
     "case[0].expect.exitt: unknown key; did you mean 'exit'?"},
    {"exit too large", "[[case]]\nimage='a'\nexpect.exit=128\n",
     ":3:13: case[0].expect.exit: must be an integer from 0 to 127"},
    {"exit negative", "[[case]]\nimage='a'\nexpect.exit=-1\n", "case[0].expect.exit: must be"},
    {"exit not integer", "[[case]]\nimage='a'\nexpect.exit='0'\n", "case[0].expect.exit: must be"},
    {"unknown outcome", "[[case]]\nimage='a'\nexpect.outcome='crash'\n",
     "case[0].expect.outcome: unknown outcome 'crash'; expected exit, halt, timeout or fault"},
    {"outcome not string", "[[case]]\nimage='a'\nexpect.outcome=1\n",
     "case[0].expect.outcome: must be a string"},
    {"exit contradicts outcome", "[[case]]\nimage='a'\nexpect={outcome='halt', exit=0}\n",
     "case[0].expect.exit: an exit value contradicts outcome 'halt'"},
    {"serial not a table", "[[case]]\nimage='a'\nserial='x'\n", "case[0].serial: must be a table"},
    {"serial typo", "[[case]]\nimage='a'\nserial.requires=[]\n",
     "case[0].serial.requires: unknown key; did you mean 'require'?"},
    {"golden not a string", "[[case]]\nimage='a'\nserial.golden=1\n",
     "case[0].serial.golden: must be a string"},
    {"require not an array", "[[case]]\nimage='a'\nserial.require='x'\n",
     "case[0].serial.require: must be an array"},
    {"require element not a string", "[[case]]\nimage='a'\nserial.require=['ok', 3]\n",
     "case[0].serial.require[1]: must be a string"},
    {"bad regex", "[[case]]\nimage='a'\nserial.forbid=['(unclosed']\n",
     ":3:16: case[0].serial.forbid[0]: bad regular expression '(unclosed'"},
    {"events not an array", "[[case]]\nimage='a'\nevents='mem:x'\n",
     "case[0].events: must be an array of tables"},
    {"event not a table", "[[case]]\nimage='a'\nevents=['mem:x']\n",
     "case[0].events[0]: must be a table"},
    {"event without spec", "[[case]]\nimage='a'\nevents=[{count=1}]\n",
     "case[0].events[0]: needs 'spec'"},
    {"event typo", "[[case]]\nimage='a'\nevents=[{spec='mem:x', cnt=1}]\n",
     "case[0].events[0].cnt: unknown key"},
    {"bad event spec", "[[case]]\nimage='a'\nevents=[{spec='mem:x:q', count=1}]\n",
     "case[0].events[0].spec: event 'mem:x:q': access type 'q' is not one of r, w, rw, x; end the "
     "spec with :r, :w, :rw or :x (after /LEN)"},
    {"event without count", "[[case]]\nimage='a'\nevents=[{spec='mem:x'}]\n",
     "case[0].events[0]: needs 'count' or 'min'/'max'"},
    {"event count and min", "[[case]]\nimage='a'\nevents=[{spec='mem:x', count=1, min=0}]\n",
     "case[0].events[0].count: give either 'count' or 'min'/'max'"},
    {"event negative count", "[[case]]\nimage='a'\nevents=[{spec='mem:x', count=-1}]\n",
     "case[0].events[0].count: must be an integer from 0"},
    {"event min above max", "[[case]]\nimage='a'\nevents=[{spec='mem:x', min=5, max=2}]\n",
     "case[0].events[0].max: must not be less than 'min'"},
    {"events through [[case.events]]",
     "[[case]]\nimage='a'\n[[case.events]]\nspec='io:1'\ncount=1\n",
     ":4:6: case[0].events[0].spec: event 'io:1': 'io' is not an event type drvm knows; only "
     "memory events exist: mem:ADDR_OR_SYMBOL[+OFF][/LEN][:r|w|rw|x][,OPTION...]"},
};

INSTANTIATE_TEST_SUITE_P(All, ManifestErrors, ::testing::ValuesIn(kBadManifests),
                         [](const auto& info) {
                           std::string name = info.param.what;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

TEST(Manifest, MissingFileIsAManifestError) {
  try {
    load_manifest("/nonexistent/suite.toml");
    FAIL() << "loaded a missing file";
  } catch (const ManifestError& e) {
    EXPECT_STREQ(e.what(),
                 "/nonexistent/suite.toml: cannot read the manifest: No such file or directory");
  }
}

TEST(Manifest, FifoIsRefusedWithoutBlocking) {
  const fs::path fifo = fs::temp_directory_path() / fmt::format("drvm-fifo-{}.toml", ::getpid());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Without O_NONBLOCK, open() waits for a writer forever; the alarm turns that into a failure.
  std::signal(SIGALRM, SIG_DFL);
  ::alarm(10);
  try {
    load_manifest(fifo);
    ADD_FAILURE() << "loaded a FIFO";
  } catch (const ManifestError& e) {
    EXPECT_EQ(std::string(e.what()),
              fifo.string() + ": not a regular file; name a .toml manifest file");
  }
  ::alarm(0);
  fs::remove(fifo);
}

TEST(Manifest, DevicesAreRefusedAndNotRead) {
  try {
    load_manifest("/dev/zero");
    ADD_FAILURE() << "loaded /dev/zero";
  } catch (const ManifestError& e) {
    EXPECT_STREQ(e.what(), "/dev/zero: not a regular file; name a .toml manifest file");
  }
}

TEST(Manifest, HugeFilesAreRefusedBeforeReading) {
  const fs::path file = fs::temp_directory_path() / fmt::format("drvm-huge-{}.toml", ::getpid());
  { std::ofstream(file) << "# sparse\n"; }
  fs::resize_file(file, std::uintmax_t{64} << 30);  // sparse: costs no disk
  try {
    load_manifest(file);
    ADD_FAILURE() << "loaded a 64 GiB manifest";
  } catch (const ManifestError& e) {
    EXPECT_EQ(std::string(e.what()), file.string() +
                                         ": the manifest is larger than 16 MiB; split it into "
                                         "several manifests");
  }
  fs::remove(file);
}

}  // namespace
}  // namespace drvm::harness

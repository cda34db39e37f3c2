// Whole `drvm test` runs against fake_drvm, which stands in for `drvm run`.
#include "harness/session.hpp"

#include <gtest/gtest.h>
#include <stdio.h>

#include <fmt/format.h>

#include <signal.h>
#include <sys/wait.h>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "harness/verdict.hpp"
#include "test_support.hpp"

namespace drvm::harness {
namespace {

namespace fs = std::filesystem;

struct Ran {
  int status;
  std::string out, err;
};

class Session : public ::testing::Test {
 protected:
  // `drvm test ARGS --runner fake_drvm`, with its output captured.
  Ran run(std::vector<std::string> args, const Cancellation* cancel = nullptr) {
    args.insert(args.end(), {"--runner", DRVM_FAKE_DRVM, "--kill-margin", "300"});
    std::vector<std::string_view> views(args.begin(), args.end());
    char* out_buffer = nullptr;
    char* err_buffer = nullptr;
    std::size_t out_size = 0, err_size = 0;
    FILE* out = open_memstream(&out_buffer, &out_size);
    FILE* err = open_memstream(&err_buffer, &err_size);
    const int status = test_main(views, "/nonexistent/drvm", {out, err}, cancel);
    std::fclose(out);
    std::fclose(err);
    Ran ran{status, std::string(out_buffer, out_size), std::string(err_buffer, err_size)};
    std::free(out_buffer);
    std::free(err_buffer);
    return ran;
  }

  std::string manifest(const std::string& text) { return dir.write("suite.toml", text).string(); }

  testing::ScratchDir dir;
};

bool process_gone(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// SIGINT/SIGTERM on `drvm test` (a Cancellation, as cli/test_command.cpp makes of them): the
// running case's whole process group is killed, no further case starts, every unfinished case
// is reported as interrupted on the console, in TAP and in JUnit, and the status is 128 + signal.
TEST_F(Session, InterruptKillsTheChildrenAndReportsTheUnfinishedCases) {
  const fs::path started = dir.path() / "started";
  const fs::path grandchild = dir.path() / "grandchild.pid";
  dir.write("hang.script",
            fmt::format("child {}\ntouch {}\nhang\n", grandchild.string(), started.string()));
  dir.write("quick.script", "exit 1\n");
  const fs::path junit = dir.path() / "junit.xml";
  const std::string suite = manifest(R"(
[[case]]
name = "quick"
image = "quick.script"

[[case]]
name = "hangs"
image = "hang.script"
timeout = 60

[[case]]
name = "later"
image = "quick.script"
)");
  Cancellation cancel;
  Ran ran{};
  const auto begin = std::chrono::steady_clock::now();
  std::thread runner([&] {
    ran = run({suite, "--jobs", "1", "--junit", junit.string(), "--tap"}, &cancel);
  });
  for (int i = 0; i < 1000 && !fs::exists(started); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fs::exists(started));
  pid_t sleeper = 0;
  std::ifstream(grandchild) >> sleeper;
  cancel.request(SIGINT);
  runner.join();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(20));
  EXPECT_EQ(ran.status, 130) << ran.err;
  ASSERT_GT(sleeper, 0);
  EXPECT_TRUE(process_gone(sleeper)) << "the case's own child survived";
  // Console (on stderr with --tap).
  EXPECT_NE(ran.err.find("PASS suite/quick"), std::string::npos) << ran.err;
  EXPECT_NE(ran.err.find("INTERRUPTED suite/hangs"), std::string::npos) << ran.err;
  EXPECT_NE(ran.err.find("INTERRUPTED suite/later"), std::string::npos) << ran.err;
  EXPECT_NE(ran.err.find("1 passed, 0 failed, 2 interrupted (3 cases"), std::string::npos)
      << ran.err;
  // TAP.
  EXPECT_NE(ran.out.find("ok 1 - suite/quick\n"), std::string::npos) << ran.out;
  EXPECT_NE(ran.out.find("not ok 2 - suite/hangs # interrupted\n"), std::string::npos) << ran.out;
  EXPECT_NE(ran.out.find("not ok 3 - suite/later # interrupted\n"), std::string::npos) << ran.out;
  // JUnit.
  boost::property_tree::ptree tree;
  boost::property_tree::read_xml(junit.string(), tree);
  const auto& testsuite = tree.get_child("testsuites.testsuite");
  EXPECT_EQ(testsuite.get<int>("<xmlattr>.skipped"), 2);
  EXPECT_EQ(testsuite.get<int>("<xmlattr>.failures"), 0);
  int interrupted = 0;
  for (const auto& [name, node] : testsuite) {
    if (name != "testcase") continue;
    if (const auto skipped = node.get_child_optional("skipped")) {
      EXPECT_EQ(skipped->get<std::string>("<xmlattr>.message"), "interrupted");
      ++interrupted;
    }
  }
  EXPECT_EQ(interrupted, 2);
}

// The failure report's command reproduces the case when pasted, from any directory: absolute
// paths, and no temporary --stat-output file (the JSON goes to stderr).
TEST_F(Session, TheFailureCommandCanBePastedFromAnyDirectory) {
  const fs::path args_file = dir.path() / "args.txt";
  dir.write("events.script",
            fmt::format("accept-events\nout hello\nargs {}\nexit 5\n", args_file.string()));
  const Ran ran = run({manifest(R"(
[[case]]
name = "events"
image = "events.script"
expect.exit = 0
events = [{ spec = "mem:0x1000/8:w", count = 1 }]
)")});
  EXPECT_EQ(ran.status, kExitSomeFailed) << ran.out << ran.err;
  std::smatch command;
  ASSERT_TRUE(std::regex_search(ran.out, command, std::regex("  command: ([^\n]+)\n"))) << ran.out;
  EXPECT_EQ(command[1].str().find("--stat-output"), std::string::npos) << command[1];
  EXPECT_EQ(command[1].str().find("drvm-test-"), std::string::npos) << command[1];
  fs::remove(args_file);
  // Pasted into a shell elsewhere, it runs the same drvm on the same image with the same flags.
  const int status = std::system(("cd / && " + command[1].str() + " >/dev/null 2>&1").c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 5);
  std::ifstream args(args_file);
  std::string line;
  std::vector<std::string> argv;
  while (std::getline(args, line)) argv.push_back(line);
  ASSERT_GE(argv.size(), 3u);
  EXPECT_EQ(argv[0], DRVM_FAKE_DRVM);
  EXPECT_EQ(argv[2], (dir.path() / "events.script").string());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "mem:0x1000/8:w"), argv.end());
}

// A guest that prints megabytes without a newline: the reports cut the line.
TEST_F(Session, HugeLinesAreCutInEveryReport) {
  dir.write("flood.script", "flood 4194304\nexit 5\n");
  const fs::path junit = dir.path() / "junit.xml";
  const Ran ran = run({manifest(R"(
[[case]]
name = "flood"
image = "flood.script"
serial.forbid = ['^x']
)"),
                       "--junit", junit.string(), "--tap"});
  EXPECT_EQ(ran.status, kExitSomeFailed);
  EXPECT_NE(ran.err.find(std::string(200, 'x') + "... (4194104 more bytes)"), std::string::npos)
      << ran.err.substr(0, 2000);
  EXPECT_NE(ran.err.find("serial line 1 matches forbidden /^x/: " + std::string(200, 'x') +
                         "... (4194104 more bytes)\n"),
            std::string::npos);
  EXPECT_LT(ran.err.size(), 20000u);
  EXPECT_LT(ran.out.size(), 600u * 1024);  // TAP's stderr block
  EXPECT_LT(fs::file_size(junit), 1200u * 1024);
}

TEST_F(Session, AllPassing) {
  dir.write("hello.script", "out hello\\r\nout PASS boot\nout summary: 1 passed, 0 failed\n");
  dir.write("golden/hello.txt", "hello\r\nPASS boot\nsummary: 1 passed, 0 failed\n");
  dir.write("three.script", "exit 7\n");
  const Ran ran = run({manifest(R"(
[[case]]
name = "hello"
image = "hello.script"
serial.golden = "golden/hello.txt"
serial.require = ['^PASS boot$', 'summary: \d+ passed, 0 failed']
serial.forbid = ['^FAIL']

[[case]]
name = "three"
image = "three.script"
expect.exit = 3
)")});
  EXPECT_EQ(ran.status, kExitAllPassed) << ran.out << ran.err;
  EXPECT_NE(ran.out.find("2 passed, 0 failed (2 cases,"), std::string::npos) << ran.out;
  // Not a terminal: one plain progress line per case.
  EXPECT_NE(ran.err.find("PASS suite/hello"), std::string::npos) << ran.err;
  EXPECT_NE(ran.err.find("PASS suite/three"), std::string::npos) << ran.err;
}

TEST_F(Session, FailuresSayWhy) {
  dir.write("wrong_exit.script",
            "out booting\nerr drvm: guest wrote 7\nerr RAX=0000000000000007\nexit 15\n");
  dir.write("diff.script", "out line 1\nout line two\nout line 3\n");
  dir.write("golden/diff.txt", "line 1\nline 2\nline 3\n");
  dir.write("patterns.script", "out PASS a\nout FAIL b: value 3\n");
  const Ran ran = run({manifest(R"(
[[case]]
image = "wrong_exit.script"

[[case]]
image = "diff.script"
serial.golden = "golden/diff.txt"

[[case]]
image = "patterns.script"
serial.require = ['^summary:']
serial.forbid = ['^FAIL']
)")});
  EXPECT_EQ(ran.status, kExitSomeFailed);
  const std::string& out = ran.out;
  EXPECT_NE(out.find("FAIL suite/wrong_exit ("), std::string::npos) << out;
  EXPECT_NE(out.find("  expected exit value 0, got exit value 7 (status 15)\n"), std::string::npos);
  EXPECT_NE(out.find("  command: " DRVM_FAKE_DRVM " run "), std::string::npos) << out;
  EXPECT_NE(out.find("  drvm stderr:\n    drvm: guest wrote 7\n    RAX=0000000000000007\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("    booting\n"), std::string::npos) << "the serial tail is shown";
  EXPECT_NE(out.find("serial output differs from golden file"), std::string::npos);
  EXPECT_NE(out.find("    @@ -1,3 +1,3 @@\n     line 1\n    -line 2\n    +line two\n     line 3\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("  no serial line matches required /^summary:/\n"), std::string::npos);
  EXPECT_NE(out.find("  serial line 2 matches forbidden /^FAIL/: FAIL b: value 3\n"),
            std::string::npos);
  EXPECT_NE(out.find("0 passed, 3 failed (3 cases,"), std::string::npos) << out;
}

TEST_F(Session, TimeoutsHangsAndCrashes) {
  dir.write("spin.script", "out spinning\nspin\n");
  dir.write("hang.script", "out stuck\nhang\n");
  dir.write("crash.script", "err about to crash\nsignal 11\n");
  const Ran ran = run({manifest(R"(
[defaults]
timeout = 0.2

[[case]]
name = "expected_timeout"
image = "spin.script"
expect.outcome = "timeout"

[[case]]
name = "unexpected_timeout"
image = "spin.script"

[[case]]
image = "hang.script"
expect.outcome = "timeout"

[[case]]
image = "crash.script"
)"),
                       "-j", "4"});
  EXPECT_EQ(ran.status, kExitSomeFailed);
  const std::string& out = ran.out;
  EXPECT_EQ(out.find("suite/expected_timeout ("), std::string::npos) << "it passed:\n" << out;
  EXPECT_NE(out.find("FAIL suite/unexpected_timeout"), std::string::npos) << out;
  EXPECT_NE(out.find("expected exit value 0, got timeout (status 4)"), std::string::npos);
  EXPECT_NE(out.find("ERROR suite/hang ("), std::string::npos) << out;
  EXPECT_NE(out.find("expected timeout, got hung: drvm did not end by the hard deadline"),
            std::string::npos);
  EXPECT_NE(out.find("ERROR suite/crash ("), std::string::npos) << out;
  EXPECT_NE(out.find("got crash: drvm killed by signal 11 (SIGSEGV)"), std::string::npos);
  EXPECT_NE(out.find("1 passed, 1 failed, 2 errors (4 cases,"), std::string::npos) << out;
}

TEST_F(Session, PassesTheCaseFlagsToDrvmRun) {
  const fs::path args = dir.path() / "args.txt";
  dir.write("a.script", "args " + args.string() + "\n");
  ASSERT_EQ(run({manifest(R"(
[[case]]
image = "a.script"
mem = 32
cpus = 4
cmdline = "console=ttyS0 quiet"
initrd = ["m1.bin one", "m2.bin"]
timeout = 1.5
)")})
                .status,
            kExitAllPassed);
  EXPECT_EQ(testing::read_file(args),
            std::string(DRVM_FAKE_DRVM) + "\nrun\n" + (dir.path() / "a.script").string() +
                "\n--mem\n32M\n--cpus\n4\n--cmdline\nconsole=ttyS0 quiet\n--initrd\n" +
                (dir.path() / "m1.bin").string() + " one\n--initrd\n" +
                (dir.path() / "m2.bin").string() + "\n--timeout\n1.5\n");
  // A size that is not whole MiB goes on in KiB, with its unit (a bare number would be MiB).
  ASSERT_EQ(run({manifest("[[case]]\nimage = \"a.script\"\nmem = \"6148K\"\n")}).status,
            kExitAllPassed);
  EXPECT_NE(testing::read_file(args).find("\n--mem\n6148K\n"), std::string::npos)
      << testing::read_file(args);
}

TEST_F(Session, EventCountsAreCheckedAgainstDrvmRunsStat) {
  const fs::path args = dir.path() / "args.txt";
  // fake_drvm writes the rest of a `stat` line verbatim to the --stat-output file.
  const std::string stat =
      R"(stat {"events":[{"spec":"mem:counter:w","count":3},{"spec":"mem:0x1000/4","count":0}]})"
      "\n";
  dir.write("counts.script", "accept-events\n" + stat + "args " + args.string() + "\n");
  dir.write("nostat.script", "accept-events\n");
  dir.write("garbled.script", "accept-events\nstat {\"events\": 7\n");
  const Ran ran = run({manifest(R"(
[[case]]
name = "exact"
image = "counts.script"
events = [{spec = "mem:counter:w", count = 3}]

[[case]]
name = "wrong"
image = "counts.script"
events = [{spec = "mem:counter:w", count = 4}, {spec = "mem:0x1000/4", min = 1},
          {spec = "mem:other", max = 2}]

[[case]]
name = "nostat"
image = "nostat.script"
events = [{spec = "mem:counter:w", count = 3}]

[[case]]
name = "garbled"
image = "garbled.script"
events = [{spec = "mem:counter:w", count = 3}]
)")});
  EXPECT_EQ(ran.status, kExitSomeFailed);
  EXPECT_NE(ran.err.find("PASS suite/exact"), std::string::npos) << ran.err;
  EXPECT_NE(ran.out.find("event mem:counter:w counted 3, expected 4"), std::string::npos)
      << ran.out;
  EXPECT_NE(ran.out.find("event mem:0x1000/4 counted 0, expected at least 1"), std::string::npos)
      << ran.out;
  EXPECT_NE(ran.out.find("event mem:other is missing from drvm run's counts"), std::string::npos)
      << ran.out;
  EXPECT_NE(ran.out.find("drvm run wrote no event counts"), std::string::npos) << ran.out;
  EXPECT_NE(ran.out.find("cannot read drvm run's event counts"), std::string::npos) << ran.out;
  const std::string passed = testing::read_file(args);
  EXPECT_NE(passed.find("--event\nmem:counter:w\n--event\nmem:0x1000/4\n--event\nmem:other\n"
                        "--stat\n--json\n--stat-output\n"),
            std::string::npos)
      << passed;
}

TEST_F(Session, JunitAndTapReports) {
  dir.write("ok.script", "out fine\n");
  dir.write("bad.script", "out \\x1b[31mred\\x00\nexit 6\n");
  const fs::path junit = dir.path() / "junit.xml";
  const Ran ran = run({manifest(R"(
[[case]]
image = "ok.script"
[[case]]
image = "bad.script"
)"),
                       "--junit", junit.string(), "--tap"});
  EXPECT_EQ(ran.status, kExitSomeFailed);
  // TAP alone on stdout; the human report moves to stderr.
  EXPECT_EQ(ran.out.rfind("TAP version 13\n1..2\nok 1 - suite/ok\nnot ok 2 - suite/bad\n", 0), 0u)
      << ran.out;
  EXPECT_NE(ran.err.find("FAIL suite/bad"), std::string::npos);

  boost::property_tree::ptree tree;
  boost::property_tree::read_xml(junit.string(), tree);
  EXPECT_EQ(tree.get<int>("testsuites.<xmlattr>.tests"), 2);
  EXPECT_EQ(tree.get<int>("testsuites.<xmlattr>.failures"), 1);
  std::vector<std::string> outputs;
  for (const auto& [key, node] : tree.get_child("testsuites.testsuite")) {
    if (key == "testcase") outputs.push_back(node.get<std::string>("system-out"));
  }
  EXPECT_EQ(outputs, (std::vector<std::string>{"fine\n", "\\x1b[31mred\\x00\n"}));
}

TEST_F(Session, UpdateGolden) {
  dir.write("a.script", "out new output\n");
  dir.write("halt.script", "out halted output\nexit 6\n");
  const fs::path changed = dir.write("golden/a.txt", "old output\n");
  const fs::path missing = dir.path() / "golden/new/b.txt";
  const fs::path kept = dir.write("golden/halt.txt", "old halt\n");
  const std::string suite = manifest(R"(
[[case]]
image = "a.script"
serial.golden = "golden/a.txt"
[[case]]
name = "b"
image = "a.script"
serial.golden = "golden/new/b.txt"
[[case]]
image = "halt.script"
serial.golden = "golden/halt.txt"
)");
  const Ran before = run({suite});
  EXPECT_EQ(before.status, kExitSomeFailed);
  EXPECT_NE(before.out.find("golden/new/b.txt does not exist or is unreadable; run with "
                            "--update-golden to create it"),
            std::string::npos)
      << before.out;

  const Ran update = run({suite, "--update-golden"});
  EXPECT_EQ(update.status, kExitSomeFailed) << "the halting case still fails";
  EXPECT_EQ(testing::read_file(changed), "new output\n");
  EXPECT_EQ(testing::read_file(missing), "new output\n");
  EXPECT_EQ(testing::read_file(kept), "old halt\n") << "a run that ended wrongly updates nothing";
  EXPECT_NE(update.out.find("not updated: the run did not end as expected"), std::string::npos);
  EXPECT_NE(update.out.find("2 passed, 1 failed (3 cases,"), std::string::npos) << update.out;
  EXPECT_NE(update.out.find("2 golden files updated"), std::string::npos) << update.out;

  EXPECT_EQ(run({suite, "--filter", "a", "--filter", "b"}).status, kExitAllPassed);
}

TEST_F(Session, ShardsCoverEveryCaseOnce) {
  std::string text;
  for (int i = 0; i < 7; ++i)
    text += "[[case]]\nname = 'c" + std::to_string(i) + "'\nimage = 'ok.script'\n";
  dir.write("ok.script", "out ok\n");
  const std::string suite = manifest(text);
  std::multiset<std::string> seen;
  for (const char* shard : {"1/3", "2/3", "3/3"}) {
    const Ran ran = run({suite, "--shard", shard, "--tap", "-j", "2"});
    ASSERT_EQ(ran.status, kExitAllPassed) << ran.err;
    std::istringstream lines(ran.out);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("ok ", 0) == 0) seen.insert(line.substr(line.find(" - ") + 3));
    }
  }
  EXPECT_EQ(seen.size(), 7u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(seen.count("suite/c" + std::to_string(i)), 1u) << i;
}

TEST_F(Session, CasesRunInParallel) {
  // Each case waits for the other's file: they pass only when -j 2 runs them at the same time.
  const auto a = dir.path() / "a.flag", b = dir.path() / "b.flag";
  dir.write("a.script", "touch " + a.string() + "\nawait " + b.string() + "\n");
  dir.write("b.script", "touch " + b.string() + "\nawait " + a.string() + "\n");
  const Ran ran = run({manifest("[defaults]\ntimeout = 20\n[[case]]\nimage = 'a.script'\n"
                                "[[case]]\nimage = 'b.script'\n"),
                       "-j", "2"});
  EXPECT_EQ(ran.status, kExitAllPassed) << ran.out;
}

TEST_F(Session, VerboseShowsEveryCase) {
  dir.write("ok.script", "out guest says hi\nerr drvm says hi\n");
  const Ran ran = run({manifest("[[case]]\nimage = 'ok.script'\n"), "--verbose"});
  EXPECT_EQ(ran.status, kExitAllPassed);
  EXPECT_NE(ran.out.find("--- suite/ok\n  command: "), std::string::npos) << ran.out;
  EXPECT_NE(ran.out.find("    guest says hi\n"), std::string::npos);
  EXPECT_NE(ran.out.find("    drvm says hi\n"), std::string::npos);
}

TEST_F(Session, UsageAndManifestErrorsExitWith2) {
  dir.write("ok.script", "out ok\n");
  const std::string good = manifest("[[case]]\nimage = 'ok.script'\n");
  const auto bad = dir.write("bad.toml", "[[case]]\nimage = 'ok.script'\ntimout = 1\n");

  Ran ran = run({bad.string()});
  EXPECT_EQ(ran.status, kExitUsage);
  EXPECT_EQ(ran.err, "drvm: test: bad manifest: " + bad.string() +
                         ":3:1: case[0].timout: unknown key; did you mean 'timeout'?\n");

  ran = run({good, "--filter", "nomatch*"});
  EXPECT_EQ(ran.status, kExitUsage);
  EXPECT_EQ(ran.err,
            "drvm: test: --filter nomatch* matches no case; run 'drvm test --help' for usage\n");

  ran = run({good, "--junit", "/nonexistent-dir/junit.xml"});
  EXPECT_EQ(ran.status, kExitUsage);
  EXPECT_NE(ran.err.find("directory /nonexistent-dir does not exist"), std::string::npos);

  ran = run({good, "--bogus"});
  EXPECT_EQ(ran.status, kExitUsage);
  EXPECT_EQ(ran.err, "drvm: test: unknown option '--bogus'; run 'drvm test --help' for the list\n");

  ran = run({(dir.path() / "missing.toml").string()});
  EXPECT_EQ(ran.status, kExitUsage);
  EXPECT_NE(ran.err.find("missing.toml: cannot read the manifest: No such file"),
            std::string::npos);

  std::vector<std::string_view> no_runner = {good};
  FILE* sink = std::fopen("/dev/null", "w");
  EXPECT_EQ(test_main(no_runner, "/nonexistent/drvm", {sink, sink}), kExitUsage);
  std::fclose(sink);

  ran = run({"--help"});
  EXPECT_EQ(ran.status, kExitAllPassed);
  EXPECT_NE(ran.out.find("usage: drvm test MANIFEST... [options]"), std::string::npos);
}

TEST_F(Session, ABadImageIsAnErrorNotAPass) {
  const Ran ran = run({manifest("[[case]]\nimage = 'missing.elf'\n")});
  EXPECT_EQ(ran.status, kExitSomeFailed);
  EXPECT_NE(ran.out.find("got error: drvm run refused the case (status 2)"), std::string::npos);
  EXPECT_NE(ran.out.find("drvm: run: cannot open image"), std::string::npos) << ran.out;
}

}  // namespace
}  // namespace drvm::harness

namespace drvm::harness {
namespace {

// Four cases; with touch, each leaves a file behind when (and only when) it ran.
class ListAndFailFast : public Session {
 protected:
  std::string four_cases(const std::string& second_script) {
    for (const char* name : {"a", "c", "d"}) {
      dir.write(std::string(name) + ".script", "touch " + (dir.path() / name).string() + "\n");
    }
    dir.write("b.script", second_script);
    return manifest(R"(
name = "four"
[[case]]
name = "a"
image = "a.script"
[[case]]
name = "b"
image = "b.script"
[[case]]
name = "c"
image = "c.script"
[[case]]
name = "d"
image = "d.script"
)");
  }
  bool ran(const char* name) { return fs::exists(dir.path() / name); }
};

TEST_F(ListAndFailFast, ListPrintsTheSelectedCasesAndRunsNothing) {
  const std::string suite = four_cases("touch " + (dir.path() / "b").string() + "\n");
  Ran listed = run({suite, "--list"});
  EXPECT_EQ(listed.status, kExitAllPassed) << listed.err;
  EXPECT_EQ(listed.out, "four/a\nfour/b\nfour/c\nfour/d\n");
  EXPECT_EQ(listed.err, "");
  for (const char* name : {"a", "b", "c", "d"}) EXPECT_FALSE(ran(name)) << name;

  listed = run({suite, "--list", "--filter", "four/[bcd]", "--shard", "2/2"});
  EXPECT_EQ(listed.status, kExitAllPassed) << listed.err;
  EXPECT_EQ(listed.out, "four/c\n");
  const Ran none = run({suite, "--list", "--filter", "zzz"});
  EXPECT_EQ(none.status, kExitUsage);
}

TEST_F(ListAndFailFast, FailFastStartsNothingAfterTheFirstFailure) {
  const std::string suite = four_cases("exit 5\n");  // b: guest exit value 2, expected 0
  const std::string junit = (dir.path() / "junit.xml").string();
  const Ran stopped = run({suite, "-j", "1", "--fail-fast", "--tap", "--junit", junit});
  EXPECT_EQ(stopped.status, kExitSomeFailed);
  EXPECT_TRUE(ran("a"));
  EXPECT_FALSE(ran("c"));
  EXPECT_FALSE(ran("d"));
  EXPECT_NE(stopped.err.find("1 passed, 1 failed, 2 not run (--fail-fast) (4 cases,"),
            std::string::npos)
      << stopped.err;
  EXPECT_NE(stopped.err.find("NOT RUN four/c"), std::string::npos) << stopped.err;
  EXPECT_NE(stopped.out.find("not ok 2 - four/b\n"), std::string::npos) << stopped.out;
  EXPECT_NE(stopped.out.find("ok 3 - four/c # SKIP not run: --fail-fast stopped after an earlier "
                             "case failed\n"),
            std::string::npos)
      << stopped.out;
  const std::string xml = testing::read_file(junit);
  EXPECT_NE(xml.find("tests=\"4\" failures=\"1\" errors=\"0\" skipped=\"2\""), std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<skipped message=\"not run: --fail-fast"), std::string::npos) << xml;

  // Without --fail-fast every case runs.
  const Ran all = run({suite, "-j", "1"});
  EXPECT_EQ(all.status, kExitSomeFailed);
  EXPECT_TRUE(ran("c"));
  EXPECT_TRUE(ran("d"));
  EXPECT_NE(all.out.find("3 passed, 1 failed (4 cases,"), std::string::npos) << all.out;
}

TEST_F(ListAndFailFast, FailFastWithEverythingPassingRunsEverything) {
  const std::string suite = four_cases("touch " + (dir.path() / "b").string() + "\n");
  const Ran ran_all = run({suite, "--fail-fast"});
  EXPECT_EQ(ran_all.status, kExitAllPassed) << ran_all.out << ran_all.err;
  for (const char* name : {"a", "b", "c", "d"}) EXPECT_TRUE(ran(name)) << name;
}

}  // namespace
}  // namespace drvm::harness

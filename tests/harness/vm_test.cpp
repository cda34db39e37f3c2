// The harness driving the real `drvm run` on the project's guest images (needs /dev/kvm).
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <thread>

#include "harness/case_runner.hpp"
#include "harness/session.hpp"
#include "harness/verdict.hpp"
#include "test_support.hpp"

extern char** environ;

namespace drvm::harness {
namespace {

namespace fs = std::filesystem;

// `drvm test ARGS` in this process: its status and stdout (stderr dropped).
std::pair<int, std::string> test_main_stdout(const std::vector<std::string>& args) {
  const std::vector<std::string_view> views(args.begin(), args.end());
  char* buffer = nullptr;
  std::size_t size = 0;
  FILE* out = open_memstream(&buffer, &size);
  FILE* err = std::fopen("/dev/null", "w");
  const int status = test_main(views, DRVM_EXECUTABLE, {out, err});
  std::fclose(out);
  std::fclose(err);
  std::string text(buffer, size);
  std::free(buffer);
  return {status, std::move(text)};
}

class HarnessVm : public ::testing::Test {
 protected:
  void SetUp() override {
    const int kvm = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) GTEST_SKIP() << "/dev/kvm is not available";
    ::close(kvm);
  }

  CaseRun run(const std::string& image, double timeout_s = 10) {
    Case test;
    test.name = image;
    test.image = fs::path(DRVM_GUEST_DIR) / image;
    test.timeout_s = timeout_s;
    EXPECT_TRUE(fs::exists(test.image)) << test.image;
    return run_case(test, {.drvm = DRVM_EXECUTABLE});
  }
};

TEST_F(HarnessVm, HelloExitsWithValue0) {
  const CaseRun hello = run("hello.elf");
  EXPECT_EQ(hello.outcome.kind, OutcomeKind::Exit) << describe(hello.outcome) << hello.child.err;
  EXPECT_EQ(hello.outcome.status, 1);
  EXPECT_EQ(hello.outcome.exit_value, 0u);
  EXPECT_NE(hello.child.out.find("hello from the guest"), std::string::npos) << hello.child.out;
}

TEST_F(HarnessVm, SelftestPasses) {
  const CaseRun selftest = run("selftest.elf");
  EXPECT_EQ(selftest.outcome.kind, OutcomeKind::Exit) << describe(selftest.outcome);
  EXPECT_EQ(selftest.outcome.exit_value, 0u) << selftest.child.out;
  EXPECT_NE(selftest.child.out.find(" 0 failed"), std::string::npos) << selftest.child.out;
}

TEST_F(HarnessVm, HaltIsAHalt) {
  const CaseRun halt = run("halt.elf");
  EXPECT_EQ(halt.outcome.kind, OutcomeKind::Halt) << describe(halt.outcome) << halt.child.err;
}

TEST_F(HarnessVm, SpinIsATimeout) {
  const CaseRun spin = run("spin.elf", 0.5);
  EXPECT_EQ(spin.outcome.kind, OutcomeKind::Timeout) << describe(spin.outcome) << spin.child.err;
  EXPECT_FALSE(spin.child.killed_at_deadline);
}

TEST_F(HarnessVm, TripleFaultIsAFaultWithARegisterDump) {
  const CaseRun fault = run("triplefault.elf");
  EXPECT_EQ(fault.outcome.kind, OutcomeKind::Fault) << describe(fault.outcome);
  EXPECT_EQ(fault.outcome.status, kStatusTripleFault);
  EXPECT_NE(fault.child.err.find("RIP"), std::string::npos) << fault.child.err;
}

// `cpus = N` reaches drvm run as --cpus N: smp-hello starts and lists every CPU.
TEST_F(HarnessVm, CpusKeyRunsTheCaseOnThatManyVcpus) {
  testing::ScratchDir dir;
  const auto manifest = dir.write(
      "suite.toml",
      fmt::format(
          "[[case]]\nimage = '{}/smp-hello.elf'\ncpus = 3\nexpect.exit = 0\n"
          "serial.require = ['^cpu 2 \\(APIC ID 2\\) up$', '^smp-hello: 3 of 3 CPUs up$']\n",
          DRVM_GUEST_DIR));
  const auto [status, report] = test_main_stdout({manifest.string()});
  EXPECT_EQ(status, kExitAllPassed) << report;
  EXPECT_NE(report.find("1 passed"), std::string::npos) << report;
}

TEST_F(HarnessVm, AWrongGoldenFileFailsWithADiff) {
  testing::ScratchDir dir;
  dir.write("golden.txt", "something else\n");
  const auto manifest = dir.write(
      "suite.toml", fmt::format("[[case]]\nimage = '{}/hello.elf'\nserial.golden = 'golden.txt'\n",
                                DRVM_GUEST_DIR));
  const auto junit = dir.path() / "junit.xml";
  const auto [status, report] = test_main_stdout({manifest.string(), "--junit", junit.string()});
  EXPECT_EQ(status, kExitSomeFailed) << report;
  EXPECT_NE(report.find("-something else\n"), std::string::npos) << report;
  EXPECT_NE(report.find("+drvm guestfw: hello from the guest"), std::string::npos) << report;
  EXPECT_NE(testing::read_file(junit).find("<failure message=\"serial output differs"),
            std::string::npos);
}

// The real `drvm test` binary on SIGINT (no KVM needed: fake_drvm runs the cases): the
// signal reaches only drvm test, which stops its child and reports.
TEST(DrvmTestSignals, SigintEndsTheRunWithStatus130AndASummary) {
  testing::ScratchDir dir;
  const fs::path started = dir.path() / "started";
  dir.write("hang.script", fmt::format("touch {}\nhang\n", started.string()));
  const fs::path manifest = dir.write("suite.toml", R"(
[[case]]
name = "hangs"
image = "hang.script"
timeout = 60
)");
  const fs::path err_path = dir.path() / "stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, err_path.c_str(), O_WRONLY | O_CREAT, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<std::string> args{DRVM_EXECUTABLE, "test", manifest.string(), "--runner",
                                DRVM_FAKE_DRVM};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  for (int i = 0; i < 1000 && !fs::exists(started); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGINT);
  int status = 0;
  bool ended = false;
  for (int i = 0; i < 2000 && !ended; ++i) {
    ended = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!ended) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  std::ifstream in(err_path);
  const std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(ended) << output;
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 130) << output;
  EXPECT_NE(output.find("0 passed, 0 failed, 1 interrupted (1 case,"), std::string::npos) << output;
}

// --fail-fast on the real drvm: halt.elf fails its exit expectation, so with -j 1 the two hello
// cases after it never start.
TEST_F(HarnessVm, FailFastStopsAfterARealFailure) {
  testing::ScratchDir dir;
  const auto manifest = dir.write("suite.toml", fmt::format(R"(
name = "ff"
[[case]]
name = "first"
image = "{0}/hello.elf"
[[case]]
name = "halts"
image = "{0}/halt.elf"
[[case]]
name = "after1"
image = "{0}/hello.elf"
[[case]]
name = "after2"
image = "{0}/hello.elf"
)",
                                                            DRVM_GUEST_DIR));
  const auto [status, tap] =
      test_main_stdout({manifest.string(), "-j", "1", "--fail-fast", "--tap"});
  EXPECT_EQ(status, kExitSomeFailed) << tap;
  EXPECT_NE(tap.find("ok 1 - ff/first\n"), std::string::npos) << tap;
  EXPECT_NE(tap.find("not ok 2 - ff/halts\n"), std::string::npos) << tap;
  EXPECT_NE(tap.find("ok 3 - ff/after1 # SKIP not run"), std::string::npos) << tap;
  EXPECT_NE(tap.find("ok 4 - ff/after2 # SKIP not run"), std::string::npos) << tap;
}

// --recordings DIR keeps the recording of each failed case (only those), and drvm replay repeats
// that run: same output, same status.
TEST_F(HarnessVm, RecordingsKeepsTheFailedCasesRecordingForReplay) {
  testing::ScratchDir dir;
  const auto manifest = dir.write("suite.toml", fmt::format(R"(
name = "rec"
[[case]]
name = "passes"
image = "{0}/hello.elf"
[[case]]
name = "fails"
image = "{0}/halt.elf"
)",
                                                            DRVM_GUEST_DIR));
  const fs::path recordings = dir.path() / "recordings";
  const auto [status, tap] = test_main_stdout(
      {manifest.string(), "-j", "1", "--tap", "--recordings", recordings.string()});
  EXPECT_EQ(status, kExitSomeFailed) << tap;
  EXPECT_NE(tap.find("not ok 2 - rec/fails\n"), std::string::npos) << tap;
  const fs::path kept = recordings / "rec_fails.drvmrec";
  EXPECT_TRUE(fs::exists(kept));
  EXPECT_FALSE(fs::exists(recordings / "rec_passes.drvmrec"));
  EXPECT_EQ(std::distance(fs::directory_iterator(recordings), fs::directory_iterator()), 1);

  const fs::path out = dir.path() / "replay.out";
  const fs::path err = dir.path() / "replay.err";
  const int replay =
      std::system(fmt::format("'{}' replay '{}' --timeout 20 > '{}' 2> '{}'", DRVM_EXECUTABLE,
                              kept.string(), out.string(), err.string())
                      .c_str());
  std::ifstream err_in(err);
  const std::string err_text((std::istreambuf_iterator<char>(err_in)),
                             std::istreambuf_iterator<char>());
  ASSERT_TRUE(WIFEXITED(replay));
  EXPECT_EQ(WEXITSTATUS(replay), 6) << err_text;  // halted, as recorded
  EXPECT_EQ(err_text.find("the recording with"), std::string::npos) << err_text;
  EXPECT_EQ(err_text.find("left its recording"), std::string::npos) << err_text;
}

}  // namespace
}  // namespace drvm::harness

// VM tests: SIGINT and SIGTERM on `drvm run` stop the vCPUs cleanly, report where each was and
// the --stat counts, and exit with status 14; --symbols on a stripped image.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "run_drvm.hpp"

extern char** environ;

namespace drvm::test {
namespace {

using Clock = std::chrono::steady_clock;

bool have_kvm() {
  return ::access("/dev/kvm", R_OK | W_OK) == 0;
}

#define REQUIRE_KVM() \
  if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is missing or not accessible"

std::string guest(const std::string& name) {
  return std::string(DRVM_GUEST_DIR) + "/" + name;
}

struct Interrupted {
  std::optional<int> status;  // exit status; nothing when it did not exit by itself in time
  std::optional<int> signal;  // the signal that ended it, if one did
  std::string out, err;
};

// Starts drvm, waits until its stdout contains `ready`, sends `signal` (`count` times, 100 ms
// apart) and waits up to 20 s for it to end.
Interrupted interrupt_drvm(const std::vector<std::string>& args, const std::string& ready,
                           int signal, int count = 1) {
  const std::string out_path = temp_path("out");
  const std::string err_path = temp_path("err");
  temp_files().push_back(out_path);
  temp_files().push_back(err_path);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<std::string> storage{DRVM_BINARY};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  Interrupted result;
  const int error = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) return result;
  const auto ready_deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < ready_deadline && slurp(out_path).find(ready) == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // into the guest's loop
  for (int i = 0; i < count; ++i) {
    ::kill(pid, signal);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  int wait_status = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  bool ended = false;
  while (!ended && Clock::now() < deadline) {
    ended = ::waitpid(pid, &wait_status, WNOHANG) == pid;
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!ended) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &wait_status, 0);
  } else if (WIFEXITED(wait_status)) {
    result.status = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    result.signal = WTERMSIG(wait_status);
  }
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  return result;
}

TEST(InterruptTest, SigintStopsTheGuestReportsWhereItWasAndTheCountsWithStatus14) {
  REQUIRE_KVM();
  const Interrupted r = interrupt_drvm(
      {"run", guest("gdbwork.elf"), "--cmdline", "spin", "--event", "mem:spin_release:r", "--stat"},
      "gdbwork: spinning", SIGINT);
  SCOPED_TRACE(r.err);
  EXPECT_EQ(r.status, 14);
  EXPECT_FALSE(r.signal);
  EXPECT_NE(r.err.find("drvm: interrupted by SIGINT: stopped the guest\n"), std::string::npos);
  EXPECT_NE(r.err.find("drvm: vCPU 0 stopped at RIP 0x"), std::string::npos);
  EXPECT_NE(r.err.find("RFLAGS"), std::string::npos);
  EXPECT_NE(r.err.find("mem:spin_release:r"), std::string::npos);  // the --stat table
}

// A second signal while drvm shuts down ends it at once, still with status 14.
TEST(InterruptTest, ASecondSigintExitsAtOnce) {
  REQUIRE_KVM();
  const Interrupted r = interrupt_drvm({"run", guest("spin.elf")}, "spin.elf", SIGINT, 2);
  SCOPED_TRACE(r.err);
  EXPECT_EQ(r.status, 14);
  EXPECT_FALSE(r.signal);
}

// --symbols: a stripped image's events and --stat locations are named from the unstripped file.
TEST(InterruptTest, StrippedImageCountsASymbolFromTheSymbolsFile) {
  REQUIRE_KVM();
  const Interrupted r =
      interrupt_drvm({"run", guest("gdbwork-stripped.elf"), "--symbols", guest("gdbwork.elf"),
                      "--cmdline", "spin", "--event", "mem:spin_release:r", "--stat"},
                     "gdbwork: spinning", SIGINT);
  SCOPED_TRACE(r.err);
  EXPECT_EQ(r.status, 14);
  EXPECT_NE(r.err.find("spin_release"), std::string::npos);
}

// Checked before /dev/kvm is opened: this runs on any host.
TEST(SymbolsOption, AnUnusableFileIsAOneLineSetupError) {
  const DrvmResult r =
      run_drvm({"run", guest("gdbwork-stripped.elf"), "--symbols", "/nonexistent/gdbwork.elf"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err,
            "drvm: --symbols: cannot read /nonexistent/gdbwork.elf: No such file or directory; "
            "give an ELF with a symbol table, such as the unstripped build of the image\n");
  EXPECT_EQ(r.out, "");
}

TEST(InterruptTest, SigtermEndsTheRunTheSameWay) {
  REQUIRE_KVM();
  const Interrupted r = interrupt_drvm({"run", guest("spin.elf")}, "spin.elf", SIGTERM);
  SCOPED_TRACE(r.err);
  EXPECT_EQ(r.status, 14);
  EXPECT_NE(r.err.find("drvm: interrupted by SIGTERM"), std::string::npos);
  EXPECT_NE(r.err.find("drvm: vCPU 0 stopped at RIP 0x"), std::string::npos);
}

}  // namespace
}  // namespace drvm::test

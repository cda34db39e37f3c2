// The harness driving the real `drvm run` on the project's guest images (needs /dev/kvm).
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "harness/case_runner.hpp"
#include "harness/session.hpp"
#include "harness/verdict.hpp"
#include "test_support.hpp"

namespace drvm::harness {
namespace {

namespace fs = std::filesystem;

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

TEST_F(HarnessVm, AWrongGoldenFileFailsWithADiff) {
  testing::ScratchDir dir;
  dir.write("golden.txt", "something else\n");
  const auto manifest = dir.write(
      "suite.toml", fmt::format("[[case]]\nimage = '{}/hello.elf'\nserial.golden = 'golden.txt'\n",
                                DRVM_GUEST_DIR));
  const auto junit = dir.path() / "junit.xml";
  const std::vector<std::string> args = {manifest.string(), "--junit", junit.string()};
  const std::vector<std::string_view> views(args.begin(), args.end());
  char* buffer = nullptr;
  std::size_t size = 0;
  FILE* out = open_memstream(&buffer, &size);
  FILE* err = std::fopen("/dev/null", "w");
  const int status = test_main(views, DRVM_EXECUTABLE, {out, err});
  std::fclose(out);
  std::fclose(err);
  const std::string report(buffer, size);
  std::free(buffer);
  EXPECT_EQ(status, kExitSomeFailed) << report;
  EXPECT_NE(report.find("-something else\n"), std::string::npos) << report;
  EXPECT_NE(report.find("+drvm guestfw: hello from the guest"), std::string::npos) << report;
  EXPECT_NE(testing::read_file(junit).find("<failure message=\"serial output differs"),
            std::string::npos);
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
  const std::vector<std::string> args = {manifest.string(), "-j", "1", "--fail-fast", "--tap"};
  const std::vector<std::string_view> views(args.begin(), args.end());
  char* buffer = nullptr;
  std::size_t size = 0;
  FILE* out = open_memstream(&buffer, &size);
  FILE* err = std::fopen("/dev/null", "w");
  const int status = test_main(views, DRVM_EXECUTABLE, {out, err});
  std::fclose(out);
  std::fclose(err);
  const std::string tap(buffer, size);
  std::free(buffer);
  EXPECT_EQ(status, kExitSomeFailed) << tap;
  EXPECT_NE(tap.find("ok 1 - ff/first\n"), std::string::npos) << tap;
  EXPECT_NE(tap.find("not ok 2 - ff/halts\n"), std::string::npos) << tap;
  EXPECT_NE(tap.find("ok 3 - ff/after1 # SKIP not run"), std::string::npos) << tap;
  EXPECT_NE(tap.find("ok 4 - ff/after2 # SKIP not run"), std::string::npos) << tap;
}

}  // namespace
}  // namespace drvm::harness

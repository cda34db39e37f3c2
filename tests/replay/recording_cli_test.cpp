// drvm run --recording FILE and drvm replay FILE, through the drvm binary: a recorded run repeats
// with the same output and status and without its inputs; a changed image, a file that is not a
// recording, a tampered input and several vCPUs are refused or reported.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

#include "run_drvm.hpp"

namespace drvm::test {
namespace {

const std::string kEcho = std::string(DRVM_GUEST_DIR) + "/echo.elf";

#define REQUIRE_KVM()                                                                          \
  do {                                                                                         \
    if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable here"; \
  } while (0)

std::string input_file(const std::string& text) {
  const std::string path = temp_path("input");
  std::ofstream(path) << text;
  temp_files().push_back(path);
  return path;
}

std::string copy_file(const std::string& from) {
  const std::string path = temp_path("image.elf");
  std::ofstream(path, std::ios::binary) << slurp(from);
  temp_files().push_back(path);
  return path;
}

TEST(Recording, AReplayRepeatsTheRunWithoutItsInput) {
  REQUIRE_KVM();
  const std::string recording = temp_path("echo.drvmrec");
  temp_files().push_back(recording);
  const DrvmResult live = run_drvm({"run", kEcho, "--recording", recording, "--timeout", "20"}, {},
                                   input_file("typed by the host\n"));
  ASSERT_EQ(live.out, "echo: typed by the host\n") << live.err;
  ASSERT_EQ(live.status, 1) << live.err;
  EXPECT_NE(live.err.find("drvm: recording: " + recording), std::string::npos) << live.err;

  const DrvmResult replay = run_drvm({"replay", recording, "--timeout", "20"});
  EXPECT_EQ(replay.out, live.out) << replay.err;
  EXPECT_EQ(replay.status, live.status) << replay.err;
  EXPECT_EQ(replay.err.find("left its recording"), std::string::npos) << replay.err;
}

TEST(Recording, AReplayThatLeavesItsRecordingSaysWhere) {
  REQUIRE_KVM();
  const std::string recording = temp_path("tampered.drvmrec");
  temp_files().push_back(recording);
  const DrvmResult live =
      run_drvm({"run", kEcho, "--recording", recording, "--timeout", "20"}, {}, input_file("x\n"));
  ASSERT_EQ(live.out, "echo: x\n") << live.err;
  // The exit log's data is the file's tail; its first 'x' is the byte the guest read from COM1.
  std::string bytes = slurp(recording);
  const std::size_t exits = bytes.find("\nexits\n");
  ASSERT_NE(exits, std::string::npos);
  std::uint64_t data_size = 0;
  std::memcpy(&data_size, bytes.data() + exits + 7 + 8 + 8, sizeof data_size);
  ASSERT_LE(data_size, bytes.size());
  const std::size_t read = bytes.find('x', bytes.size() - data_size);
  ASSERT_NE(read, std::string::npos);
  bytes[read] = 'y';
  std::ofstream(recording, std::ios::binary | std::ios::trunc) << bytes;

  const DrvmResult replay = run_drvm({"replay", recording, "--timeout", "20"});
  EXPECT_EQ(replay.status, 10) << replay.err;
  EXPECT_NE(replay.err.find("drvm: replay: the run left its recording: exit"), std::string::npos)
      << replay.err;
  EXPECT_EQ(replay.out.find("echo: x"), std::string::npos) << replay.out;
}

TEST(Recording, AReplayRefusesAChangedImage) {
  REQUIRE_KVM();
  const std::string image = copy_file(kEcho);
  const std::string recording = temp_path("changed.drvmrec");
  temp_files().push_back(recording);
  const DrvmResult live =
      run_drvm({"run", image, "--recording", recording, "--timeout", "20"}, {}, input_file("a\n"));
  ASSERT_EQ(live.status, 1) << live.err;
  std::ofstream(image, std::ios::binary | std::ios::app) << '\0';
  const DrvmResult replay = run_drvm({"replay", recording});
  EXPECT_EQ(replay.status, 2) << replay.err;
  EXPECT_NE(replay.err.find("is not the file that was recorded"), std::string::npos) << replay.err;
  EXPECT_EQ(replay.out, "");
}

TEST(Recording, ReplayNeedsARecording) {
  const std::string bogus = input_file("not a recording\n");
  const DrvmResult replay = run_drvm({"replay", bogus});
  EXPECT_EQ(replay.status, 2);
  EXPECT_NE(replay.err.find("is not a drvm recording"), std::string::npos) << replay.err;
  const DrvmResult missing = run_drvm({"replay", temp_path("missing")});
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("cannot read"), std::string::npos) << missing.err;
  const DrvmResult none = run_drvm({"replay"});
  EXPECT_EQ(none.status, 2);
  EXPECT_NE(none.err.find("give exactly one recording"), std::string::npos) << none.err;
}

TEST(Recording, NeedsOneVcpu) {
  const DrvmResult run =
      run_drvm({"run", kEcho, "--recording", temp_path("smp.drvmrec"), "--cpus", "2"});
  EXPECT_EQ(run.status, 2);
  EXPECT_NE(run.err.find("--recording needs one vCPU"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace drvm::test

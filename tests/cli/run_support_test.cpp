// Unit tests of `drvm run`'s helpers that need no KVM: the gdb connect command printed when the
// stub listens, and SIGINT/SIGTERM handling (StopSignals).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "gdb_connect.hpp"
#include "stop_signals.hpp"

namespace drvm::cli {
namespace {

TEST(GdbConnectCommand, NamesTheAddressAndTheImage) {
  EXPECT_EQ(gdb_connect_command("127.0.0.1", 1234, "build/guest/gdbwork.elf"),
            "gdb -ex 'target remote 127.0.0.1:1234' build/guest/gdbwork.elf");
  EXPECT_EQ(gdb_connect_command("::1", 1234, "/tmp/a.elf"),
            "gdb -ex 'target remote [::1]:1234' /tmp/a.elf");
}

TEST(GdbConnectCommand, WildcardAddressesAreReachedOverLoopback) {
  EXPECT_EQ(gdb_connect_command("0.0.0.0", 9, "a.elf"),
            "gdb -ex 'target remote 127.0.0.1:9' a.elf");
  EXPECT_EQ(gdb_connect_command("::", 9, "a.elf"), "gdb -ex 'target remote [::1]:9' a.elf");
}

TEST(GdbConnectCommand, QuotesAnImagePathAShellWouldSplit) {
  EXPECT_EQ(gdb_connect_command("127.0.0.1", 1234, "my image.elf"),
            "gdb -ex 'target remote 127.0.0.1:1234' 'my image.elf'");
  EXPECT_EQ(gdb_connect_command("127.0.0.1", 1234, "it's.elf"),
            "gdb -ex 'target remote 127.0.0.1:1234' 'it'\\''s.elf'");
}

bool eventually(const std::atomic<int>& value, int expected) {
  for (int i = 0; i < 500 && value.load() != expected; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return value.load() == expected;
}

// Death tests run in a child: the signal mask and the waiting thread are the child's own.
TEST(StopSignalsDeathTest, FirstSignalCallsTheHandlerSecondExitsAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        StopSignals signals(14);
        std::atomic<int> seen{0};
        signals.set_handler([&seen](int signal) { seen.store(signal); });
        ::kill(::getpid(), SIGINT);
        if (!eventually(seen, SIGINT)) ::_exit(1);
        ::kill(::getpid(), SIGINT);
        std::this_thread::sleep_for(std::chrono::seconds(5));
        ::_exit(2);  // not reached: the second signal exits with 14
      },
      ::testing::ExitedWithCode(14), "drvm: second interrupt: exiting at once");
}

TEST(StopSignalsDeathTest, SigtermIsHandledLikeSigint) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        StopSignals signals(14);
        std::atomic<int> seen{0};
        signals.set_handler([&seen](int signal) { seen.store(signal); });
        ::kill(::getpid(), SIGTERM);
        ::_exit(eventually(seen, SIGTERM) && signals.received() == SIGTERM ? 3 : 1);
      },
      ::testing::ExitedWithCode(3), "");
}

TEST(StopSignalsDeathTest, ASignalBeforeTheHandlerIsDeliveredWhenItIsSet) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        StopSignals signals(14);
        ::kill(::getpid(), SIGINT);
        for (int i = 0; i < 500 && signals.received() == 0; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        int seen = 0;
        signals.set_handler([&seen](int signal) { seen = signal; });
        ::_exit(seen == SIGINT ? 3 : 1);
      },
      ::testing::ExitedWithCode(3), "");
}

TEST(StopSignalsDeathTest, AClearedHandlerIsNotCalled) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        StopSignals signals(14);
        std::atomic<int> seen{0};
        {
          const StopSignals::ScopedHandler scoped(signals,
                                                  [&seen](int signal) { seen.store(signal); });
        }
        ::kill(::getpid(), SIGINT);
        for (int i = 0; i < 500 && signals.received() == 0; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ::_exit(signals.received() == SIGINT && seen.load() == 0 ? 3 : 1);
      },
      ::testing::ExitedWithCode(3), "");
}

}  // namespace
}  // namespace drvm::cli

// Reverse execution with the real gdb against `drvm run reverse.elf --gdb 0` (issue 13): watch +
// reverse-continue to the last write, reverse-step/next/finish through a call chain,
// reverse-stepi/stepi round trips, a watch over a REP string write, an exception handler, going
// forward again from the past, the refusals, and seeded writes checked against `--trace`.
//
// The expectations are gdb's documented behaviour (gdb manual, "Running programs backward"):
// going backward, a watchpoint stops where the watched value changed, with the state before the
// writing instruction, and gdb prints the value it last knew as "Old value" and the value there as
// "New value"; reverse-step enters a function through its end; reverse-finish stops at the call;
// the start of the recording stops with "No more reverse-execution history.". The guest is
// reverse.elf (guestfw/images/reverse_main.c), built at -O0 so gdb's lines and locals are exact.
// GdbReverseImage.* check the same stops going forward (they pass without reverse execution).
//
// gdb runs with -batch, so what it prints only for a terminal ("Continuing.", "Run back to call
// of ...") is absent; the tests assert the stop reports, frames and source lines.
//
// Watchpoints and breakpoints are set at done(), the image's last call, as a user would after a
// wrong result: the history before them is what gdb then goes back through.

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

// GCC 12 reports false maybe-uninitialized warnings inside <regex> at -O2 with the sanitizers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "elf_symbols.hpp"
#include "gdb_session.hpp"
#include "guest_images.hpp"
#include "process.hpp"

namespace drvm::test {
namespace {

constexpr const char* kImage = "reverse";
constexpr const char* kExitedNormally = "[Inferior 1 (Remote target) exited normally]";
constexpr const char* kNoMoreHistory = "No more reverse-execution history.";

// gdb prints "==NAME==" for this command (echo), which starts a section of its output.
std::string mark(const std::string& name) {
  return "echo ==" + name + "==\\n";
}

// Ends the section before it, where the next command's output would otherwise join it.
const std::string kEndMark = mark("-");

// What gdb printed on stdout between mark(name) and the next mark (or the end).
std::string section(const std::string& output, const std::string& name) {
  const std::string start = "==" + name + "==\n";
  const std::size_t begin = output.find(start);
  if (begin == std::string::npos) return "";
  const std::size_t from = begin + start.size();
  const std::size_t end = output.find("\n==", from);
  return output.substr(from, end == std::string::npos ? std::string::npos : end + 1 - from);
}

std::uint64_t symbol(const char* name) {
  const auto address = elf_symbol_address(guest_image_path(kImage), name);
  EXPECT_TRUE(address.has_value()) << kImage << ".elf has no symbol " << name;
  return address.value_or(0);
}

// "rip            0x100035            0x100035 <corrupt+4>": the value of `name`.
std::optional<std::uint64_t> register_value(const std::string& text, const std::string& name) {
  std::smatch match;
  if (!std::regex_search(text, match, std::regex("(^|\n)" + name + " +0x([0-9a-f]+)"))) {
    return std::nullopt;
  }
  return std::stoull(match[2], nullptr, 16);
}

// Every register gdb shows for `info registers` of these, as one comparable block.
constexpr const char* kInfoRegisters =
    "info registers rip rsp rbp rax rbx rcx rdx rsi rdi r8 r9 r10 r11 r12 r13 r14 r15 eflags";

// The session every test ends with: no breakpoints left, run to the exit.
void finish_run(std::vector<std::string>& commands) {
  commands.insert(commands.end(), {"delete", "continue"});
}

// The run went forward to its end exactly once: each line printed once, status 0.
void expect_one_complete_run(const GdbSessionResult& result, std::uint64_t seed = 1) {
  EXPECT_EQ(result.serial, reverse_output(seed));
  EXPECT_TRUE(contains(result.gdb_output, kExitedNormally));
  EXPECT_EQ(result.drvm_status, exit_port_status(kGuestSuccess));
}

GdbScript reverse_script(std::vector<std::string> commands) {
  GdbScript script;
  script.image = kImage;
  script.commands = std::move(commands);
  // Under nested KVM (TCG) a reverse run and its replays take tens of seconds.
  script.gdb_timeout = std::chrono::seconds(240);
  script.drvm_timeout = std::chrono::seconds(60);
  return script;
}

// ---- going forward: the stops the reverse tests rely on (pass without reverse execution) ----

TEST(GdbReverseImage, ForwardWatchesAndStepsStopWhereTheReverseTestsExpect) {
  REQUIRE_GDB_AND_KVM();
  std::vector<std::string> commands = {"break count_up",
                                       "continue",
                                       "delete",
                                       "watch counter",
                                       "continue",
                                       mark("first"),
                                       "print i",
                                       "delete",
                                       "break corrupt",
                                       "continue",
                                       "delete",
                                       "watch counter",
                                       "continue",
                                       "delete",
                                       "break add_scaled",
                                       "continue",
                                       "delete",
                                       mark("in-scale"),
                                       "step",
                                       "finish",
                                       "next",
                                       mark("return"),
                                       "next",
                                       "break fill_buffer",
                                       "continue",
                                       "delete",
                                       "watch buffer[20]",
                                       "continue",
                                       mark("rep"),
                                       "info registers rip rcx rdi",
                                       "delete",
                                       "watch handled",
                                       "continue",
                                       mark("handler"),
                                       "print/x frame->rip"};
  finish_run(commands);
  const GdbSessionResult result = run_gdb_session(reverse_script(commands));
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  const std::string line = R"([0-9]+\s+)";
  const std::string at_file = R"( at [^\n]*reverse_main\.c:[0-9]+\n)";
  // The loop's first write (i = 0; the .bss clear wrote 0 before guest_main).
  EXPECT_TRUE(contains(out, "Hardware watchpoint 2: counter\n\nOld value = 0\nNew value = 1\n"));
  EXPECT_TRUE(contains(section(out, "first"), "$1 = 0"));
  EXPECT_TRUE(contains(out, "Hardware watchpoint 4: counter\n\nOld value = 28\nNew value = 999\n"));
  EXPECT_TRUE(matches(
      out, "Breakpoint 5, add_scaled \\(a=5, b=7\\)" + at_file + line + R"(int sa = scale\(a\);)"));
  const std::string in_scale = section(out, "in-scale");
  EXPECT_TRUE(matches(in_scale, "^scale \\(x=5\\)" + at_file + line + R"(int scaled = x \* 3;)"))
      << in_scale;
  EXPECT_TRUE(contains(in_scale, "Value returned is $2 = 16"));
  EXPECT_TRUE(matches(in_scale, line + R"(int sb = scale\(b\);)"));
  EXPECT_TRUE(matches(section(out, "return"), "^" + line + R"(return sa \+ sb;)"));
  // Forward, a data breakpoint traps after the access: the iteration for buffer[20] is done.
  EXPECT_TRUE(contains(out,
                       "Hardware watchpoint 7: buffer[20]\n\nOld value = 0 '\\000'\nNew value = "
                       "171 '\\253'\n"));
  const std::string rep = section(out, "rep");
  EXPECT_EQ(register_value(rep, "rip"), symbol("reverse_rep_stosb"));
  EXPECT_EQ(register_value(rep, "rcx"), 64u - 21u);
  EXPECT_EQ(register_value(rep, "rdi"), symbol("buffer") + 21);
  EXPECT_TRUE(contains(out, "Hardware watchpoint 8: handled\n\nOld value = 0\nNew value = 1\n"));
  EXPECT_TRUE(contains(section(out, "handler"), fmt::format("= {:#x}", symbol("reverse_ud2"))));
  expect_one_complete_run(result);
}

// ---- going backward ----

TEST(GdbReverse, WatchAndReverseContinueStopAtTheLastWritesOfCounter) {
  REQUIRE_GDB_AND_KVM();
  std::vector<std::string> commands = {"break done",       "continue",         "watch counter",
                                       "reverse-continue", mark("corrupt"),    "x/i $pc",
                                       "print counter",    "reverse-continue", mark("loop"),
                                       "x/i $pc",          "print i",          "print counter"};
  finish_run(commands);
  const GdbSessionResult result = run_gdb_session(reverse_script(commands));
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  // corrupt()'s write, seen backward: gdb knew 999, the value before the write is 28.
  EXPECT_TRUE(contains(out, "Hardware watchpoint 2: counter\n\nOld value = 999\nNew value = 28\n"));
  EXPECT_TRUE(matches(out, R"((0x[0-9a-f]+ in )?corrupt \(\) at [^\n]*reverse_main\.c:[0-9]+\n)"
                           R"([0-9]+\s+counter = 999;)"));
  // Stopped before the writing instruction, with memory as it was there.
  const std::string at_corrupt = section(out, "corrupt");
  EXPECT_TRUE(matches(at_corrupt, R"(=> 0x[0-9a-f]+ <corrupt\+[0-9]+>:\s+movl\s+\$0x3e7,)"));
  EXPECT_TRUE(contains(at_corrupt, "$1 = 28"));
  // The loop's last write (i = 9: 25 -> 28), seen backward.
  EXPECT_TRUE(contains(out, "Hardware watchpoint 2: counter\n\nOld value = 28\nNew value = 25\n"));
  EXPECT_TRUE(matches(out, R"((0x[0-9a-f]+ in )?count_up \(\) at [^\n]*reverse_main\.c:[0-9]+\n)"
                           R"([0-9]+\s+counter = 3 \* i \+ 1;)"));
  const std::string in_loop = section(out, "loop");
  EXPECT_TRUE(
      matches(in_loop, R"(=> 0x[0-9a-f]+ <count_up\+[0-9]+>:\s+mov\s+%eax,[^\n]*<counter>)"));
  EXPECT_TRUE(contains(in_loop, "$2 = 9"));
  EXPECT_TRUE(contains(in_loop, "$3 = 25"));
  expect_one_complete_run(result);
}

TEST(GdbReverse, ReverseStepNextAndFinishFollowTheCallChain) {
  REQUIRE_GDB_AND_KVM();
  std::vector<std::string> commands = {
      "break add_scaled", "continue", "delete", "next", "next",
      // At `return sa + sb;`: back over the call scale(7), staying in add_scaled.
      mark("reverse-next"), "reverse-next",
      // From the start of `int sb = scale(b);`: back into scale(5) through its end.
      mark("reverse-step-in"), "reverse-step", "print x", "print scaled",
      // Back to where scale(5) was called.
      mark("reverse-finish"), "reverse-finish", "bt 1",
      // Forward into scale(5) again, then back out of it to the caller's line.
      mark("step"), "step", mark("reverse-step-out"), "reverse-step", "print a"};
  finish_run(commands);
  const GdbSessionResult result = run_gdb_session(reverse_script(commands));
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  const std::string line = R"([0-9]+\s+)";
  const std::string at_file = R"( at [^\n]*reverse_main\.c:[0-9]+\n)";
  const std::string in_caller = R"((0x[0-9a-f]+ in )?add_scaled \(a=5, b=7\))";
  // reverse-next: the start of the previous line, same frame, scale not entered.
  const std::string next = section(out, "reverse-next");
  EXPECT_TRUE(matches(next, "^" + line + R"(int sb = scale\(b\);)")) << next;
  EXPECT_FALSE(contains(next, "scale (x="));
  // reverse-step enters the function called on the previous line through its end: its last
  // statement or closing brace (gdb's own step-reverse.exp accepts either).
  const std::string in = section(out, "reverse-step-in");
  EXPECT_TRUE(matches(in, "^scale \\(x=5\\)" + at_file + line + R"((return scaled;|\}))")) << in;
  EXPECT_TRUE(contains(in, "$1 = 5"));
  EXPECT_TRUE(contains(in, "$2 = 16"));
  // reverse-finish: back to the call of scale(5) in add_scaled.
  const std::string finish = section(out, "reverse-finish");
  EXPECT_TRUE(matches(finish, in_caller + at_file + line + R"(int sa = scale\(a\);)")) << finish;
  EXPECT_TRUE(matches(finish, "#0  " + in_caller));
  EXPECT_TRUE(matches(section(out, "step"),
                      "^scale \\(x=5\\)" + at_file + line + R"(int scaled = x \* 3;)"));
  // reverse-step from a function's first line: out to the line that called it.
  const std::string step_out = section(out, "reverse-step-out");
  EXPECT_TRUE(matches(step_out, "^" + in_caller + at_file + line + R"(int sa = scale\(a\);)"))
      << step_out;
  EXPECT_TRUE(contains(step_out, "$3 = 5"));
  expect_one_complete_run(result);
}

// reverse-stepi undoes exactly one instruction (here across a call), and stepi redoes it: the
// registers at each point are the ones the forward run had there.
TEST(GdbReverse, ReverseStepiAndStepiReturnToTheSameRegisters) {
  REQUIRE_GDB_AND_KVM();
  constexpr int kForward = 4;  // from add_scaled's first line: mov, mov, call, push %rbp
  std::vector<std::string> commands = {"break add_scaled", "continue",     "delete",
                                       mark("f0"),         kInfoRegisters, kEndMark};
  for (int i = 1; i <= kForward; ++i) {
    commands.insert(commands.end(),
                    {"stepi", mark(fmt::format("f{}", i)), kInfoRegisters, kEndMark});
  }
  for (int i = kForward - 1; i >= 0; --i) {
    commands.insert(commands.end(),
                    {"reverse-stepi", mark(fmt::format("b{}", i)), kInfoRegisters, kEndMark});
  }
  for (int i = 1; i <= kForward; ++i) {
    commands.insert(commands.end(),
                    {"stepi", mark(fmt::format("g{}", i)), kInfoRegisters, kEndMark});
  }
  for (int round = 0; round < 3; ++round) {
    commands.insert(commands.end(),
                    {"reverse-stepi", mark(fmt::format("rb{}", round)), kInfoRegisters, kEndMark,
                     "stepi", mark(fmt::format("rf{}", round)), kInfoRegisters, kEndMark});
  }
  finish_run(commands);
  const GdbSessionResult result = run_gdb_session(reverse_script(commands));
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  std::vector<std::string> forward;
  for (int i = 0; i <= kForward; ++i) {
    forward.push_back(section(out, fmt::format("f{}", i)));
    ASSERT_TRUE(register_value(forward.back(), "rip").has_value()) << "f" << i;
    ASSERT_TRUE(register_value(forward.back(), "eflags").has_value()) << "f" << i;
  }
  // The call pushed a return address: rsp moved, so the states differ in more than rip.
  EXPECT_EQ(register_value(forward[3], "rip"), symbol("scale"));
  EXPECT_EQ(*register_value(forward[3], "rsp") + 8, *register_value(forward[2], "rsp"));
  for (int i = kForward - 1; i >= 0; --i) {
    EXPECT_EQ(section(out, fmt::format("b{}", i)), forward[i]) << "reverse-stepi to f" << i;
  }
  for (int i = 1; i <= kForward; ++i) {
    EXPECT_EQ(section(out, fmt::format("g{}", i)), forward[i]) << "stepi again to f" << i;
  }
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(section(out, fmt::format("rb{}", round)), forward[kForward - 1]) << round;
    EXPECT_EQ(section(out, fmt::format("rf{}", round)), forward[kForward]) << round;
  }
  expect_one_complete_run(result);
}

// `rep stosb` writes buffer[0..63] one byte per iteration: going backward, a watch on buffer[20]
// stops at the rep instruction before iteration 20, RCX and RDI as they were for it.
TEST(GdbReverse, WatchOnABufferByteStopsAtItsRepIteration) {
  REQUIRE_GDB_AND_KVM();
  std::vector<std::string> commands = {
      "break done",       "continue",         "watch buffer[20]",
      "reverse-continue", mark("rep"),        "info registers rip rcx rdi",
      "print buffer[19]", "print buffer[21]", "print after_buffer"};
  finish_run(commands);
  const GdbSessionResult result = run_gdb_session(reverse_script(commands));
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  EXPECT_TRUE(contains(out,
                       "Hardware watchpoint 2: buffer[20]\n\nOld value = 171 '\\253'\nNew "
                       "value = 0 '\\000'\n"));
  EXPECT_TRUE(matches(out, R"((0x[0-9a-f]+ in )?fill_buffer \(value=171 '\\253'\) at )"));
  const std::string rep = section(out, "rep");
  EXPECT_EQ(register_value(rep, "rip"), symbol("reverse_rep_stosb"));
  EXPECT_EQ(register_value(rep, "rcx"), 64u - 20u);
  EXPECT_EQ(register_value(rep, "rdi"), symbol("buffer") + 20);
  // Iterations 0-19 done, 20-63 not yet; the next global untouched.
  EXPECT_TRUE(contains(rep, "$1 = 171 '\\253'"));
  EXPECT_TRUE(contains(rep, "$2 = 0 '\\000'"));
  EXPECT_TRUE(contains(rep, "$3 = 0"));
  expect_one_complete_run(result);
}

// The #UD handler's write and its entry, reached backward: the handler's frame, with the saved
// RIP at the ud2.
TEST(GdbReverse, ReverseContinueReachesTheExceptionHandler) {
  REQUIRE_GDB_AND_KVM();
  std::vector<std::string> commands = {
      "break done",       "continue",    "watch handled",      "break on_invalid_opcode",
      "reverse-continue", mark("write"), "print/x frame->rip", "print handled",
      "reverse-continue", mark("entry"), "print/x frame->rip", "print/x frame->vector",
      "print handled"};
  finish_run(commands);
  const GdbSessionResult result = run_gdb_session(reverse_script(commands));
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  const std::string ud2 = fmt::format("{:#x}", symbol("reverse_ud2"));
  EXPECT_TRUE(contains(out, "Hardware watchpoint 2: handled\n\nOld value = 1\nNew value = 0\n"));
  EXPECT_TRUE(matches(out, R"((0x[0-9a-f]+ in )?on_invalid_opcode \(frame=0x[0-9a-f]+\) at )"
                           R"([^\n]*reverse_main\.c:[0-9]+\n[0-9]+\s+handled = handled \+ 1;)"));
  const std::string write = section(out, "write");
  EXPECT_TRUE(contains(write, "$1 = " + ud2));
  EXPECT_TRUE(contains(write, "$2 = 0"));
  EXPECT_TRUE(matches(out, R"(Breakpoint 3, on_invalid_opcode \(frame=0x[0-9a-f]+\) at )"));
  const std::string entry = section(out, "entry");
  EXPECT_TRUE(contains(entry, "$3 = " + ud2));
  EXPECT_TRUE(contains(entry, "$4 = 0x6"));  // #UD
  EXPECT_TRUE(contains(entry, "$5 = 0"));
  expect_one_complete_run(result);
}

// From a point in the past, continue replays to the present and runs on live: done() is reached
// again with the same state, and the serial lines between are not printed a second time.
TEST(GdbReverse, ContinueFromThePastReplaysWithoutPrintingTwice) {
  REQUIRE_GDB_AND_KVM();
  std::vector<std::string> commands = {
      "break done", "continue",    "watch counter", "reverse-continue", "delete 2",
      "continue",   mark("again"), "print counter", "print handled",    "print scaled_total"};
  finish_run(commands);
  const GdbSessionResult result = run_gdb_session(reverse_script(commands));
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  EXPECT_TRUE(contains(out, "Old value = 999\nNew value = 28\n"));
  EXPECT_EQ(count(out, "Breakpoint 1, done ()"), 2u);
  const std::string again = section(out, "again");
  EXPECT_TRUE(contains(again, "$1 = 999"));
  EXPECT_TRUE(contains(again, "$2 = 1"));
  EXPECT_TRUE(contains(again, "$3 = 38"));
  expect_one_complete_run(result);
}

// The count --stat shows for `event` ("drvm:   12 ...  mem:counter:w"), if any.
std::optional<std::uint64_t> stat_count(const std::string& log, const std::string& event) {
  std::smatch match;
  if (!std::regex_search(log, match, std::regex(R"(drvm: +([0-9]+) [^\n]* )" + event + "\n"))) {
    return std::nullopt;
  }
  return std::stoull(match[1]);
}

// A counting session counts what the guest did, once: reverse execution's replays (back to the
// last write and to the start of history, then forward through everything again) add nothing,
// and a trace line is not printed twice.
TEST(GdbReverse, EventCountsLeaveOutTheReplays) {
  REQUIRE_GDB_AND_KVM();
  const std::vector<std::string> session = {"--event", "mem:counter:w", "--stat", "--trace"};
  std::vector<std::string> argv = {DRVM_BINARY, "run", guest_image_path(kImage)};
  argv.insert(argv.end(), session.begin(), session.end());
  const ProcessResult plain = run_process(argv, {.timeout = std::chrono::seconds(120)});
  ASSERT_EQ(plain.exit_status, exit_port_status(kGuestSuccess)) << describe(plain);
  const std::optional<std::uint64_t> writes = stat_count(plain.stderr_text, "mem:counter:w");
  ASSERT_TRUE(writes.has_value()) << plain.stderr_text;
  EXPECT_GE(*writes, 11u);  // count_up()'s ten and corrupt()'s one

  std::vector<std::string> commands = {"break done",       "continue", "watch counter",
                                       "reverse-continue", "delete",   "reverse-continue",
                                       "continue"};
  finish_run(commands);
  GdbScript script = reverse_script(commands);
  script.drvm_args = session;
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(contains(result.gdb_output, "Old value = 999\nNew value = 28\n"));
  EXPECT_TRUE(contains(result.gdb_output, kNoMoreHistory));
  EXPECT_EQ(stat_count(result.drvm_log, "mem:counter:w"), writes) << result.drvm_log;
  EXPECT_EQ(count(result.drvm_log, "event=mem:counter:w"), *writes);
  expect_one_complete_run(result);
}

// Back to the start with nothing to stop at: gdb reports the end of the history, at the image's
// entry; continuing from there replays the whole run and it ends as usual.
TEST(GdbReverse, ReverseContinueWithNothingBeforeStopsAtTheStartOfHistory) {
  REQUIRE_GDB_AND_KVM();
  std::vector<std::string> commands = {"break corrupt",    "continue",    "delete",
                                       "reverse-continue", mark("start"), "info registers rip",
                                       "print counter"};
  finish_run(commands);
  const GdbSessionResult result = run_gdb_session(reverse_script(commands));
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  EXPECT_TRUE(contains(out, kNoMoreHistory));
  const std::string start = section(out, "start");
  EXPECT_EQ(register_value(start, "rip"), symbol("pvh_start32"));  // the PVH entry
  EXPECT_TRUE(contains(start, "$1 = 0"));
  expect_one_complete_run(result);
}

// `monitor history` counts what the recording keeps: one stop (with its snapshot) where gdb first
// saw the guest, one more per stop, the bytes growing with them; in the past it says so.
TEST(GdbReverse, MonitorHistoryCountsStopsSnapshotsAndBytes) {
  REQUIRE_GDB_AND_KVM();
  std::vector<std::string> commands = {
      mark("start"),   "monitor history", "break corrupt", "continue",
      mark("corrupt"), "monitor history", "watch counter", "reverse-continue",
      mark("past"),    "monitor history", kEndMark};
  finish_run(commands);
  const GdbSessionResult result = run_gdb_session(reverse_script(commands));
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  const auto bytes = [](const std::string& text) -> std::uint64_t {
    std::smatch match;
    if (!std::regex_search(text, match, std::regex(R"(\nbytes: ([0-9]+) \()"))) return 0;
    return std::stoull(match[1]);
  };
  const std::string start = section(out, "start");
  EXPECT_TRUE(contains(start,
                       "reverse execution: on\nstops: 1 recorded, 1 reachable\n"
                       "snapshots: 1\n"));
  EXPECT_TRUE(matches(start, R"(bytes: [0-9]+ \([0-9.]+ MiB\) of the 1024\.0 MiB budget, )"
                             R"(exit log [0-9]+ \([0-9]+ exits\))"));
  EXPECT_GT(bytes(start), 4096u);  // at least the image's pages
  const std::string at_corrupt = section(out, "corrupt");
  EXPECT_TRUE(matches(at_corrupt,
                      "reverse execution: on\nstops: 2 recorded, 2 reachable\n"
                      "snapshots: [12]\n"));
  EXPECT_GE(bytes(at_corrupt), bytes(start));
  const std::string past = section(out, "past");
  EXPECT_TRUE(matches(past,
                      "reverse execution: on \\(gdb stands in the past\\)\n"
                      "stops: 2 recorded, 2 reachable\nsnapshots: 2\n"));
  expect_one_complete_run(result);
}

// With --history 0 the session has no history, and `monitor history` says why.
TEST(GdbReverse, MonitorHistorySaysWhenReverseExecutionIsOff) {
  REQUIRE_GDB_AND_KVM();
  std::vector<std::string> commands = {mark("off"), "monitor history", kEndMark};
  finish_run(commands);
  GdbScript script = reverse_script(commands);
  script.drvm_args = {"--history", "0"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_EQ(section(result.gdb_output, "off"), "reverse execution: off (--history 0)\n");
  expect_one_complete_run(result);
}

// Two vCPUs cannot be replayed exactly: drvm refuses, says why, and the guest stays where it was.
TEST(GdbReverse, TwoVcpusRefuseReverseExecution) {
  REQUIRE_GDB_AND_KVM();
  std::vector<std::string> commands = {"break corrupt", "continue",         mark("before"),
                                       "print/x $pc",   "reverse-continue", mark("after"),
                                       "print/x $pc",   "print counter"};
  finish_run(commands);
  GdbScript script = reverse_script(commands);
  script.drvm_args = {"--cpus", "2"};
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  // gdb shows an error (a failure reply, or its own refusal) and drvm's reason names the vCPUs.
  EXPECT_TRUE(matches(out, R"((warning: Remote failure reply|[Ee]rror|not support|[Cc]annot))"));
  const std::regex vcpu_line("[^\n]*vCPU[^\n]*");
  std::string reason;
  for (const std::string* text : {&out, &result.drvm_log}) {
    std::smatch match;
    std::string rest = *text;
    while (std::regex_search(rest, match, vcpu_line)) {
      // Not gdb's thread names ("Thread 1 (vCPU 0)") nor its stop lines.
      if (!matches(match.str(), R"(Thread [0-9]+)")) reason = match.str();
      rest = match.suffix();
    }
  }
  EXPECT_FALSE(reason.empty()) << "no message from drvm that names the vCPUs";
  EXPECT_FALSE(contains(out, kNoMoreHistory));
  const std::string before = section(out, "before");
  const std::string after = section(out, "after");
  std::smatch pc_before, pc_after;
  ASSERT_TRUE(std::regex_search(before, pc_before, std::regex(R"(\$1 = (0x[0-9a-f]+))")));
  ASSERT_TRUE(std::regex_search(after, pc_after, std::regex(R"(\$2 = (0x[0-9a-f]+))")));
  EXPECT_EQ(pc_before[1].str(), pc_after[1].str());
  EXPECT_TRUE(contains(after, "$3 = 28"));
  expect_one_complete_run(result);
}

// A guest that its local APIC timer can interrupt cannot be replayed exactly (the interrupt's
// position is not reproducible): drvm refuses reverse execution and says why, and the session
// goes on forward.
TEST(GdbReverse, ATimerThatCanInterruptTheGuestRefusesReverseExecution) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.image = "timer";
  script.commands = {"break guest_lapic_timer_stop",
                     "continue",
                     mark("before"),
                     "print/x $pc",
                     "reverse-stepi",
                     mark("after"),
                     "print/x $pc",
                     "delete",
                     "continue"};
  script.gdb_timeout = std::chrono::seconds(240);
  script.drvm_timeout = std::chrono::seconds(60);
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  const std::string& out = result.gdb_output;
  EXPECT_TRUE(contains(out,
                       "reverse execution is refused: the guest can be interrupted (the "
                       "local APIC timer"));
  EXPECT_TRUE(contains(out, "warning: Remote failure reply"));
  std::smatch pc_before, pc_after;
  const std::string before = section(out, "before");
  const std::string after = section(out, "after");
  ASSERT_TRUE(std::regex_search(before, pc_before, std::regex(R"(\$1 = (0x[0-9a-f]+))")));
  ASSERT_TRUE(std::regex_search(after, pc_after, std::regex(R"(\$2 = (0x[0-9a-f]+))")));
  EXPECT_EQ(pc_before[1].str(), pc_after[1].str());
  EXPECT_TRUE(contains(result.serial, "timer.elf: PIT: 5 ticks"));
  EXPECT_EQ(result.drvm_status, exit_port_status(kGuestSuccess));
}

// Ctrl-C stops the guest anywhere; that position is found again by its registers and memory, so
// reverse-stepi goes one instruction back and stepi returns to exactly where Ctrl-C stopped.
TEST(GdbReverse, ReverseStepiAfterCtrlCReturnsToTheInterruptedState) {
  REQUIRE_GDB_AND_KVM();
  GdbScript script;
  script.image = "gdbwork";
  script.drvm_args = {"--cmdline", "spin"};
  script.commands = {
      "continue",     mark("now"), kInfoRegisters, "reverse-stepi", mark("back"),
      kInfoRegisters, "stepi",     mark("again"),  kInfoRegisters,  "set var spin_release = 1",
      "continue"};
  script.interrupt_when_serial_has = "gdbwork: spinning";
  script.gdb_timeout = std::chrono::seconds(240);
  const GdbSessionResult result = run_gdb_session(script);
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(result.interrupted);
  const std::string now = section(result.gdb_output, "now");
  const std::string back = section(result.gdb_output, "back");
  const std::string again = section(result.gdb_output, "again");
  ASSERT_TRUE(register_value(now, "rip").has_value());
  ASSERT_TRUE(register_value(back, "rip").has_value());
  EXPECT_NE(register_value(now, "rip"), register_value(back, "rip"));
  // The register lines only (gdb's location line after them differs with how it got there).
  const auto registers = [](const std::string& text) {
    std::string lines;
    const std::regex line(R"((^|\n)([a-z0-9]+ +0x[^\n]*))");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), line);
         it != std::sregex_iterator(); ++it) {
      lines += (*it)[2].str() + "\n";
    }
    return lines;
  };
  EXPECT_FALSE(registers(now).empty());
  EXPECT_EQ(registers(now), registers(again));
  EXPECT_FALSE(contains(result.gdb_output, "Remote failure reply"));
  EXPECT_TRUE(contains(result.gdb_output, "[Inferior 1 (Remote target) exited with code 03]"));
  EXPECT_EQ(result.drvm_status, exit_port_status(3));
}

// A recorded run (a CI failure, say) replayed under gdb: forwards to a breakpoint, backwards to
// the last write of a watched variable, forwards again to the end, with the recorded output once.
TEST(GdbReverse, ARecordingReplaysUnderGdbForwardsAndBackwards) {
  REQUIRE_GDB_AND_KVM();
  const std::string recording =
      testing::TempDir() + "reverse_" + std::to_string(::getpid()) + ".drvmrec";
  const ProcessResult recorded =
      run_process({DRVM_BINARY, "run", guest_image_path(kImage), "--recording", recording},
                  {.timeout = std::chrono::seconds(120)});
  ASSERT_EQ(recorded.exit_status, exit_port_status(kGuestSuccess)) << recorded.stderr_text;
  ASSERT_EQ(recorded.stdout_text, reverse_output(1));
  std::vector<std::string> commands = {"break done",       "continue",    "watch counter",
                                       "reverse-continue", mark("write"), "print counter"};
  finish_run(commands);
  GdbScript script = reverse_script(commands);
  script.replay_recording = recording;
  const GdbSessionResult result = run_gdb_session(script);
  ::unlink(recording.c_str());
  SCOPED_TRACE(result.describe());
  EXPECT_TRUE(contains(result.gdb_output,
                       "Hardware watchpoint 2: counter\n\nOld value = 999\nNew value = 28\n"));
  EXPECT_TRUE(contains(section(result.gdb_output, "write"), "$1 = 28"));
  EXPECT_EQ(result.drvm_log.find("left its recording"), std::string::npos);
  expect_one_complete_run(result);
}

// ---- seeded writes: gdb's answer against drvm's own trace of the same run ----

struct TraceHit {
  std::string event;
  std::uint64_t rip = 0;
  std::uint64_t count = 0;
};

// "rip=scribble+0xaf" or "rip=0x1001f3".
std::uint64_t trace_address(const std::string& text) {
  if (text.rfind("0x", 0) == 0) return std::stoull(text, nullptr, 16);
  const std::size_t plus = text.find('+');
  const std::uint64_t base = symbol(text.substr(0, plus).c_str());
  return plus == std::string::npos ? base : base + std::stoull(text.substr(plus + 1), nullptr, 16);
}

std::vector<TraceHit> trace_hits(const std::string& log) {
  std::vector<TraceHit> hits;
  const std::regex line(R"(drvm: trace: vcpu=0 rip=(\S+) .* event=(\S+) count=([0-9]+))");
  std::istringstream in(log);
  for (std::string text; std::getline(in, text);) {
    std::smatch match;
    if (!std::regex_search(text, match, line)) continue;
    hits.push_back({match[2], trace_address(match[1]), std::stoull(match[3])});
  }
  return hits;
}

// For each seed, scribble() writes scratch[] at random; `watch scratch[k]` + reverse-continue from
// done() must stop at the write `--trace` logs last for scratch[k] (its instruction and its step,
// current_step) with scratch[k]'s final value as gdb's "Old value".
TEST(GdbReverse, SeededWritesReverseContinueStopsAtTheLastTracedWrite) {
  REQUIRE_GDB_AND_KVM();
  for (const std::uint64_t seed : {3u, 11u, 29u}) {
    SCOPED_TRACE(fmt::format("seed {}", seed));
    const unsigned k = seed % 8;
    const std::string cmdline = fmt::format("seed={}", seed);
    const std::string step_event = "mem:current_step:w";
    const std::string element_event = fmt::format("mem:scratch+{}/4:w", 4 * k);
    const ProcessResult traced =
        run_process({DRVM_BINARY, "run", guest_image_path(kImage), "--cmdline", cmdline, "--event",
                     step_event, "--event", element_event, "--trace"},
                    {.timeout = std::chrono::seconds(120)});
    ASSERT_EQ(traced.exit_status, exit_port_status(kGuestSuccess)) << describe(traced);
    ASSERT_EQ(traced.stdout_text, reverse_output(seed));
    // The last write to scratch[k] in scribble() (after the first current_step write; the .bss
    // clear before guest_main writes it too), and the step it belongs to.
    std::optional<TraceHit> last;
    std::uint64_t step_count = 0, last_step_count = 0;
    for (const TraceHit& hit : trace_hits(traced.stderr_text)) {
      // By prefix: the trace may spell the spec in its own words (+0xc for +12).
      if (hit.event.rfind("mem:current_step", 0) == 0) step_count = hit.count;
      if (hit.event.rfind("mem:scratch", 0) == 0 && step_count > 0) {
        last = hit;
        last_step_count = step_count;
      }
    }
    ASSERT_TRUE(last.has_value()) << "seed " << seed << " never writes scratch[" << k << "]\n"
                                  << traced.stderr_text;
    std::smatch words;
    ASSERT_TRUE(std::regex_search(traced.stdout_text, words,
                                  std::regex("reverse: scratch((?: [0-9a-f]{8}){8})")));
    const std::uint64_t final_value = std::stoull(words[1].str().substr(1 + 9 * k, 8), nullptr, 16);

    std::vector<std::string> commands = {
        "break done",       "continue",   fmt::format("watch scratch[{}]", k),
        "reverse-continue", mark("stop"), "print current_step",
        "x/2i $pc"};
    finish_run(commands);
    GdbScript script = reverse_script(commands);
    script.drvm_args = {"--cmdline", cmdline};
    const GdbSessionResult result = run_gdb_session(script);
    SCOPED_TRACE(result.describe());
    EXPECT_TRUE(contains(result.gdb_output,
                         fmt::format("Hardware watchpoint 2: scratch[{}]\n\nOld value = {}\nNew "
                                     "value = ",
                                     k, final_value)));
    const std::string stop = section(result.gdb_output, "stop");
    EXPECT_TRUE(contains(stop, fmt::format("$1 = {}", last_step_count - 1)));
    // The trace's rip is past the writing instruction; gdb stops before it.
    std::smatch listed;
    ASSERT_TRUE(std::regex_search(stop, listed,
                                  std::regex(R"(=> 0x([0-9a-f]+) <scribble\+[0-9]+>:[^\n]*\n)"
                                             R"(\s+0x([0-9a-f]+) )")))
        << stop;
    EXPECT_EQ(std::stoull(listed[2], nullptr, 16), last->rip);
    expect_one_complete_run(result, seed);
  }
}

}  // namespace
}  // namespace drvm::test

// The session's flags as `drvm run` registers them: parsing through the CLI's CommandLine, the
// combinations refused, and the slot-count rule.
#include "vmm/session/session_options.hpp"

#include <gtest/gtest.h>

#include "cmdline/command_line.hpp"
#include "vmm/debug/debug_controller.hpp"

namespace drvm::vmm::session {
namespace {

SessionOptions parse(std::vector<std::string_view> args) {
  SessionOptions options;
  cmdline::CommandLine line("run");
  add_session_options(line, options);
  (void)line.parse(args);
  return options;
}

std::string finalize_error(std::vector<std::string_view> args) {
  SessionOptions options = parse(args);
  try {
    options.finalize();
  } catch (const OptionError& error) {
    return error.what();
  }
  return "accepted";
}

TEST(SessionOptions, EveryFlagParses) {
  const SessionOptions options =
      parse({"--event", "mem:a:w", "--event=mem:b", "--stat", "--json", "--stat-output", "s.json",
             "--trace", "--record", "r.jsonl", "--slots", "16"});
  EXPECT_EQ(options.events, (std::vector<std::string>{"mem:a:w", "mem:b"}));
  EXPECT_TRUE(options.stat);
  EXPECT_TRUE(options.json);
  EXPECT_EQ(options.stat_output, "s.json");
  EXPECT_TRUE(options.trace);
  EXPECT_EQ(options.record, "r.jsonl");
  EXPECT_EQ(options.slots, 16u);
  EXPECT_TRUE(options.active());
}

TEST(SessionOptions, SlotsRange) {
  EXPECT_EQ(parse_slots("4"), 4u);
  EXPECT_EQ(parse_slots("60"), 60u);
  // The host's slots: with the guest's 4 on top, 60 fill the 64 a vCPU can have.
  for (const char* bad : {"3", "61", "64", "0", "", "four", "8x", "-4"}) {
    EXPECT_THROW((void)parse_slots(bad), OptionError) << bad;
  }
  try {
    (void)parse({"--slots", "3"});
    FAIL();
  } catch (const cmdline::UsageError& error) {
    EXPECT_STREQ(
        error.what(),
        "run: --slots: '3' is not a host slot count from 4 to 60 (the guest's 4 come on top); "
        "give for example --slots 4 or --slots 16");
  }
}

TEST(SessionOptions, AnEventAloneImpliesStat) {
  SessionOptions options = parse({"--event", "mem:a"});
  options.finalize();
  EXPECT_TRUE(options.stat);
  SessionOptions traced = parse({"--event", "mem:a", "--trace"});
  traced.finalize();
  EXPECT_FALSE(traced.stat);
}

// `drvm run IMAGE --event X --json` (issue #14): --event implies --stat, so --json (and
// --stat-output) have a --stat to shape, with --trace too.
TEST(SessionOptions, JsonAndStatOutputImplyStat) {
  SessionOptions json = parse({"--event", "mem:a", "--json"});
  json.finalize();
  EXPECT_TRUE(json.stat);
  SessionOptions traced = parse({"--event", "mem:a", "--trace", "--stat-output", "f"});
  traced.finalize();
  EXPECT_TRUE(traced.stat);
  EXPECT_TRUE(traced.trace);
}

TEST(SessionOptions, CombinationsThatMeanNothingAreRefused) {
  EXPECT_EQ(finalize_error({"--stat"}),
            "--stat: there is nothing to count; add --event SPEC (for example --event "
            "mem:SYMBOL:w)");
  EXPECT_EQ(finalize_error({"--trace"}),
            "--trace: there is nothing to count; add --event SPEC (for example --event "
            "mem:SYMBOL:w)");
  EXPECT_EQ(finalize_error({"--record", "f"}),
            "--record: there is nothing to count; add --event SPEC (for example --event "
            "mem:SYMBOL:w)");
  EXPECT_EQ(finalize_error({"--json"}),
            "--json: there is nothing to count; add --event SPEC (for example --event "
            "mem:SYMBOL:w)");
  EXPECT_EQ(finalize_error({}), "accepted");
  EXPECT_EQ(finalize_error({"--slots", "8"}), "accepted");
}

TEST(SessionOptions, SlotRule) {
  // Without --slots the controller's default: the most host slots, with --event as with --gdb.
  EXPECT_EQ(parse({"--event", "mem:a"}).debug_slots(), std::nullopt);
  EXPECT_EQ(debug::DebugOptions{}.slots, kDefaultSlots);
  EXPECT_EQ(kDefaultSlots, 60u);
  EXPECT_EQ(parse({"--event", "mem:a", "--slots", "32"}).debug_slots(), 32u);
  EXPECT_EQ(parse({"--slots", "8"}).debug_slots(), 8u);
  EXPECT_EQ(parse({}).debug_slots(), std::nullopt);
}

}  // namespace
}  // namespace drvm::vmm::session

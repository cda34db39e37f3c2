// Fixed-seed randomized fuzzing of the packet decoder and the whole session (decoder, acks,
// command dispatcher, run control) with random and mutated inputs. The stub must never throw or
// crash, and whatever it sends must be well-framed packets within the announced size.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gdbstub/hex.hpp"
#include "gdbstub/packet.hpp"
#include "session_harness.hpp"

namespace drvm::gdbstub::testing {
namespace {

constexpr std::size_t kMaxPacket = 0x4000;

// Valid packets of every kind gdb sends, as seeds for mutation.
const std::vector<std::string>& corpus() {
  static const std::vector<std::string> packets = {
      "qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+",
      "QStartNoAckMode",
      "qXfer:features:read:target.xml:0,100",
      "qXfer:features:read:64bit-core.xml:100,200",
      "qXfer:features:read:drvm-debugregs.xml:600,ffff",
      "?",
      "g",
      "G" + std::string(32, '0'),
      "p10",
      "p36",
      "P10=0000010000000000",
      "m10000,40",
      "m11ff0,40",
      "m12000,4",
      "M10000,4:01020304",
      "X10010,4:ab}]*c",
      "X10010,0:",
      "Z0,10000,1",
      "z0,10000,1",
      "Z1,10008,1",
      "Z2,10020,4",
      "Z3,10020,8",
      "Z4,10020,2",
      "z4,10020,2",
      "Z2,dead0,8",
      "c",
      "s",
      "C05",
      "S05;10004",
      "vCont?",
      "vCont;c",
      "vCont;s:1;c",
      "vCont;s:2",
      "vCont;S05:p1.2;C05",
      "bc",
      "bs",
      "Hg1",
      "Hg2",
      "Hc-1",
      "Hg0",
      "T1",
      "T2",
      "qC",
      "qfThreadInfo",
      "qsThreadInfo",
      "qThreadExtraInfo,1",
      "qAttached",
      "qRcmd," + encode_hex_text("dr"),
      "qOffsets",
      "vMustReplyEmpty",
      "D",
      "k",
  };
  return packets;
}

std::string random_bytes(std::mt19937_64& rng, std::size_t max_length) {
  static constexpr std::string_view kAlphabet =
      "$#+-*}\x03"
      "0123456789abcdefxXmMgGpPzZcsvC;:,.=?qQHT";
  std::uniform_int_distribution<std::size_t> length(0, max_length);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> pick(0, kAlphabet.size() - 1);
  std::string out(length(rng), '\0');
  for (char& c : out) {
    c = (rng() % 4 == 0) ? static_cast<char>(byte(rng)) : kAlphabet[pick(rng)];
  }
  return out;
}

std::string mutate(std::mt19937_64& rng, std::string payload) {
  const int mutations = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < mutations; ++i) {
    const std::size_t at = payload.empty() ? 0 : rng() % payload.size();
    switch (rng() % 6) {
      case 0:
        if (!payload.empty()) payload[at] = static_cast<char>(rng());
        break;
      case 1:
        payload.insert(at, random_bytes(rng, 8));
        break;
      case 2:
        if (!payload.empty()) payload.erase(at, 1 + rng() % 4);
        break;
      case 3:
        payload.resize(at);
        break;
      case 4:
        payload.insert(at, std::string(rng() % 64, payload.empty() ? 'f' : payload[at]));
        break;
      case 5:
        payload += corpus()[rng() % corpus().size()];
        break;
    }
  }
  return payload;
}

// Frames with a correct checksum most of the time so mutations reach the dispatcher.
std::string frame_for_fuzz(std::mt19937_64& rng, const std::string& payload) {
  std::string framed = "$" + payload + "#";
  const std::uint8_t sum = packet_checksum(payload);
  framed += fmt::format("{:02x}", rng() % 8 == 0 ? static_cast<std::uint8_t>(sum + 1) : sum);
  if (rng() % 16 == 0) framed.resize(rng() % (framed.size() + 1));  // cut off mid-packet
  return framed;
}

// Every byte the stub sends must decode into acks and good packets within PacketSize.
void expect_well_formed(std::string_view output) {
  PacketDecoder decoder(kMaxPacket);
  std::vector<PacketEvent> events;
  decoder.feed(output, events);
  for (const PacketEvent& event : events) {
    ASSERT_TRUE(event.type == PacketEvent::Type::kPacket || event.type == PacketEvent::Type::kAck ||
                event.type == PacketEvent::Type::kNack)
        << "stub sent a bad frame: " << output;
  }
}

TEST(GdbStubFuzz, PacketDecoderSurvivesRandomStreams) {
  for (std::uint64_t seed : {1u, 2u, 3u, 4u}) {
    std::mt19937_64 rng(seed);
    PacketDecoder decoder(256);
    std::vector<PacketEvent> events;
    for (int i = 0; i < 5000; ++i) {
      std::string input = rng() % 2
                              ? random_bytes(rng, 96)
                              : frame_for_fuzz(rng, mutate(rng, corpus()[rng() % corpus().size()]));
      decoder.feed(input, events);
      for (const PacketEvent& event : events) ASSERT_LE(event.payload.size(), 256u);
      events.clear();
    }
  }
}

// Four seeds of 25,000 inputs each (100,000 in all), separate tests so CTest runs them in parallel.
class GdbStubSessionFuzz : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(GdbStubSessionFuzz, SurvivesRandomAndMutatedInputs) {
  constexpr int kInputsPerSeed = 25000;
  std::mt19937_64 rng(GetParam());
  // Even seeds have a target that runs backwards (bc/bs start runs), odd ones refuse them.
  const bool can_reverse = GetParam() % 2 == 0;
  auto new_harness = [can_reverse] {
    auto harness = std::make_unique<SessionHarness>();
    harness->target.set_can_reverse(can_reverse);
    harness->start();
    return harness;
  };
  auto harness = new_harness();
  int answered = 0;
  for (int i = 0; i < kInputsPerSeed; ++i) {
    if (harness->session().finished()) harness = new_harness();
    std::string input;
    switch (rng() % 5) {
      case 0:
        input = random_bytes(rng, 64);
        break;
      case 1:
        input = frame_packet(corpus()[rng() % corpus().size()]);
        break;
      case 2:
        input = "\x03";
        break;
      default:
        input = frame_for_fuzz(rng, mutate(rng, corpus()[rng() % corpus().size()]));
        break;
    }
    std::string output;
    ASSERT_NO_THROW(output = harness->send_raw(input)) << "input " << i;
    expect_well_formed(output);
    if (::testing::Test::HasFatalFailure()) return;
    if (output.find('$') != std::string::npos) ++answered;
  }
  // Most inputs must get through to the command dispatcher, not die in the framing.
  EXPECT_GT(answered, kInputsPerSeed / 3);
}

INSTANTIATE_TEST_SUITE_P(FixedSeeds, GdbStubSessionFuzz, ::testing::Values(11u, 22u, 33u, 44u));

}  // namespace
}  // namespace drvm::gdbstub::testing

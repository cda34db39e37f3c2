#include "gdbstub/packet.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gdbstub/hex.hpp"

namespace drvm::gdbstub {
namespace {

using Type = PacketEvent::Type;

std::string fmt_checksum(std::string_view raw) {
  return fmt::format("{:02x}", packet_checksum(raw));
}

std::vector<PacketEvent> decode(std::string_view bytes, std::size_t max = 64) {
  PacketDecoder decoder(max);
  std::vector<PacketEvent> events;
  decoder.feed(bytes, events);
  return events;
}

TEST(PacketChecksum, IsSumOfPayloadBytesModulo256) {
  EXPECT_EQ(packet_checksum(""), 0);
  EXPECT_EQ(packet_checksum("OK"), 0x9a);
  EXPECT_EQ(packet_checksum(std::string(3, '\xff')), 0xfd);
}

TEST(PacketFrame, FramesPayloadWithChecksum) {
  EXPECT_EQ(frame_packet("OK"), "$OK#9a");
  EXPECT_EQ(frame_packet(""), "$#00");
}

TEST(PacketFrame, RunLengthEncodesLongRuns) {
  EXPECT_EQ(frame_packet("0000"), "$0* #" + fmt_checksum("0* "));
  // 3 repeats would cost as much as they save.
  EXPECT_EQ(frame_packet("000"), "$000#" + fmt_checksum("000"));
}

TEST(PacketFrame, RunLengthNeverUsesHashOrDollarAsCount) {
  for (std::size_t length = 1; length < 400; ++length) {
    const std::string payload(length, 'a');
    const std::string framed = frame_packet(payload);
    const std::string_view body = std::string_view(framed).substr(1, framed.size() - 4);
    EXPECT_EQ(body.find('#'), std::string_view::npos) << length;
    EXPECT_EQ(body.find('$'), std::string_view::npos) << length;
    const auto events = decode(framed, 1000);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, Type::kPacket);
    EXPECT_EQ(events[0].payload, payload) << length;
  }
}

TEST(PacketDecoder, DecodesPacketAcksAndInterrupt) {
  const auto events = decode("+$OK#9a-\x03");
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].type, Type::kAck);
  EXPECT_EQ(events[1], (PacketEvent{Type::kPacket, "OK"}));
  EXPECT_EQ(events[2].type, Type::kNack);
  EXPECT_EQ(events[3].type, Type::kInterrupt);
}

TEST(PacketDecoder, AcceptsUppercaseChecksumDigits) {
  const auto events = decode("$" + std::string("m0,1") + "#" + "FB");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, packet_checksum("m0,1") == 0xfb ? Type::kPacket : Type::kBadChecksum);
}

TEST(PacketDecoder, ReassemblesPacketSplitAcrossFeeds) {
  PacketDecoder decoder(64);
  std::vector<PacketEvent> events;
  const std::string framed = frame_packet("qSupported:swbreak+");
  for (char c : framed) decoder.feed(std::string_view(&c, 1), events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (PacketEvent{Type::kPacket, "qSupported:swbreak+"}));
}

TEST(PacketDecoder, ReportsBadChecksum) {
  const auto events = decode("$OK#00");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Type::kBadChecksum);
}

TEST(PacketDecoder, NonHexChecksumIsBadChecksum) {
  const auto events = decode("$OK#zz");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Type::kBadChecksum);
}

TEST(PacketDecoder, InterruptByteInsidePacketIsData) {
  const std::string payload = std::string("X0,1:") + '\x03';
  const auto events = decode(frame_packet(payload));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (PacketEvent{Type::kPacket, payload}));
}

TEST(PacketDecoder, DollarInsidePacketRestartsIt) {
  const auto events = decode("$garbage$OK#9a");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (PacketEvent{Type::kPacket, "OK"}));
}

TEST(PacketDecoder, IgnoresNoiseBetweenPackets) {
  const auto events = decode("hello\r\n$OK#9a");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Type::kPacket);
}

TEST(PacketDecoder, UnescapesBinaryData) {
  // '}' escapes: "}\x03" is '#', "}\x04" is '$', "}]" is '}', "}\x0a" is '*'.
  const std::string raw = std::string("X}\x03}\x04}]}\x0a");
  const std::string framed = "$" + raw + "#" + fmt_checksum(raw);
  const auto events = decode(framed);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (PacketEvent{Type::kPacket, "X#$}*"}));
}

TEST(PacketDecoder, ExpandsRunLengthEncoding) {
  const std::string raw = "a* b";  // ' ' = 32 = 3 more copies
  const auto events = decode("$" + raw + "#" + fmt_checksum(raw));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (PacketEvent{Type::kPacket, "aaaab"}));
}

TEST(PacketDecoder, RejectsMalformedRunLengthAndEscapes) {
  for (std::string raw :
       {std::string("*a"), std::string("a*"), std::string("a*\x01"), std::string("abc}")}) {
    const auto events = decode("$" + raw + "#" + fmt_checksum(raw));
    ASSERT_EQ(events.size(), 1u) << raw;
    EXPECT_EQ(events[0].type, Type::kMalformed) << raw;
  }
}

TEST(PacketDecoder, OversizedPacketIsDroppedWithBoundedMemory) {
  PacketDecoder decoder(16);
  std::vector<PacketEvent> events;
  const std::string payload(1 << 20, 'A');
  decoder.feed("$", events);
  for (std::size_t at = 0; at < payload.size(); at += 4096) {
    decoder.feed(std::string_view(payload).substr(at, 4096), events);
  }
  decoder.feed("#" + fmt_checksum(payload), events);
  decoder.feed(frame_packet("OK"), events);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, Type::kOversized);
  EXPECT_TRUE(events[0].payload.empty());
  EXPECT_EQ(events[1], (PacketEvent{Type::kPacket, "OK"}));
}

TEST(PacketDecoder, RunLengthExpansionBeyondLimitIsOversized) {
  const std::string raw = "a*~a*~";  // 2 + 2 * 97 bytes
  const auto events = decode("$" + raw + "#" + fmt_checksum(raw), 64);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Type::kOversized);
}

TEST(PacketEscape, EscapesExactlyTheSpecialBytes) {
  std::vector<std::uint8_t> all(256);
  for (int i = 0; i < 256; ++i) all[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  std::string escaped;
  append_escaped_binary(escaped, all);
  EXPECT_EQ(escaped.size(), 256u + 4u);
  std::string decoded;
  ASSERT_EQ(decode_payload(escaped, 1000, decoded), DecodeResult::kOk);
  EXPECT_EQ(decoded, std::string(all.begin(), all.end()));
}

TEST(Hex, ParsesNumbersAndRejectsGarbage) {
  EXPECT_EQ(parse_hex_number("ffffffffffffffff"), 0xffffffffffffffffull);
  EXPECT_EQ(parse_hex_number("1A"), 0x1au);
  EXPECT_FALSE(parse_hex_number(""));
  EXPECT_FALSE(parse_hex_number("10000000000000000"));
  EXPECT_FALSE(parse_hex_number("12g"));
  EXPECT_EQ(decode_hex_bytes("00ff7f"), (std::vector<std::uint8_t>{0, 0xff, 0x7f}));
  EXPECT_FALSE(decode_hex_bytes("0"));
  EXPECT_FALSE(decode_hex_bytes("zz"));
  EXPECT_EQ(encode_hex_text("OK\n"), "4f4b0a");
}

}  // namespace
}  // namespace drvm::gdbstub

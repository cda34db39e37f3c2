#include "gdbstub/packet.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "gdbstub/hex.hpp"

namespace drvm::gdbstub {
namespace {

constexpr char kEscape = '}';
constexpr char kRunLength = '*';
constexpr char kInterruptByte = '\x03';
// A repeat count is sent as the printable character 29 + count.
constexpr int kRunCountBias = 29;
constexpr int kMinRepeat = 3;   // shorter runs are not worth the two extra characters
constexpr int kMaxRepeat = 97;  // '~'

bool needs_escape(std::uint8_t byte) {
  return byte == '#' || byte == '$' || byte == '}' || byte == '*';
}

}  // namespace

PacketDecoder::PacketDecoder(std::size_t max_payload) : max_payload_(max_payload) {}

void PacketDecoder::feed(std::string_view bytes, std::vector<PacketEvent>& events) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    switch (state_) {
      case State::kIdle:
        if (c == '$') {
          state_ = State::kPayload;
          raw_.clear();
          sum_ = 0;
          overflowed_ = false;
        } else if (c == '+') {
          events.push_back({PacketEvent::Type::kAck, {}});
        } else if (c == '-') {
          events.push_back({PacketEvent::Type::kNack, {}});
        } else if (c == kInterruptByte) {
          events.push_back({PacketEvent::Type::kInterrupt, {}});
        }
        // Anything else between packets is line noise and dropped.
        break;
      case State::kPayload: {
        // Take the whole run of payload bytes up to the next '#' or '$' at once.
        const std::size_t end = std::min(bytes.find_first_of("#$", i), bytes.size());
        const std::string_view run = bytes.substr(i, end - i);
        sum_ = static_cast<std::uint8_t>(sum_ + packet_checksum(run));
        const std::size_t room = max_payload_ - raw_.size();
        raw_.append(run.substr(0, room));
        if (run.size() > room) overflowed_ = true;
        i = end;
        if (end == bytes.size()) break;
        if (bytes[end] == '#') {
          state_ = State::kChecksumHigh;
        } else {
          // A fresh '$': the previous packet was cut off, resynchronise on this one.
          raw_.clear();
          sum_ = 0;
          overflowed_ = false;
        }
        break;
      }
      case State::kChecksumHigh:
        checksum_high_ = c;
        state_ = State::kChecksumLow;
        break;
      case State::kChecksumLow:
        state_ = State::kIdle;
        finish_packet(c, events);
        break;
    }
  }
}

void PacketDecoder::finish_packet(char checksum_low, std::vector<PacketEvent>& events) {
  const char digits[2] = {checksum_high_, checksum_low};
  const auto sent = parse_hex_number(std::string_view(digits, 2));
  const bool checksum_ok = sent && *sent == sum_;
  PacketEvent event{PacketEvent::Type::kPacket, {}};
  if (overflowed_) {
    event.type = checksum_ok ? PacketEvent::Type::kOversized : PacketEvent::Type::kBadChecksum;
  } else {
    switch (decode_payload(raw_, max_payload_, event.payload)) {
      case DecodeResult::kOk:
        break;
      case DecodeResult::kMalformed:
        event.type = PacketEvent::Type::kMalformed;
        event.payload.clear();
        break;
      case DecodeResult::kTooLong:
        event.type = PacketEvent::Type::kOversized;
        event.payload.clear();
        break;
    }
    if (!checksum_ok) event.type = PacketEvent::Type::kBadChecksum;
  }
  raw_.clear();
  events.push_back(std::move(event));
}

DecodeResult decode_payload(std::string_view raw, std::size_t max_size, std::string& out) {
  // Run-length expansion first (it works on the characters as sent), then unescaping.
  std::string expanded;
  expanded.reserve(std::min(raw.size(), max_size));
  for (std::size_t at = 0; at < raw.size();) {
    const std::size_t star = std::min(raw.find(kRunLength, at), raw.size());
    if (expanded.size() + (star - at) > max_size) return DecodeResult::kTooLong;
    expanded.append(raw.substr(at, star - at));
    if (star == raw.size()) break;
    if (expanded.empty() || star + 1 >= raw.size()) return DecodeResult::kMalformed;
    const int count_char = static_cast<unsigned char>(raw[star + 1]);
    if (count_char < ' ' || count_char > '~') return DecodeResult::kMalformed;
    const std::size_t repeat = static_cast<std::size_t>(count_char - kRunCountBias);
    if (expanded.size() + repeat > max_size) return DecodeResult::kTooLong;
    expanded.append(repeat, expanded.back());
    at = star + 2;
  }
  out.clear();
  out.reserve(expanded.size());
  const std::string_view text = expanded;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t escape = std::min(text.find(kEscape, at), text.size());
    out.append(text.substr(at, escape - at));
    if (escape == text.size()) break;
    if (escape + 1 >= text.size()) return DecodeResult::kMalformed;
    out.push_back(static_cast<char>(text[escape + 1] ^ 0x20));
    at = escape + 2;
  }
  return DecodeResult::kOk;
}

void append_escaped_binary(std::string& out, std::span<const std::uint8_t> bytes) {
  for (std::uint8_t byte : bytes) {
    if (needs_escape(byte)) {
      out.push_back(kEscape);
      out.push_back(static_cast<char>(byte ^ 0x20));
    } else {
      out.push_back(static_cast<char>(byte));
    }
  }
}

std::uint8_t packet_checksum(std::string_view raw) {
  std::uint8_t sum = 0;
  for (char c : raw) sum = static_cast<std::uint8_t>(sum + static_cast<std::uint8_t>(c));
  return sum;
}

std::string frame_packet(std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 4);
  out.push_back('$');
  std::size_t literal_start = 0;  // characters not yet copied
  for (std::size_t i = 0; i < payload.size();) {
    std::size_t run = 1;
    while (i + run < payload.size() && payload[i + run] == payload[i]) ++run;
    // A long run becomes several "c*n" groups; a short remainder stays literal.
    for (std::size_t at = i, left = run; left > 0;) {
      int repeat = static_cast<int>(std::min<std::size_t>(left - 1, kMaxRepeat));
      // Counts 6 and 7 would be sent as '#' and '$', which end or start a packet.
      if (repeat == 6 || repeat == 7) repeat = 5;
      if (repeat < kMinRepeat) break;
      out.append(payload.substr(literal_start, at + 1 - literal_start));
      out.push_back(kRunLength);
      out.push_back(static_cast<char>(repeat + kRunCountBias));
      at += 1 + static_cast<std::size_t>(repeat);
      left -= 1 + static_cast<std::size_t>(repeat);
      literal_start = at;
    }
    i += run;
  }
  out.append(payload.substr(literal_start));
  const std::uint8_t sum = packet_checksum(std::string_view(out).substr(1));
  out += fmt::format("#{:02x}", sum);
  return out;
}

}  // namespace drvm::gdbstub

#pragma once
// The remote protocol's framing, with no I/O: `$payload#cs` packets, acks, Ctrl-C, escapes and
// run-length encoding. Incoming bytes are decoded incrementally so a packet may arrive in any
// number of pieces; memory stays bounded whatever the peer sends.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace drvm::gdbstub {

struct PacketEvent {
  enum class Type {
    kPacket,       // a complete packet with a good checksum; payload is decoded
    kAck,          // '+'
    kNack,         // '-': the peer wants the last packet again
    kInterrupt,    // 0x03 outside a packet (Ctrl-C)
    kBadChecksum,  // a complete packet whose checksum does not match; payload is decoded if it can
                   // be
    kOversized,    // a packet longer than the limit (checksum good); payload dropped
    kMalformed,    // a packet with a bad escape or run-length sequence (checksum good)
  };
  Type type;
  std::string payload;
  friend bool operator==(const PacketEvent&, const PacketEvent&) = default;
};

class PacketDecoder {
 public:
  // max_payload bounds both the raw bytes between '$' and '#' and the decoded payload.
  explicit PacketDecoder(std::size_t max_payload);

  // Appends one event per complete item in bytes; partial packets are kept for the next call.
  void feed(std::string_view bytes, std::vector<PacketEvent>& events);

 private:
  enum class State { kIdle, kPayload, kChecksumHigh, kChecksumLow };
  void finish_packet(char checksum_low, std::vector<PacketEvent>& events);

  std::size_t max_payload_;
  State state_ = State::kIdle;
  std::string raw_;
  std::uint8_t sum_ = 0;
  bool overflowed_ = false;
  char checksum_high_ = 0;
};

enum class DecodeResult { kOk, kMalformed, kTooLong };

// Expands run-length encoding ("c*n": n - 29 more copies of c), then removes binary escapes
// ("}x" = x ^ 0x20). The result is never longer than max_size.
DecodeResult decode_payload(std::string_view raw, std::size_t max_size, std::string& out);

// Escapes the bytes a binary payload cannot carry raw: '#', '$', '}' and '*'.
void append_escaped_binary(std::string& out, std::span<const std::uint8_t> bytes);

std::uint8_t packet_checksum(std::string_view raw);

// `$payload#cs`, the payload run-length encoded where that makes it shorter.
std::string frame_packet(std::string_view payload);

}  // namespace drvm::gdbstub

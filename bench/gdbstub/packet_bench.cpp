// How fast the stub frames and parses the packets that dominate bulk transfers: memory read
// replies (hex, often run-length encoded) and binary X writes.

#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "gdbstub/hex.hpp"
#include "gdbstub/packet.hpp"

namespace drvm::gdbstub {
namespace {

constexpr std::size_t kPacketSize = 0x4000;

std::vector<std::uint8_t> random_memory(std::size_t size) {
  std::mt19937 rng(7);
  std::vector<std::uint8_t> bytes(size);
  for (auto& byte : bytes) byte = static_cast<std::uint8_t>(rng());
  return bytes;
}

// One 'm' reply: 8 KiB of guest memory as hex, framed (random contents: no runs to compress).
void BM_FrameMemoryReplyRandom(benchmark::State& state) {
  const std::string hex = encode_hex_bytes(random_memory(8 * 1024 - 8));
  for (auto _ : state) benchmark::DoNotOptimize(frame_packet(hex));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * hex.size()));
}
BENCHMARK(BM_FrameMemoryReplyRandom);

// The same for zeroed memory, where run-length encoding shrinks the reply.
void BM_FrameMemoryReplyZeros(benchmark::State& state) {
  const std::string hex(2 * (8 * 1024 - 8), '0');
  for (auto _ : state) benchmark::DoNotOptimize(frame_packet(hex));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * hex.size()));
}
BENCHMARK(BM_FrameMemoryReplyZeros);

// Parsing a full-size binary X packet as gdb sends it (escaped, fed in 4 KiB socket reads).
void BM_DecodeBinaryWrite(benchmark::State& state) {
  std::string payload = "X10000,3f00:";
  append_escaped_binary(payload, random_memory(0x3f00 - 0x100));
  const std::string framed = frame_packet(payload);
  PacketDecoder decoder(kPacketSize);
  std::vector<PacketEvent> events;
  for (auto _ : state) {
    for (std::size_t at = 0; at < framed.size(); at += 4096) {
      decoder.feed(std::string_view(framed).substr(at, 4096), events);
    }
    benchmark::DoNotOptimize(events.data());
    events.clear();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * framed.size()));
}
BENCHMARK(BM_DecodeBinaryWrite);

// A small command packet, the common case of every round trip (stepi, breakpoint hit).
void BM_DecodeSmallPacket(benchmark::State& state) {
  const std::string framed = frame_packet("vCont;s:1;c");
  PacketDecoder decoder(kPacketSize);
  std::vector<PacketEvent> events;
  for (auto _ : state) {
    decoder.feed(framed, events);
    benchmark::DoNotOptimize(events.data());
    events.clear();
  }
}
BENCHMARK(BM_DecodeSmallPacket);

}  // namespace
}  // namespace drvm::gdbstub

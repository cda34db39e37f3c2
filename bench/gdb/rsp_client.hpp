// A minimal GDB Remote Serial Protocol client for the stub benchmarks: what gdb puts on the wire
// for stepi, a breakpoint hit and a memory read, without gdb's own processing time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace drvm::bench {

class RspClient {
 public:
  // Connects to 127.0.0.1:port, retrying for up to `timeout_ms` while the stub starts; then
  // negotiates qSupported and no-ack mode. Throws std::runtime_error on failure.
  RspClient(std::uint16_t port, int timeout_ms);
  ~RspClient();
  RspClient(const RspClient&) = delete;
  RspClient& operator=(const RspClient&) = delete;

  // Sends one packet and returns the reply's payload (run-length encoding expanded).
  std::string request(std::string_view payload);
  // Sends one packet and returns its final reply, with the console output (`O` packets) that came
  // before it decoded into `console` (for qRcmd, and a refused `bc`/`bs`).
  std::string request(std::string_view payload, std::string& console);
  // `monitor COMMAND` (qRcmd): the text the stub printed. Throws unless the stub ends with OK.
  std::string monitor(std::string_view command);
  // The stub's PacketSize from qSupported.
  std::size_t packet_size() const { return packet_size_; }

 private:
  void send(std::string_view payload);
  std::string receive();

  int fd_ = -1;
  bool ack_mode_ = true;
  std::size_t packet_size_ = 0x400;
  std::string buffer_;
};

// "00ff10" <-> bytes.
std::string to_hex(std::string_view bytes);
std::string from_hex(std::string_view hex);

}  // namespace drvm::bench

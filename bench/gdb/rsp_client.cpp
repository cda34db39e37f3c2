#include "rsp_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace drvm::bench {
namespace {

std::string frame(std::string_view payload) {
  unsigned sum = 0;
  for (const char c : payload) sum += static_cast<unsigned char>(c);
  return fmt::format("${}#{:02x}", payload, sum & 0xff);
}

}  // namespace

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

std::string from_hex(std::string_view hex) {
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

RspClient::RspClient(std::uint16_t port, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  while (true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) break;
    ::close(fd_);
    fd_ = -1;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(fmt::format("cannot connect to 127.0.0.1:{}", port));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const std::string features = request("qSupported:swbreak+;hwbreak+;vContSupported+");
  if (const auto at = features.find("PacketSize="); at != std::string::npos) {
    packet_size_ = std::stoul(features.substr(at + 11), nullptr, 16);
  }
  if (features.find("QStartNoAckMode+") != std::string::npos &&
      request("QStartNoAckMode") == "OK") {
    ack_mode_ = false;
  }
}

RspClient::~RspClient() {
  if (fd_ >= 0) ::close(fd_);
}

std::string RspClient::request(std::string_view payload) {
  send(payload);
  return receive();
}

std::string RspClient::request(std::string_view payload, std::string& console) {
  send(payload);
  while (true) {
    std::string reply = receive();
    // "O" + hex is console output; "OK" is not (K is no hex digit).
    if (reply.size() > 1 && reply[0] == 'O' && reply != "OK") {
      console += from_hex(std::string_view(reply).substr(1));
      continue;
    }
    return reply;
  }
}

std::string RspClient::monitor(std::string_view command) {
  std::string console;
  const std::string reply = request("qRcmd," + to_hex(command), console);
  if (reply != "OK") {
    throw std::runtime_error(
        fmt::format("monitor {}: got '{}' after '{}'", command, reply, console));
  }
  return console;
}

void RspClient::send(std::string_view payload) {
  const std::string packet = frame(payload);
  std::size_t done = 0;
  while (done < packet.size()) {
    const ssize_t n = ::send(fd_, packet.data() + done, packet.size() - done, MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("the stub closed the connection");
    done += static_cast<std::size_t>(n);
  }
}

std::string RspClient::receive() {
  while (true) {
    const auto start = buffer_.find('$');
    if (start != std::string::npos) {
      const auto hash = buffer_.find('#', start);
      if (hash != std::string::npos && hash + 2 < buffer_.size()) {
        const std::string raw = buffer_.substr(start + 1, hash - start - 1);
        buffer_.erase(0, hash + 3);
        if (ack_mode_) ::send(fd_, "+", 1, MSG_NOSIGNAL);
        std::string payload;  // expand run-length encoding: X*n repeats X n-29 more times
        for (std::size_t i = 0; i < raw.size(); ++i) {
          if (raw[i] == '*' && !payload.empty() && i + 1 < raw.size()) {
            payload.append(static_cast<std::size_t>(raw[i + 1] - 29), payload.back());
            ++i;
          } else {
            payload += raw[i];
          }
        }
        return payload;
      }
    }
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) throw std::runtime_error("the stub closed the connection");
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

}  // namespace drvm::bench

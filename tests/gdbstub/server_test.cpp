// GdbServer over real loopback TCP: every exchange has a bounded timeout.

#include "gdbstub/gdb_server.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fake_target.hpp"
#include "gdbstub/packet.hpp"

namespace drvm::gdbstub::testing {
namespace {

using namespace std::chrono_literals;
constexpr auto kTimeout = 5s;

// A minimal blocking RSP client on a raw socket.
class TestClient {
 public:
  explicit TestClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~TestClient() { close(); }

  bool connected() const { return connected_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent <= 0) return;
      bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
  }
  void send_packet(std::string_view payload) { send(frame_packet(payload)); }

  // Next item from the stub: a packet payload, "+"/"-" for acks; nullopt on timeout or close.
  std::optional<PacketEvent> next(std::chrono::milliseconds timeout = kTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (!events_.empty()) {
        PacketEvent event = std::move(events_.front());
        events_.erase(events_.begin());
        return event;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !fill(static_cast<int>(left.count()))) return std::nullopt;
    }
  }

  // The next packet's payload, skipping acks; "<timeout>" if none.
  std::string packet(std::chrono::milliseconds timeout = kTimeout) {
    for (;;) {
      const auto event = next(timeout);
      if (!event) return "<timeout>";
      if (event->type == PacketEvent::Type::kPacket) return event->payload;
    }
  }

  std::string request(std::string_view payload) {
    send_packet(payload);
    return packet();
  }

  // True once the stub closed the connection (within the timeout).
  bool closed_by_peer(std::chrono::milliseconds timeout = kTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (peer_closed_) return true;
      fill(50);
    }
    return peer_closed_;
  }

  const std::string& received() const { return received_; }

  // Sends without blocking; returns false once the stub stops taking bytes (socket full).
  bool try_send(std::string_view bytes) {
    const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    return sent == static_cast<ssize_t>(bytes.size());
  }

 private:
  bool fill(int timeout_ms) {
    pollfd descriptor{fd_, POLLIN, 0};
    if (::poll(&descriptor, 1, timeout_ms) <= 0) return false;
    char buffer[65536];
    const ssize_t size = ::recv(fd_, buffer, sizeof buffer, 0);
    if (size <= 0) {
      peer_closed_ = true;
      return false;
    }
    received_.append(buffer, static_cast<std::size_t>(size));
    decoder_.feed(std::string_view(buffer, static_cast<std::size_t>(size)), events_);
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool peer_closed_ = false;
  PacketDecoder decoder_{1 << 20};
  std::vector<PacketEvent> events_;
  std::string received_;
};

class GdbServerTest : public ::testing::Test {
 protected:
  GdbServerTest() {
    target.set_deliver_from_thread(true);
    ServerOptions options;
    options.log = [this](std::string_view line) {
      std::lock_guard lock(mutex_);
      logs_.emplace_back(line);
    };
    options.refuse_timeout_ms = 3000;
    server.emplace(target, options);
  }

  bool logged(std::string_view fragment) {
    std::lock_guard lock(mutex_);
    for (const std::string& line : logs_) {
      if (line.find(fragment) != std::string::npos) return true;
    }
    return false;
  }

  template <typename Predicate>
  static bool eventually(Predicate predicate) {
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (predicate()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return predicate();
  }

  // Declared first so they outlive the server, whose thread may still log while it stops.
  std::mutex mutex_;
  std::vector<std::string> logs_;
  FakeTarget target;
  std::optional<GdbServer> server;
};

TEST_F(GdbServerTest, AnswersPacketsWithAcks) {
  TestClient client(server->port());
  ASSERT_TRUE(client.connected());
  client.send("+");
  client.send_packet("qSupported:swbreak+;hwbreak+");
  const auto ack = client.next();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->type, PacketEvent::Type::kAck);
  EXPECT_EQ(client.packet().substr(0, 15), "PacketSize=4000");
  client.send("+");
  EXPECT_EQ(client.request("?"), "T05thread:1;");
  EXPECT_EQ(target.attach_count(), 1);
  EXPECT_TRUE(logged("gdb attached from 127.0.0.1:"));
}

TEST_F(GdbServerTest, SurvivesMalformedBadChecksumOversizedAndUnknownPackets) {
  TestClient client(server->port());
  client.send("$qC#00");
  auto nack = client.next();
  ASSERT_TRUE(nack);
  EXPECT_EQ(nack->type, PacketEvent::Type::kNack);
  client.send("$" + std::string(1 << 20, 'A') + "#01");  // oversized and a bad checksum
  nack = client.next();
  ASSERT_TRUE(nack);
  EXPECT_EQ(nack->type, PacketEvent::Type::kNack);
  const std::string big(1 << 20, 'm');
  client.send(fmt::format("${}#{:02x}", big, packet_checksum(big)));
  EXPECT_EQ(client.packet(), "E07");
  client.send("$*#2a");
  EXPECT_EQ(client.packet(), "E16");
  EXPECT_EQ(client.request("qNoSuchThing"), "");
  client.send(std::string("\x00\xff garbage \r\n", 14));
  EXPECT_EQ(client.request("qC"), "QC1");
}

TEST_F(GdbServerTest, ClientVanishingMidPacketKeepsTheTargetStoppedForANewClient) {
  {
    TestClient client(server->port());
    EXPECT_EQ(client.request("?"), "T05thread:1;");
    client.send("$m10000,");
  }
  EXPECT_TRUE(eventually([&] { return target.disconnect_count() == 1; }));
  EXPECT_EQ(target.detach_count(), 0);  // a detach would let the guest run on
  EXPECT_FALSE(target.running());
  EXPECT_TRUE(target.last_disconnect_had_packets());
  TestClient next(server->port());
  EXPECT_EQ(next.request("qC"), "QC1");
  EXPECT_EQ(target.attach_count(), 2);
}

// A script probing the port (connect, close, no packet), any number of times: the guest stays
// where it is and the stub accepts every next connection, as QEMU's does.
TEST_F(GdbServerTest, ConnectionsClosingWithoutAPacketLeaveTheTargetHeldAndTheStubListening) {
  for (int probe = 1; probe <= 5; ++probe) {
    {
      TestClient client(server->port());
      ASSERT_TRUE(client.connected()) << "probe " << probe;
    }
    EXPECT_TRUE(eventually([&] { return target.disconnect_count() == probe; })) << probe;
  }
  EXPECT_EQ(target.detach_count(), 0);
  EXPECT_TRUE(target.resumes().empty());
  // The target hears that nothing was sent: a running guest that attach() stopped runs on.
  EXPECT_FALSE(target.last_disconnect_had_packets());
  TestClient gdb(server->port());
  EXPECT_EQ(gdb.request("?"), "T05thread:1;");
  EXPECT_EQ(gdb.request("D"), "OK");
  EXPECT_EQ(target.detach_count(), 1);
}

TEST_F(GdbServerTest, ClientVanishingMidRunRemovesItsBreakpoints) {
  {
    TestClient client(server->port());
    EXPECT_EQ(client.request(fmt::format("Z2,{:x},4", FakeTarget::kMemoryBase)), "OK");
    client.send_packet("vCont;c");
    ASSERT_TRUE(eventually([&] { return target.running(); }));
  }
  EXPECT_TRUE(eventually([&] { return target.disconnect_count() == 1; }));
  EXPECT_EQ(target.detach_count(), 0);
  EXPECT_TRUE(target.breakpoints().empty());
  EXPECT_TRUE(logged("gdb disconnected"));
}

TEST_F(GdbServerTest, CtrlCInterruptsARunningTarget) {
  TestClient client(server->port());
  EXPECT_EQ(client.request("?"), "T05thread:1;");
  client.send_packet("c");
  ASSERT_TRUE(eventually([&] { return target.running(); }));
  client.send("\x03");
  EXPECT_EQ(client.packet(), "T02thread:1;");
  EXPECT_EQ(target.interrupt_count(), 1);
}

TEST_F(GdbServerTest, StopFromAnotherThreadReachesTheClient) {
  TestClient client(server->port());
  client.send("+");
  EXPECT_EQ(client.request("QStartNoAckMode"), "OK");
  target.script_stop({StopEvent{StopReason::kTrap, 2, TrapCause::kAccessWatchpoint, 0x10040}});
  client.send_packet("vCont;c");
  EXPECT_EQ(client.packet(), "T05awatch:10040;thread:2;");
  client.send_packet("qC");
  const auto reply = client.next();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->payload, "QC2");  // no ack first in no-ack mode
}

TEST_F(GdbServerTest, SecondClientIsRefusedWithAMessage) {
  TestClient first(server->port());
  EXPECT_EQ(first.request("qC"), "QC1");
  TestClient second(server->port());
  ASSERT_TRUE(second.connected());
  second.send("+");
  second.send_packet("qSupported");
  const std::string reply = second.packet();
  EXPECT_EQ(reply.substr(0, 2), "E.");
  EXPECT_NE(reply.find("another gdb is already attached"), std::string::npos);
  EXPECT_TRUE(second.closed_by_peer());
  EXPECT_TRUE(logged("refused gdb from 127.0.0.1"));
  EXPECT_EQ(target.attach_count(), 1);
  EXPECT_EQ(first.request("qC"), "QC1");
}

TEST_F(GdbServerTest, SilentSecondClientIsDroppedAfterTheTimeout) {
  TestClient first(server->port());
  EXPECT_EQ(first.request("qC"), "QC1");
  TestClient second(server->port());
  EXPECT_TRUE(second.closed_by_peer(6000ms));
  EXPECT_EQ(first.request("qC"), "QC1");
}

TEST_F(GdbServerTest, DetachClosesTheConnectionAndTheNextClientAttaches) {
  TestClient client(server->port());
  EXPECT_EQ(client.request("D"), "OK");
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_EQ(target.detach_count(), 1);
  TestClient next(server->port());
  EXPECT_EQ(next.request("?"), "T05thread:1;");
}

TEST_F(GdbServerTest, KillClosesTheConnection) {
  TestClient client(server->port());
  client.send_packet("k");
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_EQ(target.kill_count(), 1);
}

TEST_F(GdbServerTest, StoppingTheServerDetachesTheClient) {
  TestClient client(server->port());
  EXPECT_EQ(client.request("qC"), "QC1");
  server.reset();
  EXPECT_EQ(target.detach_count(), 1);
  EXPECT_TRUE(client.closed_by_peer());
}

TEST_F(GdbServerTest, ClientThatNeverReadsCannotGrowTheStubsBuffers) {
  TestClient client(server->port());
  client.send("+");
  EXPECT_EQ(client.request("QStartNoAckMode"), "OK");
  const std::string request = frame_packet(fmt::format("m{:x},400", FakeTarget::kMemoryBase));
  // Without back-pressure the stub would read (and answer into memory) forever; with it, the
  // socket fills and stays full.
  std::size_t sent = 0;
  constexpr std::size_t kGiveUp = 64u << 20;
  bool blocked = false;
  while (!blocked && sent * request.size() < kGiveUp) {
    if (client.try_send(request)) {
      ++sent;
      continue;
    }
    std::this_thread::sleep_for(200ms);
    blocked = !client.try_send(request);
    if (!blocked) ++sent;
  }
  EXPECT_TRUE(blocked);
  // The stub is still serving: the replies come in order once the client reads.
  for (int i = 0; i < 100; ++i) ASSERT_EQ(client.packet().size(), 0x800u);
  client.close();
  EXPECT_TRUE(eventually([&] { return target.disconnect_count() == 1; }));
}

TEST_F(GdbServerTest, PortInUseIsAOneLineError) {
  ServerOptions options;
  options.port = server->port();
  try {
    GdbServer second(target, options);
    FAIL() << "a second server bound the same port";
  } catch (const GdbServerError& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find(fmt::format("cannot listen on 127.0.0.1:{}: ", server->port())), 0u)
        << message;
    EXPECT_EQ(message.find('\n'), std::string::npos);
  }
}

TEST(GdbServerSetup, UnresolvableHostIsAnError) {
  FakeTarget target;
  ServerOptions options;
  options.host = "no-such-host.invalid";
  EXPECT_THROW(GdbServer(target, options), GdbServerError);
}

}  // namespace
}  // namespace drvm::gdbstub::testing

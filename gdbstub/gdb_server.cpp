#include "gdbstub/gdb_server.hpp"

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "gdbstub/packet.hpp"

namespace drvm::gdbstub {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Logger = std::function<void(std::string_view)>;

constexpr std::size_t kReadChunk = 16 * 1024;
// Replies waiting for a client that does not read; beyond this the stub stops reading requests.
constexpr std::size_t kMaxUnsentOutput = 1024 * 1024;

std::string describe(const tcp::socket& socket) {
  boost::system::error_code error;
  const tcp::endpoint peer = socket.remote_endpoint(error);
  return error ? std::string("unknown peer")
               : fmt::format("{}:{}", peer.address().to_string(), peer.port());
}

// Lets stop handlers post into the io_context from any thread, and turns a post after the
// server is gone into a no-op instead of a use-after-free.
class PostGate {
 public:
  explicit PostGate(asio::io_context& io) : io_(&io) {}
  void post(std::function<void()> task) {
    std::lock_guard lock(mutex_);
    if (io_ != nullptr) asio::post(*io_, std::move(task));
  }
  void close() {
    std::lock_guard lock(mutex_);
    io_ = nullptr;
  }

 private:
  std::mutex mutex_;
  asio::io_context* io_;
};

// The attached gdb: socket I/O around a StubSession.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, DebugTarget& target, std::shared_ptr<PostGate> gate, Logger log,
             SessionOptions options)
      : socket_(std::move(socket)),
        target_(target),
        gate_(std::move(gate)),
        log_(std::move(log)),
        options_(options) {}

  void start() {
    std::weak_ptr<Connection> weak = weak_from_this();
    auto scheduler = [gate = gate_, weak](std::function<void()> task) {
      gate->post([weak, task = std::move(task)] {
        task();
        if (auto self = weak.lock()) self->flush();
      });
    };
    session_.emplace(target_, std::move(scheduler), log_, options_);
    session_->start();
    flush();
    read();
  }

  bool open() const { return socket_.is_open(); }

  // Server shutdown: the target runs on, the client is dropped.
  void close() { close(false); }

 private:
  // client_vanished: the client hung up or the connection broke: the target keeps its run state
  // (a held guest stays held for the next client). Otherwise the server detaches it.
  void close(bool client_vanished) {
    if (session_) {
      if (client_vanished) {
        session_->disconnect();
      } else {
        session_->detach();
      }
    }
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  void read() {
    socket_.async_read_some(
        asio::buffer(buffer_),
        [self = shared_from_this()](const boost::system::error_code& error, std::size_t size) {
          self->on_read(error, size);
        });
  }

  void on_read(const boost::system::error_code& error, std::size_t size) {
    if (error) {
      if (socket_.is_open() && !session_->finished()) {
        log_(
            fmt::format("gdb disconnected ({}); the guest keeps its state and the stub waits "
                        "for the next gdb",
                        error.message()));
      }
      close(true);
      return;
    }
    session_->receive(std::string_view(buffer_.data(), size));
    flush();
    read_unless_backlogged();
  }

  // A client that sends requests but never reads the replies only fills its own socket.
  void read_unless_backlogged() {
    if (session_->finished() || !socket_.is_open()) return;
    read_paused_ = pending_.size() + in_flight_.size() > kMaxUnsentOutput;
    if (!read_paused_) read();
  }

  void flush() {
    if (!session_) return;
    pending_ += session_->take_output();
    if (writing_) return;
    if (pending_.empty()) {
      // Detached or killed and everything is written: hang up.
      if (session_->finished() && socket_.is_open()) {
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
      }
      return;
    }
    if (!socket_.is_open()) {
      pending_.clear();
      return;
    }
    writing_ = true;
    in_flight_ = std::exchange(pending_, {});
    asio::async_write(
        socket_, asio::buffer(in_flight_),
        [self = shared_from_this()](const boost::system::error_code& error, std::size_t) {
          self->writing_ = false;
          self->in_flight_.clear();
          if (error) {
            self->close(true);
            return;
          }
          self->flush();
          if (self->read_paused_) self->read_unless_backlogged();
        });
  }

  tcp::socket socket_;
  DebugTarget& target_;
  std::shared_ptr<PostGate> gate_;
  Logger log_;
  SessionOptions options_;
  std::optional<StubSession> session_;
  std::array<char, kReadChunk> buffer_{};
  std::string pending_;
  std::string in_flight_;
  bool writing_ = false;
  bool read_paused_ = false;  // waiting for the client to read its replies
};

// A client that arrived while another gdb is attached: it gets "E.<reason>" as the reply to its
// first packet (gdb prints it as a warning) and is then disconnected.
class Refusal : public std::enable_shared_from_this<Refusal> {
 public:
  Refusal(tcp::socket socket, std::chrono::milliseconds timeout)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), decoder_(kReadChunk) {
    timer_.expires_after(timeout);
  }

  void start() {
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
      if (!error) self->close();
    });
    read();
  }

  void close() {
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
  }

 private:
  void read() {
    socket_.async_read_some(
        asio::buffer(buffer_),
        [self = shared_from_this()](const boost::system::error_code& error, std::size_t size) {
          if (error) {
            self->close();
            return;
          }
          std::vector<PacketEvent> events;
          self->decoder_.feed(std::string_view(self->buffer_.data(), size), events);
          for (const PacketEvent& event : events) {
            if (event.type == PacketEvent::Type::kPacket) {
              self->refuse();
              return;
            }
          }
          self->read();
        });
  }

  void refuse() {
    message_ = "+" + frame_packet(
                         "E.drvm: another gdb is already attached to this guest; "
                         "detach it first");
    asio::async_write(socket_, asio::buffer(message_),
                      [self = shared_from_this()](const boost::system::error_code&, std::size_t) {
                        boost::system::error_code ignored;
                        self->socket_.shutdown(tcp::socket::shutdown_both, ignored);
                        self->close();
                      });
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  PacketDecoder decoder_;
  std::array<char, 4096> buffer_{};
  std::string message_;
};

tcp::endpoint resolve_endpoint(asio::io_context& io, const std::string& host, std::uint16_t port) {
  boost::system::error_code error;
  const auto address = asio::ip::make_address(host, error);
  if (!error) return tcp::endpoint(address, port);
  tcp::resolver resolver(io);
  const auto results = resolver.resolve(host, std::to_string(port), error);
  if (error || results.empty()) {
    throw GdbServerError(fmt::format("cannot listen on {}:{}: cannot resolve host: {}", host, port,
                                     error ? error.message() : "no address"));
  }
  return results.begin()->endpoint();
}

}  // namespace

class GdbServer::Impl {
 public:
  Impl(DebugTarget& target, ServerOptions options)
      : target_(target),
        options_(std::move(options)),
        acceptor_(io_),
        gate_(std::make_shared<PostGate>(io_)) {
    if (!options_.log) {
      options_.log = [](std::string_view line) {
        std::fprintf(stderr, "drvm: gdb: %.*s\n", static_cast<int>(line.size()), line.data());
      };
    }
    const tcp::endpoint endpoint = resolve_endpoint(io_, options_.host, options_.port);
    boost::system::error_code error;
    acceptor_.open(endpoint.protocol(), error);
    if (!error) acceptor_.set_option(tcp::acceptor::reuse_address(true), error);
    if (!error) acceptor_.bind(endpoint, error);
    if (!error) acceptor_.listen(asio::socket_base::max_listen_connections, error);
    if (error) {
      throw GdbServerError(
          fmt::format("cannot listen on {}:{}: {}", options_.host, options_.port, error.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { run(); });
  }

  ~Impl() {
    stop();
    if (thread_.joinable()) thread_.join();
    gate_->close();
  }

  std::uint16_t port() const { return port_; }

  void stop() {
    if (stopping_.exchange(true)) return;
    asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      if (auto connection = active_.lock()) connection->close();
      for (auto& weak : refusals_) {
        if (auto refusal = weak.lock()) refusal->close();
      }
    });
    if (std::this_thread::get_id() != thread_.get_id() && thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& exception) {
        // A handler must never take the server down; report and keep serving.
        options_.log(fmt::format("internal error: {}", exception.what()));
      }
    }
  }

  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& error, tcp::socket socket) {
      if (error) {
        if (acceptor_.is_open()) accept();
        return;
      }
      on_accept(std::move(socket));
      accept();
    });
  }

  void on_accept(tcp::socket socket) {
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    const std::string peer = describe(socket);
    if (auto connection = active_.lock(); connection && connection->open()) {
      options_.log(fmt::format("refused gdb from {}: another gdb is already attached", peer));
      auto refusal = std::make_shared<Refusal>(
          std::move(socket), std::chrono::milliseconds(options_.refuse_timeout_ms));
      std::erase_if(refusals_, [](const auto& weak) { return weak.expired(); });
      refusals_.push_back(refusal);
      refusal->start();
      return;
    }
    options_.log(fmt::format("gdb attached from {}", peer));
    auto connection = std::make_shared<Connection>(std::move(socket), target_, gate_, options_.log,
                                                   options_.session);
    active_ = connection;
    connection->start();
  }

  DebugTarget& target_;
  ServerOptions options_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::shared_ptr<PostGate> gate_;
  std::weak_ptr<Connection> active_;
  std::vector<std::weak_ptr<Refusal>> refusals_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

GdbServer::GdbServer(DebugTarget& target, ServerOptions options)
    : impl_(std::make_unique<Impl>(target, std::move(options))) {}

GdbServer::~GdbServer() = default;

std::uint16_t GdbServer::port() const {
  return impl_->port();
}

void GdbServer::stop() {
  impl_->stop();
}

}  // namespace drvm::gdbstub

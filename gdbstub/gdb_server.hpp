#pragma once
// The gdb remote stub's TCP server: listens on HOST:PORT, serves one gdb at a time with a
// StubSession, refuses a second one with a message, and runs everything on its own thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "gdbstub/debug_target.hpp"
#include "gdbstub/stub_session.hpp"

namespace drvm::gdbstub {

// Listening failed (port in use, bad host). what() is one line: "cannot listen on H:P: cause".
class GdbServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port (see GdbServer::port())
  SessionOptions session;
  // One line per event worth telling the user (connections, refused clients, rejected packets).
  // Default: stderr, prefixed "drvm: gdb: ".
  std::function<void(std::string_view)> log;
  // A refused second client gets this long to send its first packet (to receive the reason).
  unsigned refuse_timeout_ms = 2000;
};

class GdbServer {
 public:
  // Binds and listens before returning (throws GdbServerError), then serves on its own thread.
  GdbServer(DebugTarget& target, ServerOptions options);
  // Stops serving: a connected gdb is detached (the target runs on) and disconnected.
  ~GdbServer();
  GdbServer(const GdbServer&) = delete;
  GdbServer& operator=(const GdbServer&) = delete;

  std::uint16_t port() const;
  // Same as the destructor, callable earlier. From the server's own thread (inside a DebugTarget
  // call) it only starts the shutdown; the destructor then waits for it.
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drvm::gdbstub

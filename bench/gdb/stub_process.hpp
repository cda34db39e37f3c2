// A gdb stub in a child process (drvm run/replay --gdb 0, or QEMU's -gdb) with an RspClient
// connected to it; killed when destroyed. The benchmarks of bench/gdb share it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rsp_client.hpp"

namespace drvm::bench {

class StubProcess {
 public:
  // args[0] is looked up on PATH; stdin and stdout are /dev/null, stderr goes to a log file.
  // port: where the stub listens, or nullopt to read it from drvm's "listening on HOST:PORT"
  // line. Throws std::runtime_error when the child cannot start or never listens.
  StubProcess(std::vector<std::string> args, std::optional<std::uint16_t> port,
              int reply_timeout_ms);
  ~StubProcess();
  StubProcess(const StubProcess&) = delete;
  StubProcess& operator=(const StubProcess&) = delete;

  RspClient& client() { return *client_; }
  // What the child wrote to stderr so far.
  std::string log() const;

 private:
  std::uint16_t wait_for_drvm_port() const;

  pid_t pid_ = -1;
  std::string log_;
  std::unique_ptr<RspClient> client_;
};

}  // namespace drvm::bench

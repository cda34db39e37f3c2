#include "stub_process.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace drvm::bench {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

StubProcess::StubProcess(std::vector<std::string> args, std::optional<std::uint16_t> port,
                         int reply_timeout_ms) {
  static std::atomic<int> counter{0};
  log_ = fmt::format("/tmp/drvm_bench_stub_{}_{}.log", ::getpid(), counter++);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int error = posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) throw std::runtime_error(fmt::format("cannot start {}", args[0]));
  client_ = std::make_unique<RspClient>(port ? *port : wait_for_drvm_port(), reply_timeout_ms);
}

StubProcess::~StubProcess() {
  client_.reset();
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  ::unlink(log_.c_str());
}

std::string StubProcess::log() const {
  return slurp(log_);
}

std::uint16_t StubProcess::wait_for_drvm_port() const {
  const std::regex pattern("listening on [^\\s]+:([0-9]+)");
  for (int i = 0; i < 6000; ++i) {
    std::smatch match;
    const std::string text = slurp(log_);
    if (std::regex_search(text, match, pattern)) {
      return static_cast<std::uint16_t>(std::stoul(match[1]));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("drvm did not print its gdb port: " + slurp(log_));
}

}  // namespace drvm::bench

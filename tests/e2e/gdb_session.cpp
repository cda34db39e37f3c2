#include "gdb_session.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <filesystem>
#include <fstream>
// GCC 12 reports false maybe-uninitialized warnings inside <regex> at -O2 with the sanitizers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop
#include <sstream>
#include <thread>

#include "guest_images.hpp"
#include "process.hpp"

extern char** environ;

namespace drvm::test {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(10);

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string temp_path(const std::string& stem) {
  static std::atomic<int> counter{0};
  return (std::filesystem::temp_directory_path() /
          fmt::format("drvm_e2e_{}_{}_{}", ::getpid(), counter++, stem))
      .string();
}

// stdin from /dev/null; stdout to out_path; stderr to err_path (or with stdout when equal).
pid_t spawn(const std::vector<std::string>& args, const std::string& out_path,
            const std::string& err_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  if (err_path == out_path) {
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  } else {
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
  }
  std::vector<std::string> storage = args;
  std::vector<char*> argv;
  for (std::string& arg : storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// Waits for `pid` until the deadline; the exit status, or nothing (still running or signalled).
std::optional<int> wait_until(pid_t pid, Clock::time_point deadline, bool& exited) {
  while (true) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      exited = true;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return std::nullopt;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPoll);
  }
}

// Polls a file until it contains `text`; false when the deadline passed or `pid` exited first.
bool wait_for_text(const std::string& path, const std::string& text, pid_t pid,
                   Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    if (slurp(path).find(text) != std::string::npos) return true;
    siginfo_t info{};  // exited? (WNOWAIT: leave it for wait_until to reap)
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid) {
      return slurp(path).find(text) != std::string::npos;
    }
    std::this_thread::sleep_for(kPoll);
  }
  return false;
}

// Connects to the stub and closes at once, as a port scanner or a readiness check does.
bool probe_port(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return connected;
}

// Runs one gdb against the port until it ends (or the deadline), with the script's Ctrl-C.
void run_gdb(const GdbScript& script, const std::string& image, const std::string& port,
             const std::vector<std::string>& commands, const std::string& serial_path,
             const std::string& output_path, GdbSessionResult& result) {
  std::vector<std::string> gdb_args{"gdb",
                                    "-nx",
                                    "-batch",
                                    "-ex",
                                    "set remotetimeout 10",
                                    "-ex",
                                    "file " + image,
                                    "-ex",
                                    "target remote 127.0.0.1:" + port};
  for (const std::string& command : commands) {
    gdb_args.push_back("-ex");
    gdb_args.push_back(command);
  }
  const pid_t gdb = spawn(gdb_args, output_path, output_path);
  const auto gdb_deadline = Clock::now() + script.gdb_timeout;
  bool gdb_exited = false;
  while (gdb >= 0 && !gdb_exited && Clock::now() < gdb_deadline) {
    if (script.interrupt_when_serial_has && !result.interrupted &&
        slurp(serial_path).find(*script.interrupt_when_serial_has) != std::string::npos) {
      // gdb sent `continue` before the guest could print this; give the guest a moment to
      // reach its loop, then press Ctrl-C.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      ::kill(gdb, SIGINT);
      result.interrupted = true;
    }
    wait_until(gdb, Clock::now() + std::chrono::milliseconds(50), gdb_exited);
  }
  if (gdb >= 0 && !gdb_exited) {
    result.gdb_timed_out = true;
    ::kill(gdb, SIGKILL);
    ::waitpid(gdb, nullptr, 0);
  }
}

}  // namespace

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool matches(const std::string& text, const std::string& pattern) {
  return std::regex_search(text, std::regex(pattern));
}

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) {
    ++n;
  }
  return n;
}

bool kvm_usable() {
  const int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

bool gdb_available() {
  return find_in_path("gdb").has_value();
}

std::string GdbSessionResult::describe() const {
  return fmt::format(
      "drvm status: {}{}{}\n--- gdb ---\n{}\n--- second gdb ---\n{}\n--- serial ---\n{}\n--- "
      "drvm stderr ---\n{}",
      drvm_status ? std::to_string(*drvm_status) : "killed",
      gdb_timed_out ? " (gdb timed out)" : "", interrupted ? " (SIGINT sent to gdb)" : "",
      gdb_output, second_gdb_output, serial, drvm_log);
}

GdbSessionResult run_gdb_session(const GdbScript& script) {
  GdbSessionResult result;
  const std::string image = guest_image_path(script.image);
  const std::string serial_path = temp_path("serial");
  const std::string log_path = temp_path("stderr");
  const std::string gdb_path = temp_path("gdb");
  const std::string second_gdb_path = temp_path("gdb2");

  std::vector<std::string> drvm_args =
      script.replay_recording
          ? std::vector<std::string>{DRVM_BINARY, "replay", *script.replay_recording, "--gdb", "0"}
          : std::vector<std::string>{DRVM_BINARY, "run", image, "--gdb", "0"};
  drvm_args.insert(drvm_args.end(), script.drvm_args.begin(), script.drvm_args.end());
  const pid_t drvm = spawn(drvm_args, serial_path, log_path);
  if (drvm < 0) {
    result.drvm_log = "cannot start " DRVM_BINARY;
    return result;
  }

  bool drvm_exited = false;
  const auto startup_deadline = Clock::now() + std::chrono::seconds(10);
  const bool listening = wait_for_text(log_path, "listening on ", drvm, startup_deadline);
  std::smatch match;
  const std::string log = slurp(log_path);
  const std::regex port_pattern("listening on [^\\s]+:([0-9]+)");
  if (listening && std::regex_search(log, match, port_pattern)) {
    const std::string port = match[1];
    bool ready = true;
    if (script.attach_when_serial_has) {
      ready = wait_for_text(serial_path, *script.attach_when_serial_has, drvm, startup_deadline);
    }
    for (int probe = 0; ready && probe < script.probes_before_gdb; ++probe) {
      ready = probe_port(std::stoi(port));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (ready) {
      run_gdb(script, image, port, script.commands, serial_path, gdb_path, result);
      if (script.second_gdb_commands) {
        run_gdb(script, image, port, *script.second_gdb_commands, serial_path, second_gdb_path,
                result);
      }
    }
  }
  result.drvm_status = wait_until(drvm, Clock::now() + script.drvm_timeout, drvm_exited);
  if (!drvm_exited) {
    ::kill(drvm, SIGKILL);
    ::waitpid(drvm, nullptr, 0);
  }
  result.gdb_output = slurp(gdb_path);
  result.second_gdb_output = slurp(second_gdb_path);
  result.serial = slurp(serial_path);
  result.drvm_log = slurp(log_path);
  for (const std::string& path : {serial_path, log_path, gdb_path, second_gdb_path}) {
    ::unlink(path.c_str());
  }
  return result;
}

}  // namespace drvm::test

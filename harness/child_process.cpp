#include "harness/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>

extern char** environ;

namespace drvm::harness {
namespace {

using Clock = std::chrono::steady_clock;

// After the child is gone, its output is drained for at most this long: a grandchild that kept
// the pipes open must not hold the harness.
constexpr auto kDrainAfterExit = std::chrono::milliseconds(500);

[[noreturn]] void throw_errno(int error, const char* what) {
  throw std::system_error(error, std::generic_category(), what);
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

struct Pipe {
  Fd read, write;
};

Pipe make_pipe() {
  // O_CLOEXEC: children started by other worker threads must not inherit this pipe, or its
  // reader would wait for their exit before seeing end of file.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
  return {Fd(fds[0]), Fd(fds[1])};
}

class SpawnActions {
 public:
  SpawnActions() { posix_spawn_file_actions_init(&actions_); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

// Appends what is readable on `fd`; returns false at end of file.
bool read_some(int fd, std::string& sink, bool& truncated, std::size_t limit) {
  std::array<char, 65536> buffer;
  const ssize_t n = ::read(fd, buffer.data(), buffer.size());
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;
  const std::size_t room = limit > sink.size() ? limit - sink.size() : 0;
  const std::size_t keep = std::min(room, static_cast<std::size_t>(n));
  sink.append(buffer.data(), keep);
  if (keep < static_cast<std::size_t>(n)) truncated = true;
  return true;
}

// The child and everything it started (it leads its own process group).
void kill_group(pid_t pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);  // in case it left the group
}

// For error paths: the child must not outlive a harness that stopped watching it.
void kill_and_reap(pid_t pid) {
  kill_group(pid);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

int milliseconds_until(Clock::time_point when) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(when - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count()) + 1;
}

}  // namespace

ChildResult run_child(const ChildSpec& spec) {
  if (spec.argv.empty()) throw std::system_error(EINVAL, std::generic_category(), "empty argv");
  Pipe out = make_pipe();
  Pipe err = make_pipe();

  SpawnActions actions;
  posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(actions.get(), out.write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(actions.get(), err.write.get(), STDERR_FILENO);

  std::vector<char*> argv;
  for (const std::string& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  ChildResult result;
  const auto start = Clock::now();
  if (spec.cancel != nullptr && spec.cancel->requested()) {
    result.interrupted = true;
    return result;
  }
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // The harness blocks SIGINT/SIGTERM to take them on a thread of its own (cli/stop_signals.hpp);
  // a child starts with nothing blocked.
  sigset_t no_signals;
  sigemptyset(&no_signals);
  posix_spawnattr_setsigmask(&attributes, &no_signals);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attributes, 0);
  pid_t pid = -1;
  const int spawn_error =
      posix_spawn(&pid, argv[0], actions.get(), &attributes, argv.data(), environ);
  posix_spawnattr_destroy(&attributes);
  if (spawn_error != 0) throw_errno(spawn_error, spec.argv[0].c_str());
  out.write.reset();
  err.write.reset();
  // A pidfd reports the child's exit through poll, alongside its output.
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd.get() < 0) {
    const int error = errno;
    kill_and_reap(pid);
    throw_errno(error, "pidfd_open");
  }

  const auto deadline = start + spec.deadline;
  auto drain_until = Clock::time_point::max();
  bool exited = false;
  // Until the child has exited (or been killed) and both pipes reached end of file.
  while (!exited || out.read.get() >= 0 || err.read.get() >= 0) {
    const auto limit = exited ? drain_until : deadline;
    const bool watch_cancel = spec.cancel != nullptr && !result.interrupted;
    std::array<pollfd, 4> fds = {{{out.read.get(), POLLIN, 0},
                                  {err.read.get(), POLLIN, 0},
                                  {exited ? -1 : pidfd.get(), POLLIN, 0},
                                  {watch_cancel ? spec.cancel->fd() : -1, POLLIN, 0}}};
    const int ready = ::poll(fds.data(), fds.size(), milliseconds_until(limit));
    if (ready < 0 && errno != EINTR) {
      const int error = errno;
      kill_and_reap(pid);
      throw_errno(error, "poll");
    }
    if (fds[0].revents &&
        !read_some(out.read.get(), result.out, result.out_truncated, spec.capture_limit)) {
      out.read.reset();
    }
    if (fds[1].revents &&
        !read_some(err.read.get(), result.err, result.err_truncated, spec.capture_limit)) {
      err.read.reset();
    }
    if (fds[2].revents) {
      exited = true;
      drain_until = Clock::now() + kDrainAfterExit;
    }
    if (watch_cancel && spec.cancel->requested()) {
      // Also after the child exited: something it started may still hold the pipes.
      kill_group(pid);
      result.interrupted = true;
      if (!exited) {
        exited = true;
        drain_until = Clock::now() + kDrainAfterExit;
      }
    }
    if (Clock::now() >= limit) {
      if (exited) break;
      kill_group(pid);
      result.killed_at_deadline = true;
      exited = true;
      drain_until = Clock::now() + kDrainAfterExit;
    }
  }
  while (::waitpid(pid, &result.wait_status, 0) < 0 && errno == EINTR) {
  }
  result.wall = Clock::now() - start;
  return result;
}

}  // namespace drvm::harness

// Runs the drvm binary as a child process and captures its status, stdout and stderr.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace drvm::test {

struct DrvmResult {
  int status = -1;  // exit status, or -1 when killed by a signal
  std::string out;
  std::string err;
  double seconds = 0;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline std::string temp_path(const std::string& stem) {
  static int counter = 0;
  return testing::TempDir() + "drvm_vmm_" + std::to_string(::getpid()) + "_" +
         std::to_string(counter++) + "_" + stem;
}

// env: extra "NAME=value" entries; stdin_path: what the child reads as stdin.
inline DrvmResult run_drvm(const std::vector<std::string>& args,
                           const std::vector<std::string>& env = {},
                           const std::string& stdin_path = "/dev/null") {
  const std::string out_path = temp_path("stdout");
  const std::string err_path = temp_path("stderr");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<std::string> argv_storage{DRVM_BINARY};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  env_storage.insert(env_storage.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);

  DrvmResult result;
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = -1;
  if (posix_spawn(&pid, DRVM_BINARY, &actions, nullptr, argv.data(), envp.data()) != 0) {
    posix_spawn_file_actions_destroy(&actions);
    return result;
  }
  posix_spawn_file_actions_destroy(&actions);
  int wait_status = 0;
  ::waitpid(pid, &wait_status, 0);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (WIFEXITED(wait_status)) result.status = WEXITSTATUS(wait_status);
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  ::unlink(out_path.c_str());
  ::unlink(err_path.c_str());
  return result;
}

// Files written by write_temp_file, removed when the test program exits.
inline std::vector<std::string>& temp_files() {
  static std::vector<std::string> files;
  static const bool cleanup_registered = [] {
    std::atexit([] {
      for (const auto& file : temp_files()) ::unlink(file.c_str());
    });
    return true;
  }();
  (void)cleanup_registered;
  return files;
}

inline std::string write_temp_file(const std::string& stem, const std::vector<std::byte>& bytes) {
  const std::string path = temp_path(stem);
  temp_files().push_back(path);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace drvm::test

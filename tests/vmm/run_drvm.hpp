// Runs the drvm binary as a child process and captures its status, stdout and stderr.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "process.hpp"

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

// env: extra "NAME=value" entries; stdin_path: what the child reads as stdin. A drvm that does
// not end within a minute is killed (status -1), so a hang fails the test instead of stalling it.
inline DrvmResult run_drvm(const std::vector<std::string>& args,
                           const std::vector<std::string>& env = {},
                           const std::string& stdin_path = "/dev/null") {
  std::vector<std::string> argv{DRVM_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto start = std::chrono::steady_clock::now();
  const ProcessResult run = run_process(
      argv, {.timeout = std::chrono::seconds(60), .stdin_path = stdin_path, .extra_env = env});
  DrvmResult result;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.status = run.exit_status.value_or(-1);
  result.out = run.stdout_text;
  result.err = run.stderr_text;
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

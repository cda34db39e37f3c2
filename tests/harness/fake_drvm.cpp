// Stands in for `drvm run` in the harness tests: `fake_drvm run SCRIPT [drvm run flags]`, where
// the "image" SCRIPT says what to do, one command a line:
//   out TEXT / err TEXT    write TEXT and '\n' to stdout / stderr (\n \r \t \\ \xNN decoded)
//   outraw TEXT            write TEXT to stdout without a newline
//   flood N                write N bytes to stdout and N to stderr, interleaved
//   sleep MS               sleep
//   spin                   sleep until --timeout, then exit 4 as drvm does
//   hang                   ignore --timeout and sleep for an hour
//   signal N               die from signal N
//   exit STATUS            exit with STATUS (the default is 1: guest exit value 0)
//   accept-events          accept --event/--stat/--json/--stat-output (otherwise refuse them,
//                          as a drvm without event support does)
//   stat TEXT              write TEXT to the --stat-output file
//   args FILE              append this process's arguments to FILE, one per line
//   touch FILE             create FILE
//   child FILE             start a child process that sleeps for an hour and write its pid to
//                          FILE (it must die with its parent's process group)
//   await FILE             wait until FILE exists; at --timeout exit 4 (two cases that touch and
//                          await each other's files pass only when they run in parallel)
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string decode(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    const char next = text[++i];
    if (next == 'n')
      out += '\n';
    else if (next == 'r')
      out += '\r';
    else if (next == 't')
      out += '\t';
    else if (next == 'x' && i + 2 < text.size()) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else
      out += next;
  }
  return out;
}

void write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) std::exit(99);
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || std::string(argv[1]) != "run") {
    std::fputs("fake_drvm: usage: fake_drvm run SCRIPT [flags]\n", stderr);
    return 2;
  }
  std::ifstream script_file(argv[2]);
  if (!script_file) {
    std::fprintf(stderr, "drvm: run: cannot open image %s: No such file; check the path\n",
                 argv[2]);
    return 2;
  }
  std::vector<std::string> script;
  for (std::string line; std::getline(script_file, line);) script.push_back(line);

  double timeout = 0;
  std::string stat_output;
  bool events_requested = false;
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--timeout" && i + 1 < argc) timeout = std::stod(argv[++i]);
    if (arg == "--stat-output" && i + 1 < argc) stat_output = argv[++i];
    if (arg == "--event") events_requested = true;
  }
  bool accept_events = false;
  for (const std::string& line : script) accept_events = accept_events || line == "accept-events";
  if (events_requested && !accept_events) {
    std::fputs("drvm: run: unknown option '--event'; run 'drvm run --help'\n", stderr);
    return 2;
  }

  for (const std::string& line : script) {
    const std::size_t space = line.find(' ');
    const std::string command = line.substr(0, space);
    const std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
    if (command == "out")
      write_all(1, decode(arg) + "\n");
    else if (command == "outraw")
      write_all(1, decode(arg));
    else if (command == "err")
      write_all(2, decode(arg) + "\n");
    else if (command == "flood") {
      const std::size_t n = std::stoul(arg);
      const std::string chunk(4096, 'x');
      for (std::size_t done = 0; done < n; done += chunk.size()) {
        write_all(1, chunk);
        write_all(2, chunk);
      }
    } else if (command == "sleep") {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::stol(arg)));
    } else if (command == "spin") {
      std::this_thread::sleep_for(std::chrono::duration<double>(timeout));
      std::fputs("drvm: run: timeout: the guest ran for the --timeout limit\n", stderr);
      return 4;
    } else if (command == "hang") {
      std::this_thread::sleep_for(std::chrono::hours(1));
    } else if (command == "signal") {
      const int sig = std::stoi(arg);
      ::signal(sig, SIG_DFL);
      ::raise(sig);
    } else if (command == "exit") {
      return std::stoi(arg);
    } else if (command == "stat") {
      std::ofstream(stat_output) << arg;
    } else if (command == "touch") {
      std::ofstream{arg};
    } else if (command == "child") {
      const pid_t child = ::fork();
      if (child == 0) {
        ::sleep(3600);
        ::_exit(0);
      }
      std::ofstream(arg) << child << "\n";
    } else if (command == "await") {
      const auto give_up =
          std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
      while (!std::ifstream(arg)) {
        if (std::chrono::steady_clock::now() > give_up) return 4;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    } else if (command == "args") {
      std::ofstream out(arg, std::ios::app);
      for (int i = 0; i < argc; ++i) out << argv[i] << "\n";
    }
  }
  return 1;
}

// Hits per second of a write watchpoint on countwork.elf's cw_counter (the guest writes it
// DRVM_BENCH_HITS times), counted two ways in one run:
//   drvm:  drvm run countwork.elf --cmdline write=N --event mem:cw_counter:w --stat --json ...
//   gdb:   drvm run countwork.elf --cmdline write=N --gdb 0, and gdb -nx -batch with
//          `watch *(unsigned int *)&cw_counter` + `commands; silent; set $hits = $hits + 1;
//          continue; end`
// plus the same guest without any watchpoint (the baseline). Each benchmark reports the wall time
// of one whole run (manual time), the hits it saw, and hits/s both raw (hits / wall) and net of
// the baseline (hits / (wall - baseline wall)). A run that does not see exactly N hits is an
// error, not a number.
//
// Environment: DRVM_BENCH_HITS (default 2000), DRVM_BENCH_DRVM, DRVM_BENCH_IMAGE.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

const std::string kDrvm = env_or("DRVM_BENCH_DRVM", DRVM_BINARY);
const std::string kImage = env_or("DRVM_BENCH_IMAGE", DRVM_COUNTWORK_IMAGE);
const std::uint64_t kHits = std::strtoull(env_or("DRVM_BENCH_HITS", "2000").c_str(), nullptr, 10);

std::string temp_file(const std::string& stem) {
  return fmt::format("/tmp/drvm_bench_session_{}_{}", ::getpid(), stem);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Spawns argv with stdout and stderr to files; returns the pid (or -1).
pid_t spawn(const std::vector<std::string>& argv, const std::string& out, const std::string& err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct Run {
  double seconds = 0;
  std::uint64_t hits = 0;
  std::string error;
};

std::vector<std::string> drvm_args(std::vector<std::string> extra) {
  std::vector<std::string> argv = {
      kDrvm, "run", kImage, "--cmdline", fmt::format("write={}", kHits), "--timeout", "300"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

Run run_plain() {
  Run run;
  const std::string out = temp_file("out"), err = temp_file("err");
  const auto start = Clock::now();
  const pid_t pid = spawn(drvm_args({}), out, err);
  const int status = pid < 0 ? -1 : wait_status(pid);
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (status != 1) run.error = fmt::format("drvm exited with {}: {}", status, slurp(err));
  return run;
}

Run run_counting() {
  Run run;
  const std::string out = temp_file("out"), err = temp_file("err"), stat = temp_file("stat");
  const auto start = Clock::now();
  const pid_t pid =
      spawn(drvm_args({"--event", "mem:cw_counter:w", "--stat", "--json", "--stat-output", stat}),
            out, err);
  const int status = pid < 0 ? -1 : wait_status(pid);
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::smatch match;
  const std::string json = slurp(stat);
  if (status != 1 || !std::regex_search(json, match, std::regex(R"re("count":([0-9]+))re"))) {
    run.error = fmt::format("drvm exited with {}: {}", status, slurp(err));
    return run;
  }
  run.hits = std::stoull(match[1]);
  return run;
}

Run run_gdb() {
  Run run;
  const std::string out = temp_file("out"), err = temp_file("err");
  const std::string gdb_out = temp_file("gdb_out"), gdb_err = temp_file("gdb_err");
  const std::string script = temp_file("gdb_script");
  const auto start = Clock::now();
  const pid_t drvm = spawn(drvm_args({"--gdb", "0"}), out, err);
  if (drvm < 0) {
    run.error = "cannot start drvm";
    return run;
  }
  // The stub prints its port once it listens.
  std::smatch match;
  const std::regex listening(R"(gdb: listening on [^:]+:([0-9]+))");
  std::string text;
  while (!std::regex_search(text = slurp(err), match, listening)) {
    if (Clock::now() - start > std::chrono::seconds(30)) {
      ::kill(drvm, SIGKILL);
      wait_status(drvm);
      run.error = "drvm --gdb 0 printed no port: " + text;
      return run;
    }
    ::usleep(1000);
  }
  std::ofstream(script) << fmt::format(
      "set pagination off\n"
      "set confirm off\n"
      "target remote 127.0.0.1:{}\n"
      "set $hits = 0\n"
      "watch *(unsigned int *)&cw_counter\n"
      "commands\n"
      "silent\n"
      "set $hits = $hits + 1\n"
      "continue\n"
      "end\n"
      "continue\n"
      "printf \"hits=%d\\n\", $hits\n",
      std::string(match[1]));
  const pid_t gdb = spawn({"gdb", "-nx", "-batch", "-x", script, kImage}, gdb_out, gdb_err);
  const int gdb_status = gdb < 0 ? -1 : wait_status(gdb);
  const int drvm_status = wait_status(drvm);
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const std::string said = slurp(gdb_out);
  if (gdb_status != 0 || !std::regex_search(said, match, std::regex(R"(hits=([0-9]+))"))) {
    run.error = fmt::format("gdb exited with {} (drvm {}): {}{}", gdb_status, drvm_status, said,
                            slurp(gdb_err));
    return run;
  }
  run.hits = std::stoull(match[1]);
  return run;
}

double baseline_seconds = 0;

void report(benchmark::State& state, const Run& run) {
  state.SetIterationTime(run.seconds);
  state.counters["hits"] = static_cast<double>(run.hits);
  state.counters["hits_per_s"] = run.seconds > 0 ? static_cast<double>(run.hits) / run.seconds : 0;
  const double net = run.seconds - baseline_seconds;
  state.counters["net_hits_per_s"] = net > 0 ? static_cast<double>(run.hits) / net : 0;
}

void BM_Baseline(benchmark::State& state) {
  double total = 0;
  std::int64_t runs = 0;
  for (auto _ : state) {
    const Run run = run_plain();
    if (!run.error.empty()) {
      state.SkipWithError(run.error.c_str());
      return;
    }
    state.SetIterationTime(run.seconds);
    total += run.seconds;
    ++runs;
  }
  baseline_seconds = runs > 0 ? total / static_cast<double>(runs) : 0;
}

template <Run (*kRun)()>
void BM_Count(benchmark::State& state) {
  for (auto _ : state) {
    const Run run = kRun();
    if (!run.error.empty() || run.hits != kHits) {
      const std::string why =
          run.error.empty() ? fmt::format("saw {} hits, expected {}", run.hits, kHits) : run.error;
      state.SkipWithError(why.c_str());
      return;
    }
    report(state, run);
  }
}

}  // namespace

BENCHMARK(BM_Baseline)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_Count<run_counting>)
    ->Name("BM_DrvmCounting")
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK(BM_Count<run_gdb>)
    ->Name("BM_GdbCommandsContinue")
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

BENCHMARK_MAIN();

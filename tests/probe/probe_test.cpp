// The capability probe: it runs, decides every finding, agrees with KVM_CHECK_EXTENSION and with
// itself, renders valid JSON and a complete table, and, on a PVM host (this project's machines),
// matches what ../shared/docs/platform.md measured there.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "harness/property_tree_json.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/probe/probe.hpp"
#include "vmm/probe/probe_report.hpp"
#include "vmm/probe/probe_vm.hpp"

namespace drvm::vmm {
namespace {

bool kvm_usable() {
  return ::access("/dev/kvm", R_OK | W_OK) == 0;
}

// The PVM host is recognised by its kernel module, independently of the probe.
bool pvm_host() {
  if (std::filesystem::exists("/sys/module/kvm_pvm")) return true;
  std::ifstream modules("/proc/modules");
  std::string line;
  while (std::getline(modules, line)) {
    if (line.rfind("kvm_pvm ", 0) == 0) return true;
  }
  return false;
}

class ProbeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!kvm_usable()) return;
    system_.emplace(System::open("/dev/kvm"));
    result_ = run_probe(*system_);
  }
  static void TearDownTestSuite() { system_.reset(); }

  void SetUp() override {
    if (!kvm_usable()) GTEST_SKIP() << "needs read/write access to /dev/kvm";
  }

  static const ProbeResult& result() { return *result_; }

  static inline std::optional<System> system_;
  static inline std::optional<ProbeResult> result_;
};

const Finding& finding(const ProbeResult& result, std::string_view key) {
  for (const FindingField& field : finding_fields()) {
    if (field.key == key) return result.*field.member;
  }
  throw std::invalid_argument(std::string(key));
}

TEST_F(ProbeTest, EveryFindingIsDetermined) {
  EXPECT_EQ(finding_fields().size(), 16U);
  for (const FindingField& field : finding_fields()) {
    const Finding& found = result().*field.member;
    EXPECT_NE(found.answer, Answer::error) << field.key << ": " << found.detail;
    EXPECT_FALSE(found.detail.empty()) << field.key;
  }
}

TEST_F(ProbeTest, HostFactsAgreeWithCheckExtension) {
  const HostFacts& host = result().host;
  EXPECT_EQ(host.api_version, KVM_API_VERSION);
  EXPECT_EQ(host.nr_vcpus, system_->check_extension(KVM_CAP_NR_VCPUS));
  EXPECT_EQ(host.max_vcpus, system_->check_extension(KVM_CAP_MAX_VCPUS));
  EXPECT_EQ(host.nr_memslots, system_->check_extension(KVM_CAP_NR_MEMSLOTS));
  EXPECT_EQ(host.set_guest_debug, system_->check_extension(KVM_CAP_SET_GUEST_DEBUG));
  EXPECT_EQ(host.debugregs, system_->check_extension(KVM_CAP_DEBUGREGS));
  EXPECT_EQ(host.immediate_exit, system_->check_extension(KVM_CAP_IMMEDIATE_EXIT));
  EXPECT_EQ(host.exception_payload, system_->check_extension(KVM_CAP_EXCEPTION_PAYLOAD));
  EXPECT_GE(host.max_vcpus, host.nr_vcpus);
  EXPECT_GT(host.nr_memslots, 0);
  EXPECT_FALSE(host.cpu_vendor.empty());
  EXPECT_FALSE(host.cpu_model.empty());
  EXPECT_FALSE(host.kvm_module.empty());
}

TEST_F(ProbeTest, FindingsAreConsistentWithCapabilitiesAndEachOther) {
  const ProbeResult& r = result();
  const HostFacts& host = r.host;
  for (const char* key : {"hw_insn_bp", "hw_data_bp_write", "hw_data_bp_rw", "gd_exit",
                          "sw_bp_debug_exit", "single_step"}) {
    if (finding(r, key).yes()) {
      EXPECT_GT(host.set_guest_debug, 0) << key;
    }
  }
  if (r.hw_insn_bp_rf.yes()) {
    EXPECT_TRUE(r.hw_insn_bp.yes());
  }
  EXPECT_FALSE(r.sw_bp_debug_exit.yes() && r.sw_bp_emulation_failure.yes())
      << "INT3 cannot both exit as KVM_EXIT_DEBUG and fail emulation";
  if (r.readonly_mem.yes()) {
    EXPECT_GT(host.readonly_mem, 0);
  }
  if (host.readonly_mem <= 0) {
    EXPECT_EQ(r.readonly_mem.answer, Answer::no);
  }
  if (r.readonly_write_rip_past.yes()) {
    EXPECT_TRUE(r.readonly_mem.yes());
  }
  if (r.immediate_exit_completion.yes()) {
    EXPECT_GT(host.immediate_exit, 0);
    EXPECT_TRUE(r.mmio_unmapped.yes()) << "immediate_exit completion needs an MMIO exit";
  }
  if (r.db_injection_payload.yes()) {
    EXPECT_GT(host.exception_payload, 0);
  }
  if (host.exception_payload <= 0) {
    EXPECT_EQ(r.db_injection_payload.answer, Answer::no);
  }

  EXPECT_EQ(r.single_step.yes(), r.costs.single_step_exit_us.has_value());
  if (r.costs.single_step_exit_us) {
    EXPECT_GT(*r.costs.single_step_exit_us, 0.0);
  }
  if (r.mmio_unmapped.yes()) {
    ASSERT_TRUE(r.costs.mmio_exit_us.has_value());
    EXPECT_GT(*r.costs.mmio_exit_us, 0.0);
    ASSERT_TRUE(r.costs.memslot_recreate_us.has_value());
    EXPECT_GT(*r.costs.memslot_recreate_us, 0.0);
  }
  EXPECT_GT(r.probe_ms, 0.0);
}

// What platform.md measured on this project's PVM machines; elsewhere only consistency applies.
TEST_F(ProbeTest, MatchesPlatformFactsOnPvmHost) {
  if (!pvm_host()) GTEST_SKIP() << "not a kvm_pvm host: the platform.md table does not apply";
  const ProbeResult& r = result();
  EXPECT_NE(r.host.kvm_module.find("kvm_pvm"), std::string::npos) << r.host.kvm_module;
  const std::pair<const char*, Answer> expected[] = {
      {"hw_insn_bp", Answer::yes},
      {"hw_insn_bp_rf", Answer::no},
      {"hw_data_bp_write", Answer::no},
      {"hw_data_bp_rw", Answer::no},
      {"guest_insn_bp", Answer::yes},
      {"guest_data_bp", Answer::no},
      {"gd_exit", Answer::no},
      {"sw_bp_debug_exit", Answer::no},
      {"sw_bp_emulation_failure", Answer::yes},
      {"single_step", Answer::yes},
      {"readonly_mem", Answer::yes},
      {"readonly_write_rip_past", Answer::yes},
      {"mmio_unmapped", Answer::yes},
      {"immediate_exit_completion", Answer::yes},
      {"db_injection", Answer::yes},
  };
  for (const auto& [key, answer] : expected) {
    const Finding& found = finding(r, key);
    EXPECT_EQ(found.answer, answer) << key << ": " << found.detail;
  }
}

boost::property_tree::ptree parse_json(const std::string& text) {
  std::istringstream stream(text);
  boost::property_tree::ptree tree;
  boost::property_tree::read_json(stream, tree);  // throws on malformed JSON
  return tree;
}

void expect_complete_json(const std::string& text, const ProbeResult& r) {
  boost::property_tree::ptree tree;
  ASSERT_NO_THROW(tree = parse_json(text)) << text;
  EXPECT_EQ(tree.get<int>("schema"), 1);
  EXPECT_EQ(tree.get<int>("host.api_version"), r.host.api_version);
  EXPECT_EQ(tree.get<std::string>("host.kvm_module"), r.host.kvm_module);
  EXPECT_EQ(tree.get<std::string>("host.cpu_vendor"), r.host.cpu_vendor);
  for (const char* cap : {"nr_vcpus", "max_vcpus", "nr_memslots", "set_guest_debug", "debugregs",
                          "readonly_mem", "immediate_exit", "exception_payload"}) {
    EXPECT_TRUE(tree.get_child_optional(std::string("host.caps.") + cap)) << cap;
  }
  EXPECT_EQ(tree.get<int>("host.caps.nr_memslots"), r.host.nr_memslots);
  const auto& findings = tree.get_child("findings");
  EXPECT_EQ(findings.size(), finding_fields().size());
  for (const FindingField& field : finding_fields()) {
    const auto entry = findings.get_child_optional(field.key);
    ASSERT_TRUE(entry) << field.key;
    EXPECT_EQ(entry->get<std::string>("answer"), answer_name((r.*field.member).answer));
    EXPECT_EQ(entry->get<std::string>("detail"), (r.*field.member).detail);
  }
  for (const char* cost : {"single_step_exit", "mmio_exit", "memslot_recreate"}) {
    EXPECT_TRUE(tree.get_child_optional(std::string("costs_us.") + cost)) << cost;
  }
  EXPECT_TRUE(tree.get_child_optional("probe_ms"));
}

TEST_F(ProbeTest, JsonIsValidAndComplete) {
  expect_complete_json(format_probe_json(result()), result());
}

TEST(ProbeReport, JsonEscapesDetails) {
  ProbeResult r;
  r.hw_insn_bp = {Answer::no, "quote \" backslash \\ newline \n tab \t"};
  const auto tree = parse_json(format_probe_json(r));
  EXPECT_EQ(tree.get<std::string>("findings.hw_insn_bp.detail"), r.hw_insn_bp.detail);
  EXPECT_EQ(tree.get<std::string>("findings.gd_exit.answer"), "error");
  EXPECT_EQ(tree.get<std::string>("costs_us.mmio_exit"), "null");
}

TEST_F(ProbeTest, TableHasARowPerFinding) {
  const std::string table = format_probe_table(result());
  for (const FindingField& field : finding_fields()) {
    const Finding& found = result().*field.member;
    const auto row = table.find(std::string(field.label) + " ");
    ASSERT_NE(row, std::string::npos) << field.label;
    const std::string line = table.substr(row, table.find('\n', row) - row);
    EXPECT_NE(line.find(std::string(" ") + answer_name(found.answer) + " "), std::string::npos)
        << line;
    EXPECT_NE(line.find(found.detail), std::string::npos) << line;
  }
}

// A guest spinning forever is stopped at the probe's deadline instead of hanging.
TEST_F(ProbeTest, WatchdogBoundsAGuestThatNeverExits) {
  using namespace probe_detail;
  constexpr std::uint64_t kSpin = 0x20000;
  ProbeVm vm(*system_, kSpin, std::chrono::milliseconds{100});
  vm.ram()[kSpin] = 0xeb;  // jmp .
  vm.ram()[kSpin + 1] = 0xfe;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(vm.run(), ProbeVm::Stop::timed_out);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds{90});
  EXPECT_LT(elapsed, std::chrono::seconds{5});
}

struct CommandResult {
  int status;
  std::string out;
  std::string err;
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream file(path);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

CommandResult run_drvm(const std::string& arguments, const std::string& environment = "") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("drvm_probe_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string command = environment + " " + DRVM_BINARY + " " + arguments + " >" +
                              (dir / "out").string() + " 2>" + (dir / "err").string();
  const int raw = std::system(command.c_str());
  CommandResult result{WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, read_file(dir / "out"),
                       read_file(dir / "err")};
  std::filesystem::remove_all(dir);
  return result;
}

TEST_F(ProbeTest, CommandPrintsCompleteJson) {
  const CommandResult run = run_drvm("probe --json");
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.err, "");
  boost::property_tree::ptree tree;
  ASSERT_NO_THROW(tree = parse_json(run.out)) << run.out;
  for (const FindingField& field : finding_fields()) {
    EXPECT_EQ(tree.get<std::string>(std::string("findings.") + field.key + ".answer"),
              answer_name((result().*field.member).answer))
        << field.key;
  }
}

TEST_F(ProbeTest, CommandPrintsTable) {
  const CommandResult run = run_drvm("probe");
  ASSERT_EQ(run.status, 0) << run.err;
  for (const FindingField& field : finding_fields()) {
    EXPECT_NE(run.out.find(field.label), std::string::npos) << field.label;
  }
}

TEST(ProbeCommand, MissingDeviceIsOneLineAndStatus2) {
  const CommandResult run = run_drvm("probe", "DRVM_KVM_DEVICE=/nonexistent/kvm");
  EXPECT_EQ(run.status, 2);
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err.rfind("drvm: ", 0), 0U) << run.err;
  EXPECT_NE(run.err.find("/nonexistent/kvm"), std::string::npos) << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
}

TEST(ProbeCommand, UnknownOptionIsStatus2) {
  const CommandResult run = run_drvm("probe --bogus");
  EXPECT_EQ(run.status, 2);
  EXPECT_EQ(run.err.rfind("drvm: ", 0), 0U) << run.err;
}

}  // namespace
}  // namespace drvm::vmm

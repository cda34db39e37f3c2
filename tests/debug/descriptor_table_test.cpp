// A watch armed on the page that holds the guest's GDT: KVM cannot set a descriptor's accessed bit
// there without an exit drvm could complete, so drvm warns once, naming the page.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "debug_harness.hpp"
#include "vmm/boot_layout.hpp"
#include "vmm/run_outcome.hpp"

namespace drvm::test {
namespace {

const std::string kHelloImage = std::string(DRVM_GUEST_DIR) + "/hello.elf";

std::string read_all(std::FILE* file) {
  std::string text;
  std::rewind(file);
  for (int c; (c = std::fgetc(file)) != EOF;) text.push_back(static_cast<char>(c));
  return text;
}

bp::EventSpec write_watch(std::uint64_t address) {
  return host_event(address, 8, bp::BpType::kWrite);
}

TEST(DescriptorTables, WatchOnTheGdtPageWarnsOnce) {
  DRVM_REQUIRE_KVM();
  std::FILE* log = std::tmpfile();
  ASSERT_NE(log, nullptr);
  {
    // drvm's boot GDT is loaded when the watches are armed; guestfw then loads its own GDT
    // elsewhere, so the guest still runs to its end.
    GuestRun run(kHelloImage, "", false, 64, {}, log);
    ASSERT_TRUE(run.controller().create_event(write_watch(vmm::layout::kGdt + 8)).ok());
    ASSERT_TRUE(run.controller().create_event(write_watch(vmm::layout::kGdt + 16)).ok());
    const vmm::RunOutcome outcome = run.run();
    ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  }
  const std::string text = read_all(log);
  std::fclose(log);
  EXPECT_NE(text.find(fmt::format("a watchpoint protects page {:#x}, which holds the guest's GDT",
                                  vmm::layout::kGdt)),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("GDT"), text.rfind("GDT")) << "warned more than once:\n" << text;
}

TEST(DescriptorTables, WatchElsewhereDoesNotWarn) {
  DRVM_REQUIRE_KVM();
  std::FILE* log = std::tmpfile();
  ASSERT_NE(log, nullptr);
  {
    GuestRun run(kHelloImage, "", false, 64, {}, log);
    const std::uint64_t code = run.symbol("guest_main") & ~std::uint64_t{7};
    ASSERT_TRUE(run.controller().create_event(write_watch(code)).ok());
    const vmm::RunOutcome outcome = run.run();
    ASSERT_EQ(outcome.status, vmm::status::exit_port(0)) << run.output() << outcome.report;
  }
  EXPECT_EQ(read_all(log), "");
  std::fclose(log);
}

}  // namespace
}  // namespace drvm::test

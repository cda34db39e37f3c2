// Watches on the pages KVM reads or writes on its own (GDT, IDT, paging structures, the stack an
// exception frame goes on), the way a linker lays out globals beside them: the default engines must
// run such a guest to its end and count exactly what the --exact reference counts (issue 10,
// item 1). Before, these ended in a hang or a triple fault.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>

#include "debug_harness.hpp"
#include "vmm/run_outcome.hpp"

namespace drvm::test {
namespace {

struct LayoutCase {
  const char* name;
  const char* image;   // in DRVM_GUEST_DIR
  const char* symbol;  // the watch is at symbol + offset
  std::uint64_t offset;
  std::uint32_t len;
  bp::BpType type;
};

void PrintTo(const LayoutCase& c, std::ostream* out) {
  *out << c.name;
}

struct Counted {
  vmm::RunOutcome outcome;
  std::uint64_t count = 0;
  std::string output;
};

Counted run_watch(const LayoutCase& c, bool exact) {
  GuestRun run(std::string(DRVM_GUEST_DIR) + "/" + c.image, "", exact);
  const std::uint64_t address = run.symbol(c.symbol) + c.offset;
  const bp::EventId id = create(run.controller(), host_event(address, c.len, c.type));
  Counted result;
  result.outcome = run.run(30);
  result.count = count(run.controller(), id);
  result.output = run.output();
  return result;
}

class SystemPages : public ::testing::TestWithParam<LayoutCase> {};

TEST_P(SystemPages, RunToTheEndAndCountAsExact) {
  DRVM_REQUIRE_KVM();
  const LayoutCase& c = GetParam();
  const Counted fast = run_watch(c, false);
  const Counted exact = run_watch(c, true);
  EXPECT_EQ(exact.outcome.status, vmm::status::exit_port(0)) << exact.outcome.report;
  EXPECT_EQ(fast.outcome.status, vmm::status::exit_port(0)) << fast.outcome.report << fast.output;
  EXPECT_EQ(fast.count, exact.count);
  EXPECT_EQ(fast.output, exact.output);
}

// hello.elf: guestfw's GDT and its pointer share a page in .data, the IDT is in .bss beside them;
// the page tables are in .data too. selftest.elf raises exceptions whose frames go on its stack.
INSTANTIATE_TEST_SUITE_P(
    Layouts, SystemPages,
    ::testing::Values(
        LayoutCase{"GdtPageWrite", "hello.elf", "guestfw_gdt", 8, 8, bp::BpType::kWrite},
        LayoutCase{"GdtPageReadWrite", "hello.elf", "guestfw_gdt", 8, 8, bp::BpType::kReadWrite},
        LayoutCase{"GdtPointerRead", "hello.elf", "guestfw_gdt_pointer", 0, 8, bp::BpType::kRead},
        LayoutCase{"IdtPageRead", "hello.elf", "idt", 8, 8, bp::BpType::kRead},
        LayoutCase{"IdtPageWrite", "hello.elf", "idt", 8, 8, bp::BpType::kWrite},
        LayoutCase{"PageTableReadWrite", "hello.elf", "guestfw_pml4", 0, 8, bp::BpType::kReadWrite},
        LayoutCase{"PageTableWrite", "hello.elf", "guestfw_pml4", 8, 8, bp::BpType::kWrite},
        LayoutCase{"ExceptionStackWrite", "selftest.elf", "__stack_top", -16ull, 8,
                   bp::BpType::kWrite},
        LayoutCase{"ExceptionStackReadWrite", "selftest.elf", "__stack_top", -0x400ull, 8,
                   bp::BpType::kReadWrite},
        LayoutCase{"IdtOfFaultingGuest", "selftest.elf", "idt", 0x20, 8, bp::BpType::kRead}),
    [](const ::testing::TestParamInfo<LayoutCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace drvm::test

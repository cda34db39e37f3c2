// Resolving specs against the image and the machine: symbol sizes as default lengths, bpcore's
// attribute checks in the user's terms, vCPU indices, and the pinned slot budget.
#include "vmm/session/event_plan.hpp"

#include <gtest/gtest.h>

#include "symtab_elf.hpp"

namespace drvm::vmm::session {
namespace {

SymbolTable symbols() {
  return SymbolTable::from_elf(test::build_symtab_elf64({
      {"counter", 0x10a000, 4, STT_OBJECT},
      {"flag", 0x10a008, 8, STT_OBJECT},
      {"word", 0x10a010, 2, STT_OBJECT},
      {"byte", 0x10a012, 1, STT_OBJECT},
      {"buffer", 0x10a040, 64, STT_OBJECT},
      {"odd", 0x10a081, 4, STT_OBJECT},
      {"label", 0x10a100, 0, STT_NOTYPE},
      {"tick", 0x101670, 2, STT_FUNC},
      {"twice", 0x10b000, 4, STT_OBJECT},
      {"twice", 0x10c000, 4, STT_OBJECT},
  }));
}

PlanLimits limits(unsigned slots = 4, unsigned vcpus = 1) {
  return {"img.elf", vcpus, slots};
}

std::vector<PlannedEvent> plan(std::vector<std::string> specs, unsigned slots = 4) {
  return plan_events(specs, symbols(), limits(slots));
}

std::string plan_error(std::vector<std::string> specs, unsigned slots = 4, unsigned vcpus = 1,
                       const SymbolTable& table = symbols()) {
  try {
    (void)plan_events(specs, table, limits(slots, vcpus));
  } catch (const PlanError& error) {
    return error.what();
  }
  return "accepted";
}

TEST(EventPlan, SymbolSizeIsTheDefaultLength) {
  const auto events = plan({"mem:counter", "mem:flag:w", "mem:word:r", "mem:byte"});
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].attr, (bp::BpAttr{0x10a000, 4, bp::BpType::kReadWrite}));
  EXPECT_EQ(events[1].attr, (bp::BpAttr{0x10a008, 8, bp::BpType::kWrite}));
  EXPECT_EQ(events[2].attr, (bp::BpAttr{0x10a010, 2, bp::BpType::kRead}));
  EXPECT_EQ(events[3].attr, (bp::BpAttr{0x10a012, 1, bp::BpType::kReadWrite}));
  EXPECT_EQ(events[0].request.text, "mem:counter");
}

TEST(EventPlan, OffsetsLengthsAddressesAndExecute) {
  const auto events = plan({"mem:buffer+16/8:w", "mem:label/4", "mem:0x10a000/4:r", "mem:tick:x"});
  EXPECT_EQ(events[0].attr, (bp::BpAttr{0x10a050, 8, bp::BpType::kWrite}));
  EXPECT_EQ(events[1].attr, (bp::BpAttr{0x10a100, 4, bp::BpType::kReadWrite}));
  EXPECT_EQ(events[2].attr, (bp::BpAttr{0x10a000, 4, bp::BpType::kRead}));
  EXPECT_EQ(events[3].attr, (bp::BpAttr{0x101670, 1, bp::BpType::kExecute}));
}

TEST(EventPlan, ResolutionErrorsNameTheSpecAndTheFix) {
  EXPECT_EQ(plan_error({"mem:counter", "mem:nosuch:w"}),
            "--event 'mem:nosuch:w': symbol 'nosuch' is not in img.elf's symbol table; check the "
            "name (nm img.elf) or give an address");
  EXPECT_EQ(plan_error({"mem:buffer:w"}),
            "--event 'mem:buffer:w': symbol 'buffer' is 64 bytes, more than one watch covers; "
            "give the part to watch, e.g. mem:buffer/8 or mem:buffer+8/8");
  EXPECT_EQ(plan_error({"mem:label"}),
            "--event 'mem:label': symbol 'label' has no size in the symbol table; give the length "
            "to watch (mem:label/4)");
  EXPECT_EQ(plan_error({"mem:0x10a000:w"}),
            "--event 'mem:0x10a000:w': an address needs a length; add /1, /2, /4 or /8 before the "
            "access type (mem:ADDR/4:w)");
  EXPECT_EQ(plan_error({"mem:twice"}),
            "--event 'mem:twice': symbol 'twice' is defined 2 times in img.elf (at 0x10b000 "
            "0x10c000); give the address of the one you mean");
  EXPECT_EQ(plan_error({"mem:odd"}),
            "--event 'mem:odd': address 0x10a081 is not a multiple of the length 4; watch an "
            "aligned address (x86 ignores the low address bits) or a shorter length");
  EXPECT_EQ(plan_error({"mem:counter+2"}),
            "--event 'mem:counter+2': address 0x10a002 is not a multiple of the length 4; watch "
            "an aligned address (x86 ignores the low address bits) or a shorter length");
  EXPECT_EQ(plan_error({"mem:0x800000000000/8"}),
            "--event 'mem:0x800000000000/8': address 0x800000000000 is not canonical (bits 63..47 "
            "differ), so no access can match it; check the address");
  EXPECT_EQ(plan_error({"mem:0xffffffffffffff00+0x200/8"}),
            "--event 'mem:0xffffffffffffff00+0x200/8': address 0xffffffffffffff00 + offset 0x200 "
            "wraps past 2^64; use a smaller offset");
  EXPECT_EQ(plan_error({"mem:counter,vcpu=1"}),
            "--event 'mem:counter,vcpu=1': vcpu=1 but the machine has 1 vCPU; give vcpu=0 or drop "
            "the option to count on every vCPU");
  EXPECT_EQ(plan_error({"mem:counter,vcpu=2"}, 4, 2),
            "--event 'mem:counter,vcpu=2': vcpu=2 but the machine has 2 vCPUs; give vcpu=0 .. "
            "vcpu=1 or drop the option to count on every vCPU");
  EXPECT_EQ(plan_error({"mem:bad:q"}),
            "--event 'mem:bad:q': access type 'q' is not one of r, w, rw, x; end the spec with "
            ":r, :w, :rw or :x (after /LEN)");
}

TEST(EventPlan, StrippedImageSaysWhySymbolsCannotBeUsed) {
  const SymbolTable stripped = SymbolTable::from_elf(test::build_symtab_elf64({}));
  EXPECT_EQ(
      plan_error({"mem:counter"}, 4, 1, stripped),
      "--event 'mem:counter': cannot look up symbol 'counter' in img.elf: its symbol table "
      "has no functions or objects; give an address instead (mem:0x...) or the unstripped build "
      "with --symbols FILE");
  const SymbolTable not_elf = SymbolTable::from_elf(std::vector<std::byte>(64));
  EXPECT_EQ(
      plan_error({"mem:counter"}, 4, 1, not_elf),
      "--event 'mem:counter': cannot look up symbol 'counter' in img.elf: the image is not "
      "an ELF file; give an address instead (mem:0x...) or the unstripped build with --symbols "
      "FILE");
  EXPECT_EQ(plan_events({"mem:0x10a000/4"}, stripped, limits()).size(), 1u);
}

TEST(EventPlan, PinnedEventsMustFitTheSlots) {
  const std::vector<std::string> four_pinned = {"mem:counter,pinned", "mem:flag,pinned",
                                                "mem:word,pinned", "mem:byte,pinned"};
  EXPECT_EQ(plan(four_pinned).size(), 4u);
  std::vector<std::string> with_flexible = four_pinned;
  with_flexible.push_back("mem:tick:x");  // flexible events never over-commit
  EXPECT_EQ(plan(with_flexible).size(), 5u);

  std::vector<std::string> five_pinned = four_pinned;
  five_pinned.push_back("mem:tick:x,pinned");
  EXPECT_EQ(
      plan_error(five_pinned),
      "--event: 5 pinned events need 5 slots on vCPU 0 but there are 4 ('mem:counter,pinned', "
      "'mem:flag,pinned', 'mem:word,pinned', 'mem:byte,pinned', 'mem:tick:x,pinned'); make "
      "some of them flexible (drop ',pinned') or raise --slots (at most 60)");
  EXPECT_EQ(plan(five_pinned, 8).size(), 5u);
}

TEST(EventPlan, PinnedBudgetIsPerVcpu) {
  // Three on every vCPU plus one on each vCPU: four per vCPU, fits.
  const std::vector<std::string> specs = {"mem:counter,pinned", "mem:flag,pinned",
                                          "mem:word,pinned", "mem:byte,pinned,vcpu=0",
                                          "mem:tick:x,pinned,vcpu=1"};
  EXPECT_EQ(plan_events(specs, symbols(), limits(4, 2)).size(), 5u);
  std::vector<std::string> too_many = specs;
  too_many.push_back("mem:buffer/8,pinned,vcpu=1");
  EXPECT_NE(plan_error(too_many, 4, 2).find("need 5 slots on vCPU 1"), std::string::npos);
}

}  // namespace
}  // namespace drvm::vmm::session

// The image's symbol table: lookups by name, and addresses back to symbol+offset (the form every
// trace line and the stat use).
#include "vmm/session/symbol_table.hpp"

#include <gtest/gtest.h>

#include "symtab_elf.hpp"

namespace drvm::vmm::session {
namespace {

using test::TestSymbol;

SymbolTable sample_table() {
  return SymbolTable::from_elf(test::build_symtab_elf64({
      {"counter", 0x10a000, 4, STT_OBJECT},
      {"buffer", 0x10a040, 64, STT_OBJECT},
      {"write_loop", 0x101600, 0x20, STT_FUNC},
      {"inner_label", 0x101610, 0, STT_NOTYPE},
      {"far_label", 0x200000, 0, STT_NOTYPE},
      {"undefined_one", 0, 0, STT_OBJECT, SHN_UNDEF},
      {"a_section", 0x300000, 0, STT_SECTION},
      {"alias_of_counter", 0x10a000, 4, STT_OBJECT},
  }));
}

TEST(SymbolTable, FindsDefinedFunctionsObjectsAndLabels) {
  const SymbolTable table = sample_table();
  ASSERT_FALSE(table.empty());
  ASSERT_EQ(table.find("counter").size(), 1u);
  EXPECT_EQ(table.find("counter")[0]->address, 0x10a000u);
  EXPECT_EQ(table.find("counter")[0]->size, 4u);
  EXPECT_EQ(table.find("buffer")[0]->size, 64u);
  EXPECT_EQ(table.find("inner_label").size(), 1u);
  EXPECT_TRUE(table.find("undefined_one").empty());
  EXPECT_TRUE(table.find("a_section").empty());
  EXPECT_TRUE(table.find("nothing").empty());
}

TEST(SymbolTable, DescribesAddressesAsSymbolPlusOffset) {
  const SymbolTable table = sample_table();
  EXPECT_EQ(table.describe(0x10a000), "alias_of_counter");  // same address: name order
  EXPECT_EQ(table.describe(0x10a002), "alias_of_counter+0x2");
  EXPECT_EQ(table.describe(0x10a048), "buffer+0x8");
  EXPECT_EQ(table.describe(0x101604), "write_loop+0x4");
  EXPECT_EQ(table.describe(0x101612), "inner_label+0x2");  // the nearest label inside
  EXPECT_EQ(table.describe(0x200010), "far_label+0x10");
}

TEST(SymbolTable, AddressesNoSymbolCoversAreHex) {
  const SymbolTable table = sample_table();
  EXPECT_EQ(table.describe(0x10a004), "0x10a004");              // just past counter
  EXPECT_EQ(table.describe(0x10a080), "0x10a080");              // just past buffer
  EXPECT_EQ(table.describe(0x1000), "0x1000");                  // below every symbol
  EXPECT_EQ(table.describe(0x200000 + 64 * 1024), "0x210000");  // beyond a label's reach
}

TEST(SymbolTable, ReadsElf32) {
  const SymbolTable table =
      SymbolTable::from_elf(test::build_symtab_elf32({{"flag", 0x100000, 8, STT_OBJECT}}));
  ASSERT_EQ(table.find("flag").size(), 1u);
  EXPECT_EQ(table.describe(0x100004), "flag+0x4");
}

TEST(SymbolTable, BrokenInputGivesAnEmptyTableWithTheReason) {
  const std::vector<std::byte> junk(100, std::byte{0x41});
  EXPECT_TRUE(SymbolTable::from_elf(junk).empty());
  EXPECT_EQ(SymbolTable::from_elf(junk).problem(), "the image is not an ELF file");

  std::vector<std::byte> elf = test::build_symtab_elf64({{"x", 0x1000, 4, STT_OBJECT}});
  std::vector<std::byte> truncated(elf.begin(), elf.begin() + 80);
  EXPECT_TRUE(SymbolTable::from_elf(truncated).empty());
  EXPECT_FALSE(SymbolTable::from_elf(truncated).problem().empty());

  const std::vector<std::byte> no_symbols = test::build_symtab_elf64({});
  EXPECT_TRUE(SymbolTable::from_elf(no_symbols).empty());
  EXPECT_EQ(SymbolTable::from_elf(no_symbols).problem(),
            "its symbol table has no functions or objects");
}

TEST(SymbolTable, DuplicateNamesAreAllReturned) {
  const SymbolTable table = SymbolTable::from_elf(test::build_symtab_elf64({
      {"state", 0x2000, 4, STT_OBJECT},
      {"state", 0x1000, 4, STT_OBJECT},
  }));
  const auto found = table.find("state");
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0]->address, 0x1000u);
  EXPECT_EQ(found[1]->address, 0x2000u);
}

}  // namespace
}  // namespace drvm::vmm::session

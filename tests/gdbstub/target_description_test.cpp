#include "gdbstub/target_description.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace drvm::gdbstub {
namespace {

TEST(TargetDescription, LayoutMatchesGdbAmd64CoreThenDrvmFeatures) {
  const auto layout = register_layout();
  ASSERT_EQ(layout.size(), 55u);
  EXPECT_EQ(layout[0].name, "rax");
  EXPECT_EQ(layout[6].name, "rbp");  // gdb's order, not KVM's
  EXPECT_EQ(layout[7].name, "rsp");
  EXPECT_EQ(layout[16].name, "rip");
  EXPECT_EQ(layout[17].name, "eflags");
  EXPECT_EQ(layout[17].size, 4u);
  EXPECT_EQ(layout[24].name, "st0");
  EXPECT_EQ(layout[24].size, 10u);
  EXPECT_EQ(layout[40].name, "fs_base");
  EXPECT_EQ(layout[43].name, "cr0");
  EXPECT_EQ(layout[49].name, "dr0");
  EXPECT_EQ(layout[54].name, "dr7");
  EXPECT_EQ(register_file_size(), 16 * 8 + 8 + 4 + 6 * 4 + 8 * 10 + 8 * 4 + 3 * 8 + 6 * 8 + 6 * 8);
}

TEST(TargetDescription, EveryRegisterAppearsOnceInTheXmlInLayoutOrder) {
  std::string all;
  for (std::string annex :
       {"64bit-core.xml", "64bit-segments.xml", "drvm-system.xml", "drvm-debugregs.xml"}) {
    const auto contents = target_description_annex(annex);
    ASSERT_TRUE(contents) << annex;
    EXPECT_NE(target_description_annex("target.xml")->find("href=\"" + annex + "\""),
              std::string::npos);
    all += *contents;
  }
  std::size_t at = 0;
  for (const RegisterInfo& info : register_layout()) {
    const std::string tag = "<reg name=\"" + std::string(info.name) + "\" bitsize=\"" +
                            std::to_string(info.size * 8) + "\"";
    const auto found = all.find(tag, at);
    ASSERT_NE(found, std::string::npos) << info.name;
    at = found + 1;
  }
  EXPECT_NE(all.find("org.drvm.debugregs"), std::string::npos);
  EXPECT_FALSE(target_description_annex("../etc/passwd"));
}

// gdb's `system` group (for the architectures whose gdb support reads the description's groups;
// docs/gdb.md): segment bases, control registers, EFER and the debug registers.
TEST(TargetDescription, SystemRegistersCarryTheSystemGroup) {
  std::string all;
  for (std::string annex : {"64bit-segments.xml", "drvm-system.xml", "drvm-debugregs.xml"}) {
    all += *target_description_annex(annex);
  }
  for (const char* name : {"fs_base", "gs_base", "k_gs_base", "cr0", "cr2", "cr3", "cr4", "cr8",
                           "efer", "dr0", "dr1", "dr2", "dr3", "dr6", "dr7"}) {
    const auto begin = all.find("<reg name=\"" + std::string(name) + "\"");
    ASSERT_NE(begin, std::string::npos) << name;
    const std::string element = all.substr(begin, all.find('>', begin) - begin);
    EXPECT_NE(element.find("group=\"system\""), std::string::npos) << element;
  }
}

TEST(TargetDescription, SerializesLittleEndianInLayoutOrder) {
  Registers registers;
  registers.rax = 0x0102030405060708;
  registers.eflags = 0x246;
  registers.st[0][9] = 0x40;
  registers.dr7 = 0x400;
  const std::string hex = serialize_registers(registers);
  ASSERT_EQ(hex.size(), register_file_size() * 2);
  EXPECT_EQ(hex.substr(0, 16), "0807060504030201");
  EXPECT_EQ(hex.substr(17 * 16, 8), "46020000");
  EXPECT_EQ(hex.substr(hex.size() - 16), "0004000000000000");

  Registers round_trip;
  std::vector<std::uint8_t> bytes(register_file_size());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(i * 2, 2), nullptr, 16));
  }
  store_register_bytes(round_trip, 0, bytes);
  EXPECT_EQ(serialize_registers(round_trip), hex);
}

}  // namespace
}  // namespace drvm::gdbstub

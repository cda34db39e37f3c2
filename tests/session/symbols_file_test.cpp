// `drvm run --symbols FILE`: symbol names for a stripped image come from FILE (here gdbwork.elf
// for gdbwork-stripped.elf, built by guestfw/CMakeLists.txt with objcopy --strip-all).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "vmm/boot/image.hpp"
#include "vmm/session/session_plan.hpp"

namespace drvm::vmm::session {
namespace {

std::string guest(const std::string& name) {
  return std::string(DRVM_GUEST_DIR) + "/" + name;
}

SessionOptions with_event(std::string spec, std::string symbols = "") {
  SessionOptions options;
  options.events.push_back(std::move(spec));
  options.symbols = std::move(symbols);
  return options;
}

std::string plan_error(const SessionOptions& options, const std::string& image) {
  try {
    const SessionPlan plan(options, read_image(image), 1, false);
  } catch (const SetupError& error) {
    return error.what();
  }
  return "<no error>";
}

std::uint64_t address_in(const std::string& image, const std::string& symbol) {
  const BootImage unstripped = read_image(image);
  const SymbolTable table = SymbolTable::from_elf(unstripped.bytes);  // `found` points into it
  const auto found = table.find(symbol);
  return found.size() == 1 ? found.front()->address : 0;
}

TEST(SymbolsFile, AStrippedImageNamesSymbolsFromTheFile) {
  const std::string stripped = guest("gdbwork-stripped.elf");
  ASSERT_TRUE(SymbolTable::from_elf(read_image(stripped).bytes).empty());
  const SessionPlan plan(with_event("mem:spin_release:r", guest("gdbwork.elf")),
                         read_image(stripped), 1, false);
  ASSERT_EQ(plan.events().size(), 1u);
  const std::uint64_t address = address_in(guest("gdbwork.elf"), "spin_release");
  ASSERT_NE(address, 0u);
  EXPECT_EQ(plan.events().front().attr.addr, address);
  EXPECT_EQ(plan.events().front().attr.len, 4u);  // the symbol's size (uint32_t)
  // Trace, record and --stat name addresses through the same table.
  EXPECT_EQ(plan.symbols().describe(address), "spin_release");
  EXPECT_EQ(plan.symbol_source(), guest("gdbwork.elf"));
}

TEST(SymbolsFile, WithoutItAStrippedImageSaysSo) {
  EXPECT_EQ(plan_error(with_event("mem:spin_release:r"), guest("gdbwork-stripped.elf")),
            "--event 'mem:spin_release:r': cannot look up symbol 'spin_release' in " +
                guest("gdbwork-stripped.elf") +
                ": the image has no symbol table (was it stripped?); give an address instead "
                "(mem:0x...) or the unstripped build with --symbols FILE");
}

TEST(SymbolsFile, AMissingFileIsOneLine) {
  EXPECT_EQ(plan_error(with_event("mem:spin_release", "/nonexistent/gdbwork.elf"),
                       guest("gdbwork-stripped.elf")),
            "--symbols: cannot read /nonexistent/gdbwork.elf: No such file or directory; give an "
            "ELF with a symbol table, such as the unstripped build of the image");
}

TEST(SymbolsFile, ADirectoryIsNotReadable) {
  EXPECT_EQ(plan_error(with_event("mem:spin_release", DRVM_GUEST_DIR), guest("gdbwork.elf")),
            std::string("--symbols: cannot read ") + DRVM_GUEST_DIR +
                ": not a regular file; give an ELF with a symbol table, such as the unstripped "
                "build of the image");
}

TEST(SymbolsFile, ANonElfFileIsRefused) {
  const std::string path = testing::TempDir() + "symbols_not_elf_" + std::to_string(::getpid());
  std::ofstream(path) << "not an ELF file\n";
  EXPECT_EQ(plan_error(with_event("mem:spin_release", path), guest("gdbwork.elf")),
            "--symbols: " + path +
                " is not an ELF file; give an ELF with a symbol table, such as the unstripped "
                "build of the image");
  std::filesystem::remove(path);
}

TEST(SymbolsFile, AStrippedFileHasNoSymbols) {
  EXPECT_EQ(plan_error(with_event("mem:spin_release", guest("gdbwork-stripped.elf")),
                       guest("gdbwork.elf")),
            "--symbols: " + guest("gdbwork-stripped.elf") +
                " has no usable symbols: it has no symbol table (was it stripped?); "
                "give an ELF with a symbol table, such as the unstripped build of the image");
}

TEST(SymbolsFile, ABadFileIsAnErrorEvenWithoutEvents) {
  SessionOptions options;
  options.symbols = "/nonexistent/gdbwork.elf";
  EXPECT_NE(plan_error(options, guest("gdbwork.elf")).find("--symbols: cannot read"),
            std::string::npos);
}

}  // namespace
}  // namespace drvm::vmm::session

// What bootinfo.elf / bootinfo.mb.elf (guestfw/images/bootinfo.c) print for given modules and
// command line, shared by the drvm (vm) and QEMU (qemu) Multiboot tests. Module addresses follow
// the QEMU layout drvm copies: the module list and strings in the page after the image, each
// module at the next 4 KiB boundary.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "elf_symbols.hpp"
#include "guest_images.hpp"

namespace drvm::test {

struct TestModule {
  std::string path;
  std::string args;  // "" or the text after the file name
  std::string content;
  std::string spec() const { return args.empty() ? path : path + " " + args; }
};

// The modules' files, written in the temporary directory and removed with this object.
class TestModules {
 public:
  explicit TestModules(std::vector<TestModule> modules) : modules_(std::move(modules)) {
    for (TestModule& module : modules_) {
      module.path = fmt::format("{}drvm_mb_{}_{}", ::testing::TempDir(), ::getpid(), module.path);
      std::ofstream(module.path, std::ios::binary) << module.content;
    }
  }
  ~TestModules() {
    for (const TestModule& module : modules_) ::unlink(module.path.c_str());
  }
  TestModules(const TestModules&) = delete;
  TestModules& operator=(const TestModules&) = delete;

  const std::vector<TestModule>& list() const { return modules_; }
  // --initrd / -initrd: "FILE ARGS,FILE".
  std::string option() const {
    std::string out;
    for (const TestModule& module : modules_) out += (out.empty() ? "" : ",") + module.spec();
    return out;
  }

 private:
  std::vector<TestModule> modules_;
};

inline std::uint32_t fnv1a(const std::string& bytes) {
  std::uint32_t hash = 2166136261u;
  for (unsigned char c : bytes) hash = (hash ^ c) * 16777619u;
  return hash;
}

inline std::uint64_t page_up(std::uint64_t value) {
  return (value + 4095) & ~std::uint64_t{4095};
}

// The protocol line, the command line and the module lines. `layout_image` names the ELF64 image
// whose __image_end decides the addresses: "bootinfo" (PVH) or "bootinfo.mb64" (the ELF64 that
// bootinfo.mb.elf was converted from, with the same layout).
inline std::string bootinfo_modules_output(const std::string& layout_image,
                                           const std::string& cmdline,
                                           const std::vector<TestModule>& modules) {
  const auto image_end = elf_symbol_address(guest_image_path(layout_image), "__image_end");
  if (!image_end) throw std::runtime_error(layout_image + ".elf has no __image_end");
  const bool multiboot = layout_image != "bootinfo";
  std::string out = fmt::format("bootinfo: {}\ncmdline: {}\nmodules: {}\n",
                                multiboot ? "multiboot" : "pvh", cmdline, modules.size());
  std::uint64_t next = page_up(*image_end) + 4096;  // after the list and the strings
  for (std::size_t i = 0; i < modules.size(); ++i) {
    const TestModule& module = modules[i];
    out += fmt::format("module {}: {:#x}-{:#x} size {} string \"{}\" fnv1a {:08x} first", i, next,
                       next + module.content.size(), module.content.size(), module.spec(),
                       fnv1a(module.content));
    for (std::size_t b = 0; b < module.content.size() && b < 8; ++b) {
      out += fmt::format(" {:02x}", static_cast<unsigned char>(module.content[b]));
    }
    out += " aligned\n";
    next = page_up(next + module.content.size());
  }
  return out;
}

}  // namespace drvm::test

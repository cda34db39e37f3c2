#include "qemu_spellings.hpp"

#include <fmt/format.h>

#include <array>
#include <utility>

namespace drvm::cli {

namespace {

struct Spelling {
  std::string_view qemu;  // as typed, with its single dash
  std::string_view instead;
};

// drvm run has no single-dash long options, so none of these can mean anything else.
constexpr std::array kSpellings = {
    Spelling{"-kernel", "give the image as the first argument: drvm run IMAGE"},
    Spelling{"-append", "give the guest's command line with --cmdline STR"},
    Spelling{"-m", "give guest RAM with --mem SIZE (a bare number is MiB, as with -m)"},
    Spelling{"-initrd", "give the initial ramdisk with --initrd FILE"},
    Spelling{"-s", "serve gdb with --gdb 1234"},
    Spelling{"-S",
             "--gdb PORT already holds the guest at its first instruction until gdb continues "
             "(--gdb-no-wait runs it at once)"},
    Spelling{"-gdb", "serve gdb with --gdb [HOST:]PORT (tcp::1234 is --gdb 1234)"},
    Spelling{
        "-serial",
        "COM1 goes to stdout by default (-serial stdio); write it to a file with --serial FILE"},
    Spelling{"-nographic", "drvm has no display and COM1 is on stdout already; drop it"},
    Spelling{"-display", "drvm has no display and COM1 is on stdout already; drop it"},
    Spelling{"-smp", "give the vCPU count with --cpus N"},
    Spelling{"-no-reboot",
             "drvm never reboots: a triple fault ends the run with status 8; drop it"},
    Spelling{"-device",
             "drvm's devices are fixed: COM1 and QEMU's isa-debug-exit at port 0xf4 (status "
             "(v << 1) | 1); drop it"},
    Spelling{"-vga", "drvm has no display and COM1 is on stdout already; drop it"},
    Spelling{"-d",
             "drvm has no QEMU log; --trace-io logs port and MMIO accesses, --gdb and --event "
             "watch the guest"},
    Spelling{"-D", "drvm has no QEMU log; --trace-io logs port and MMIO accesses to stderr"},
    Spelling{"-cpu", "the vCPU is the host's CPU as KVM reports it; drop it"},
    Spelling{"-machine", "drvm has one machine (COM1 and the exit port); drop it"},
    Spelling{"-M", "drvm has one machine (COM1 and the exit port); drop it"},
    Spelling{"-enable-kvm", "drvm always runs on KVM; drop it"},
    Spelling{"-accel", "drvm always runs on KVM; drop it"},
};

}  // namespace

std::optional<std::string> qemu_spelling_hint(std::span<const std::string_view> args) {
  for (const std::string_view arg : args) {
    if (arg == "--") break;
    const std::string_view name = arg.substr(0, arg.find('='));
    for (const Spelling& spelling : kSpellings) {
      if (name == spelling.qemu) {
        return fmt::format("run: '{}' is QEMU's spelling; {}", spelling.qemu, spelling.instead);
      }
    }
  }
  return std::nullopt;
}

}  // namespace drvm::cli

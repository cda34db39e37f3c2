// Runs a guest image in-process under a Machine with a DebugController, capturing its serial
// output: the fixture of the debug-register virtualization tests.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "elf_symbols.hpp"
#include "process.hpp"
#include "vmm/debug/debug_controller.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/machine.hpp"
#include "vmm/probe/probe.hpp"

namespace drvm::test {

inline const std::string kDebugworkImage = std::string(DRVM_GUEST_DIR) + "/debugwork.elf";

// Every test needs /dev/kvm; the probe runs once per process.
inline const vmm::System* kvm_system() {
  static std::unique_ptr<vmm::System> system = [] {
    try {
      return std::make_unique<vmm::System>(vmm::System::open());
    } catch (const std::exception&) {
      return std::unique_ptr<vmm::System>();
    }
  }();
  return system.get();
}

#define DRVM_REQUIRE_KVM()                                                           \
  do {                                                                               \
    if (::drvm::test::kvm_system() == nullptr) GTEST_SKIP() << "no usable /dev/kvm"; \
  } while (0)

// A host event on every vCPU (owner: a counting session unless given).
inline bp::EventSpec host_event(std::uint64_t address, std::uint32_t len, bp::BpType type,
                                bp::TargetId owner = vmm::debug::kSessionOwner) {
  bp::EventSpec s;
  s.attr = bp::BpAttr{address, len, type};
  s.binding = bp::Binding::target_all(owner);
  return s;
}

inline bp::EventId create(vmm::debug::DebugController& controller, const bp::EventSpec& s) {
  auto id = controller.create_event(s);
  EXPECT_TRUE(id.ok()) << bp::error_message(id.error());
  return id.ok() ? id.value() : bp::EventId{};
}

inline std::uint64_t count(vmm::debug::DebugController& controller, bp::EventId id) {
  auto reading = controller.read_event(id);
  EXPECT_TRUE(reading.ok());
  return reading.ok() ? reading.value().value : 0;
}

class GuestRun {
 public:
  // `probe` defaults to the process-wide probe, run when the controller first needs it; `log`
  // receives the controller's warnings.
  GuestRun(const std::string& image_path, const std::string& cmdline, bool exact,
           std::uint32_t slots = 64, vmm::debug::ProbeSource probe = {}, std::FILE* log = stderr)
      : serial_fd_(::memfd_create("serial", 0)),
        image_(vmm::read_image(image_path)),
        machine_(*kvm_system(), config(cmdline, serial_fd_)),
        controller_(machine_, probe ? std::move(probe) : vmm::debug::probe_on_demand(*kvm_system()),
                    vmm::debug::DebugOptions{exact, slots, log}, &image_) {
    machine_.boot(image_);
  }
  ~GuestRun() { ::close(serial_fd_); }

  vmm::debug::DebugController& controller() { return controller_; }
  vmm::Machine& machine() { return machine_; }
  const vmm::BootImage& image() const { return image_; }

  vmm::RunOutcome run(double seconds = 60) {
    return machine_.run(std::chrono::duration<double>(seconds));
  }
  std::string output() const { return test::read_from_start(serial_fd_); }
  std::uint64_t symbol(std::string_view name) const {
    const auto address = elf_symbol_address(image_.name, name);
    EXPECT_TRUE(address.has_value()) << name;
    return address.value_or(0);
  }

 private:
  static vmm::MachineConfig config(const std::string& cmdline, int serial_fd) {
    vmm::MachineConfig c;
    c.memory_size = 64ULL << 20;
    c.cmdline = cmdline;
    c.serial_out_fd = serial_fd;
    return c;
  }

  int serial_fd_;
  vmm::BootImage image_;
  vmm::Machine machine_;
  vmm::debug::DebugController controller_;
};

}  // namespace drvm::test

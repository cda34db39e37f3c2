// What `drvm run` knows about a counting session before the machine exists: the checked flags,
// the image's symbols and the resolved events, and the slot count the debug controller must use.
// Building it is where every bad --event is refused, before the guest runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/boot/image.hpp"
#include "vmm/debug/debug_controller.hpp"
#include "vmm/session/event_plan.hpp"
#include "vmm/session/session_options.hpp"
#include "vmm/session/symbol_table.hpp"

namespace drvm::vmm::session {

class SessionPlan {
 public:
  // Throws OptionError (flag combinations, an unusable --symbols FILE) or PlanError (specs,
  // pinned budget); both are vmm::SetupError. An empty plan (no --event) is valid and inactive.
  // Needs no KVM: `drvm run` builds it before opening /dev/kvm.
  SessionPlan(SessionOptions options, const BootImage& image, unsigned vcpus, bool gdb_attached);

  bool active() const { return options_.active(); }
  // Sets DebugOptions::slots when the session decides it (see SessionOptions::debug_slots).
  void configure(debug::DebugOptions& debug_options) const;

  const SessionOptions& options() const { return options_; }
  const std::vector<PlannedEvent>& events() const { return events_; }
  const SymbolTable& symbols() const { return symbols_; }
  const std::string& image_name() const { return image_name_; }
  // Where symbols() came from: the image, or the --symbols FILE.
  const std::string& symbol_source() const { return symbol_source_; }
  unsigned vcpus() const { return vcpus_; }

 private:
  SessionOptions options_;
  std::string image_name_;
  std::string symbol_source_;
  unsigned vcpus_;
  std::optional<std::uint32_t> slots_;
  SymbolTable symbols_;
  std::vector<PlannedEvent> events_;
};

}  // namespace drvm::vmm::session

#include "vmm/session/session_plan.hpp"

namespace drvm::vmm::session {

SessionPlan::SessionPlan(SessionOptions options, const BootImage& image, unsigned vcpus,
                         bool gdb_attached)
    : options_(std::move(options)), image_name_(image.name), vcpus_(vcpus) {
  options_.finalize();
  (void)gdb_attached;  // the slot default no longer depends on it
  slots_ = options_.debug_slots();
  if (!options_.active()) return;
  symbols_ = SymbolTable::from_elf(image.bytes);
  // The budget pinned events must fit: the slots the controller will have.
  const std::uint32_t slots = slots_.value_or(debug::DebugOptions{}.slots);
  events_ = plan_events(options_.events, symbols_, PlanLimits{image_name_, vcpus_, slots});
}

void SessionPlan::configure(debug::DebugOptions& debug_options) const {
  if (slots_) debug_options.slots = *slots_;
}

}  // namespace drvm::vmm::session

// Turns `--event` specs into breakpoint attributes for this image and machine, before the guest
// runs: symbols and their sizes from the ELF symbol table, the length rules, bpcore's attribute
// checks, vCPU indices, and the pinned events' slot budget.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bpcore/attributes.hpp"
#include "bpcore/event_spec.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/session/symbol_table.hpp"

namespace drvm::vmm::session {

// A setup error (status 2 before the guest runs); what() is the message without "drvm: ".
class PlanError : public SetupError {
 public:
  using SetupError::SetupError;
};

struct PlannedEvent {
  bp::EventRequest request;
  bp::BpAttr attr;
};

struct PlanLimits {
  std::string image_name;  // for messages
  unsigned vcpus = 1;
  unsigned slots = 4;
};

// Throws PlanError for the first bad spec ("--event 'SPEC': cause; fix") or an over-committed
// pinned set (naming its events).
std::vector<PlannedEvent> plan_events(const std::vector<std::string>& specs,
                                      const SymbolTable& symbols, const PlanLimits& limits);

// Resolves one parsed spec; throws bp::SpecError.
bp::BpAttr resolve_attr(const bp::EventRequest& request, const SymbolTable& symbols,
                        const std::string& image_name);

}  // namespace drvm::vmm::session

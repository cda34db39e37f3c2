#include "vmm/session/event_plan.hpp"

#include <fmt/format.h>

#include "bpcore/result.hpp"

namespace drvm::vmm::session {
namespace {

std::uint64_t symbol_address(const bp::EventRequest& request, const SymbolTable& symbols,
                             const std::string& image_name, std::uint64_t& size) {
  const std::vector<const Symbol*> found = symbols.find(request.symbol);
  if (found.empty()) {
    if (symbols.empty()) {
      throw bp::SpecError(
          fmt::format("cannot look up symbol '{}' in {}: {}; give an address instead (mem:0x...) "
                      "or the unstripped build with --symbols FILE",
                      request.symbol, image_name, symbols.problem()));
    }
    throw bp::SpecError(fmt::format(
        "symbol '{}' is not in {}'s symbol table; check the name (nm {}) or give an address",
        request.symbol, image_name, image_name));
  }
  if (found.size() > 1) {
    std::string where;
    for (const Symbol* symbol : found) where += fmt::format(" {:#x}", symbol->address);
    throw bp::SpecError(fmt::format(
        "symbol '{}' is defined {} times in {} (at{}); give the address of the one you mean",
        request.symbol, found.size(), image_name, where));
  }
  size = found.front()->size;
  return found.front()->address;
}

std::uint32_t default_length(const bp::EventRequest& request, std::uint64_t symbol_size) {
  if (request.length) return *request.length;
  if (request.symbol.empty()) {
    throw bp::SpecError(
        "an address needs a length; add /1, /2, /4 or /8 before the access type (mem:ADDR/4:w)");
  }
  if (symbol_size == 1 || symbol_size == 2 || symbol_size == 4 || symbol_size == 8) {
    return static_cast<std::uint32_t>(symbol_size);
  }
  if (symbol_size == 0) {
    throw bp::SpecError(fmt::format(
        "symbol '{}' has no size in the symbol table; give the length to watch (mem:{}/4)",
        request.symbol, request.symbol));
  }
  throw bp::SpecError(fmt::format(
      "symbol '{}' is {} bytes, more than one watch covers; give the part to watch, e.g. "
      "mem:{}/8 or mem:{}+8/8",
      request.symbol, symbol_size, request.symbol, request.symbol));
}

}  // namespace

bp::BpAttr resolve_attr(const bp::EventRequest& request, const SymbolTable& symbols,
                        const std::string& image_name) {
  std::uint64_t symbol_size = 0;
  const std::uint64_t base = request.symbol.empty()
                                 ? request.address
                                 : symbol_address(request, symbols, image_name, symbol_size);
  const std::uint64_t address = base + request.offset;
  if (address < base) {
    throw bp::SpecError(
        fmt::format("address {:#x} + offset {:#x} wraps past 2^64; use a smaller offset", base,
                    request.offset));
  }
  const bp::BpAttr attr{address, default_length(request, symbol_size), request.type};
  if (const bp::Result<void> valid = bp::validate(attr); !valid) {
    switch (valid.error()) {
      case bp::Error::kMisaligned:
        throw bp::SpecError(fmt::format(
            "address {:#x} is not a multiple of the length {}; watch an aligned address "
            "(x86 ignores the low address bits) or a shorter length",
            address, attr.len));
      case bp::Error::kNonCanonical:
        throw bp::SpecError(fmt::format(
            "address {:#x} is not canonical (bits 63..47 differ), so no access can match it; "
            "check the address",
            address));
      default:
        throw bp::SpecError(fmt::format("{}; check the spec", bp::error_message(valid.error())));
    }
  }
  return attr;
}

std::vector<PlannedEvent> plan_events(const std::vector<std::string>& specs,
                                      const SymbolTable& symbols, const PlanLimits& limits) {
  std::vector<PlannedEvent> events;
  for (const std::string& spec : specs) {
    try {
      bp::EventRequest request = bp::parse_event_spec(spec);
      if (request.vcpu && *request.vcpu >= limits.vcpus) {
        throw bp::SpecError(fmt::format(
            "vcpu={} but the machine has {} vCPU{}; give vcpu=0{} or drop the option to count "
            "on every vCPU",
            *request.vcpu, limits.vcpus, limits.vcpus == 1 ? "" : "s",
            limits.vcpus == 1 ? "" : fmt::format(" .. vcpu={}", limits.vcpus - 1)));
      }
      const bp::BpAttr attr = resolve_attr(request, symbols, limits.image_name);
      events.push_back(PlannedEvent{std::move(request), attr});
    } catch (const bp::SpecError& error) {
      throw PlanError(fmt::format("--event '{}': {}", spec, error.what()));
    }
  }
  // Pinned events must all fit on every vCPU they apply to, or the guest must not start.
  for (unsigned vcpu = 0; vcpu < limits.vcpus; ++vcpu) {
    std::vector<const PlannedEvent*> pinned;
    for (const PlannedEvent& event : events) {
      if (event.request.pinned && (!event.request.vcpu || *event.request.vcpu == vcpu)) {
        pinned.push_back(&event);
      }
    }
    if (pinned.size() <= limits.slots) continue;
    std::string names;
    for (const PlannedEvent* event : pinned) {
      names += fmt::format("{}'{}'", names.empty() ? "" : ", ", event->request.text);
    }
    throw PlanError(fmt::format(
        "--event: {} pinned events need {} slots on vCPU {} but there are {} ({}); make some "
        "of them flexible (drop ',pinned') or raise --slots (at most 60)",
        pinned.size(), pinned.size(), vcpu, limits.slots, names));
  }
  return events;
}

}  // namespace drvm::vmm::session

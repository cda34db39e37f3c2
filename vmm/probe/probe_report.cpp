#include "vmm/probe/probe_report.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstring>
#include <iterator>
#include <optional>

namespace drvm::vmm {

namespace {

std::string cost_text(const std::optional<double>& cost) {
  return cost ? fmt::format("{:.1f} us", *cost) : "not measured (mechanism unavailable)";
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_number(const std::optional<double>& value) {
  return value ? fmt::format("{:.2f}", *value) : "null";
}

}  // namespace

std::string format_probe_table(const ProbeResult& result) {
  const HostFacts& host = result.host;
  std::string out;
  auto out_it = std::back_inserter(out);
  fmt::format_to(out_it, "host     {} {}\n", host.cpu_vendor, host.cpu_model);
  fmt::format_to(out_it, "kvm      module {}, API version {}\n", host.kvm_module, host.api_version);
  fmt::format_to(
      out_it,
      "caps     NR_VCPUS {}, MAX_VCPUS {}, NR_MEMSLOTS {}, SET_GUEST_DEBUG {}, "
      "DEBUGREGS {},\n         READONLY_MEM {}, IMMEDIATE_EXIT {}, EXCEPTION_PAYLOAD {}\n\n",
      host.nr_vcpus, host.max_vcpus, host.nr_memslots, host.set_guest_debug, host.debugregs,
      host.readonly_mem, host.immediate_exit, host.exception_payload);

  std::size_t label_width = std::strlen("probe");
  for (const FindingField& field : finding_fields()) {
    label_width = std::max(label_width, std::strlen(field.label));
  }
  fmt::format_to(out_it, "{:<{}}  {:<6} {}\n", "probe", label_width, "answer", "observed");
  for (const FindingField& field : finding_fields()) {
    const Finding& finding = result.*field.member;
    fmt::format_to(out_it, "{:<{}}  {:<6} {}\n", field.label, label_width,
                   answer_name(finding.answer), finding.detail);
  }
  fmt::format_to(out_it,
                 "\ncosts    single-step exit {}, MMIO exit {}, memslot delete+recreate {}\n",
                 cost_text(result.costs.single_step_exit_us), cost_text(result.costs.mmio_exit_us),
                 cost_text(result.costs.memslot_recreate_us));
  fmt::format_to(out_it, "probe    {:.0f} ms in total\n", result.probe_ms);
  return out;
}

std::string format_probe_json(const ProbeResult& result) {
  const HostFacts& host = result.host;
  std::string out;
  auto out_it = std::back_inserter(out);
  fmt::format_to(out_it, "{{\n  \"schema\": 1,\n  \"host\": {{\n");
  fmt::format_to(out_it, "    \"cpu_vendor\": {},\n    \"cpu_model\": {},\n",
                 json_string(host.cpu_vendor), json_string(host.cpu_model));
  fmt::format_to(out_it, "    \"kvm_module\": {},\n    \"api_version\": {},\n",
                 json_string(host.kvm_module), host.api_version);
  fmt::format_to(out_it,
                 "    \"caps\": {{\"nr_vcpus\": {}, \"max_vcpus\": {}, \"nr_memslots\": {}, "
                 "\"set_guest_debug\": {}, \"debugregs\": {}, \"readonly_mem\": {}, "
                 "\"immediate_exit\": {}, \"exception_payload\": {}}}\n  }},\n",
                 host.nr_vcpus, host.max_vcpus, host.nr_memslots, host.set_guest_debug,
                 host.debugregs, host.readonly_mem, host.immediate_exit, host.exception_payload);
  fmt::format_to(out_it, "  \"findings\": {{\n");
  const auto fields = finding_fields();
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const Finding& finding = result.*fields[i].member;
    fmt::format_to(out_it, "    \"{}\": {{\"answer\": \"{}\", \"detail\": {}}}{}\n", fields[i].key,
                   answer_name(finding.answer), json_string(finding.detail),
                   i + 1 < fields.size() ? "," : "");
  }
  fmt::format_to(out_it, "  }},\n");
  fmt::format_to(out_it,
                 "  \"costs_us\": {{\"single_step_exit\": {}, \"mmio_exit\": {}, "
                 "\"memslot_recreate\": {}}},\n",
                 json_number(result.costs.single_step_exit_us),
                 json_number(result.costs.mmio_exit_us),
                 json_number(result.costs.memslot_recreate_us));
  fmt::format_to(out_it, "  \"probe_ms\": {:.1f}\n}}\n", result.probe_ms);
  return out;
}

}  // namespace drvm::vmm

#include "vmm/session/hit_log.hpp"

#include <iterator>

#include "vmm/session/json_text.hpp"

namespace drvm::vmm::session {
namespace {

// A buffer is written out once it holds this much: a few hundred lines per write.
constexpr std::size_t kFlushThreshold = 32 * 1024;
// ... or once its oldest line is this old.
constexpr std::chrono::milliseconds kFlushAge{100};

// The address as a JSON string. fmt::memory_buffer keeps short names inline: no allocation.
void append_symbolized(fmt::memory_buffer& out, const SymbolTable& symbols, std::uint64_t address) {
  fmt::memory_buffer name;
  symbols.append_address(name, address);
  append_json_string(out, std::string_view(name.data(), name.size()));
}

}  // namespace

void append_trace_line(fmt::memory_buffer& out, const TraceHit& hit, const SymbolTable& symbols) {
  auto it = std::back_inserter(out);
  fmt::format_to(it, "drvm: trace: vcpu={} rip=", hit.vcpu);
  symbols.append_address(out, hit.rip);
  fmt::format_to(it, " access={} addr=", hit.access);
  symbols.append_address(out, hit.address);
  fmt::format_to(it, " size={}", hit.size);
  if (hit.old_value) fmt::format_to(it, " old={:#x}", *hit.old_value);
  if (hit.new_value) fmt::format_to(it, " new={:#x}", *hit.new_value);
  fmt::format_to(it, " event={} count={}{}\n", hit.event, hit.count, hit.sample ? " sample" : "");
}

void append_record_line(fmt::memory_buffer& out, const TraceHit& hit, const SymbolTable& symbols) {
  auto it = std::back_inserter(out);
  fmt::format_to(it, "{{\"vcpu\":{},\"event\":", hit.vcpu);
  append_json_string(out, hit.event);
  fmt::format_to(it, ",\"count\":{},\"sample\":{},\"rip\":\"{:#x}\",\"rip_symbol\":", hit.count,
                 hit.sample, hit.rip);
  append_symbolized(out, symbols, hit.rip);
  fmt::format_to(it, ",\"access\":\"{}\",\"address\":\"{:#x}\",\"address_symbol\":", hit.access,
                 hit.address);
  append_symbolized(out, symbols, hit.address);
  fmt::format_to(it, ",\"size\":{}", hit.size);
  if (hit.old_value) fmt::format_to(it, ",\"old\":\"{:#x}\"", *hit.old_value);
  if (hit.new_value) fmt::format_to(it, ",\"new\":\"{:#x}\"", *hit.new_value);
  fmt::format_to(it, "}}\n");
}

HitLog::HitLog(std::FILE* sink, Format format, const SymbolTable& symbols, unsigned vcpus)
    : sink_(sink), format_(format), symbols_(symbols), buffers_(vcpus) {
  for (Buffer& buffer : buffers_) buffer.text.reserve(kFlushThreshold + 1024);
}

HitLog::~HitLog() {
  flush();
}

void HitLog::add(const TraceHit& hit) {
  Buffer& buffer = buffers_.at(hit.vcpu);
  const auto now = std::chrono::steady_clock::now();
  if (buffer.text.size() == 0) buffer.first_line = now;
  if (format_ == Format::kTrace) {
    append_trace_line(buffer.text, hit, symbols_);
  } else {
    append_record_line(buffer.text, hit, symbols_);
  }
  if (buffer.text.size() >= kFlushThreshold || now - buffer.first_line >= kFlushAge) {
    write(buffer);
    if (std::fflush(sink_) != 0) ok_ = false;
  }
}

void HitLog::flush() {
  for (Buffer& buffer : buffers_) write(buffer);
  if (std::fflush(sink_) != 0) ok_ = false;
}

void HitLog::write(Buffer& buffer) {
  if (buffer.text.size() == 0) return;
  if (std::fwrite(buffer.text.data(), 1, buffer.text.size(), sink_) != buffer.text.size()) {
    ok_ = false;
  }
  buffer.text.clear();
}

}  // namespace drvm::vmm::session

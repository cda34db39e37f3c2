// `--trace` lines and `--record` JSON lines, one per hit (one per sample for events with a
// period). Each vCPU formats into its own buffer, which goes to the sink in large writes (or once
// it is 100 ms old, so a slow trickle still shows up), so the hit path neither allocates (once the
// buffers are warm) nor takes a lock per hit.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string_view>
#include <vector>

#include "vmm/session/symbol_table.hpp"

namespace drvm::vmm::session {

struct TraceHit {
  unsigned vcpu = 0;
  std::string_view event;   // the spec as given
  std::uint64_t count = 0;  // the event's count including this hit
  bool sample = false;      // this hit completed a sample period
  std::uint64_t rip = 0;    // execute: the instruction; data: after the access
  // "r", "w" or "x": what the access was; "rw" for a hit of a read or read/write watch whose
  // engine did not see the access (a hardware data breakpoint cannot tell a read from a write).
  std::string_view access = "x";
  std::uint64_t address = 0;
  std::uint32_t size = 1;
  std::optional<std::uint64_t> old_value;  // writes, when the engine saw the memory
  std::optional<std::uint64_t> new_value;
};

// "drvm: trace: vcpu=0 rip=loop+0x9 access=w addr=counter size=4 old=0x0 new=0x1
//  event=mem:counter:w count=1[ sample]\n"
void append_trace_line(fmt::memory_buffer& out, const TraceHit& hit, const SymbolTable& symbols);
// {"vcpu":0,"event":"mem:counter:w","count":1,"sample":false,"rip":"0x...","rip_symbol":"...",
//  "access":"w","address":"0x...","address_symbol":"...","size":4,"old":"0x0","new":"0x1"}\n
void append_record_line(fmt::memory_buffer& out, const TraceHit& hit, const SymbolTable& symbols);

class HitLog {
 public:
  enum class Format { kTrace, kRecord };
  // `sink` must outlive the log; the log does not close it.
  HitLog(std::FILE* sink, Format format, const SymbolTable& symbols, unsigned vcpus);
  ~HitLog();
  HitLog(const HitLog&) = delete;
  HitLog& operator=(const HitLog&) = delete;

  // Only from the thread of vCPU hit.vcpu (or when no vCPU runs).
  void add(const TraceHit& hit);
  // Writes out every buffer; only while no vCPU thread calls add().
  void flush();
  // False once a write to the sink failed (disk full, closed pipe).
  bool ok() const { return ok_; }

 private:
  struct Buffer {
    fmt::memory_buffer text;
    std::chrono::steady_clock::time_point first_line;  // when its oldest unwritten line came
  };
  void write(Buffer& buffer);

  std::FILE* sink_;
  Format format_;
  const SymbolTable& symbols_;
  std::vector<Buffer> buffers_;  // one per vCPU
  bool ok_ = true;
};

}  // namespace drvm::vmm::session

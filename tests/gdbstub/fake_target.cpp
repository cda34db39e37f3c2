#include "fake_target.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace drvm::gdbstub::testing {

FakeTarget::FakeTarget(int threads) : registers_(static_cast<std::size_t>(threads)) {
  for (std::size_t i = 0; i < registers_.size(); ++i) {
    Registers& r = registers_[i];
    r.rax = 0x1111111111111111 * (i + 1);
    r.rip = kMemoryBase + 0x100 * i;
    r.rsp = kMemoryBase + 0x1000;
    r.eflags = 0x202;
    r.cs = 0x10;
    r.ss = r.ds = r.es = 0x18;
    r.fs_base = 0xf5000;
    r.cr0 = 0x80000011;
    r.cr3 = 0x9000;
    r.cr4 = 0x20;
    r.efer = 0x500;
    r.dr7 = 0x401;
    r.dr0 = 0x10040;
  }
  // Byte at offset i holds i & 0xff, so every read shows where it came from.
  static const std::vector<std::uint8_t> pattern = [] {
    std::vector<std::uint8_t> bytes(kMemorySize);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i);
    return bytes;
  }();
  memory_ = pattern;
}

FakeTarget::~FakeTarget() {
  for (std::thread& thread : deliverers_) thread.join();
}

void FakeTarget::set_deliver_from_thread(bool value) {
  std::lock_guard lock(mutex_);
  deliver_from_thread_ = value;
}

void FakeTarget::script_stop(ScriptedStop stop) {
  std::lock_guard lock(mutex_);
  script_.push_back(std::move(stop));
}

void FakeTarget::set_attach_event(StopEvent event) {
  std::lock_guard lock(mutex_);
  attach_event_ = event;
}

void FakeTarget::set_can_reverse(bool value) {
  std::lock_guard lock(mutex_);
  can_reverse_ = value;
}

void FakeTarget::script_reverse(ScriptedReverse reverse) {
  std::lock_guard lock(mutex_);
  reverse_script_.push_back(std::move(reverse));
}

void FakeTarget::deliver(StopHandler handler, StopEvent event) {
  // Called with mutex_ held; the handler only posts, so calling it here is safe.
  if (deliver_from_thread_) {
    deliverers_.emplace_back([handler = std::move(handler), event] { handler(event); });
  } else {
    handler(event);
  }
}

void FakeTarget::attach(StopHandler on_stop) {
  std::lock_guard lock(mutex_);
  ++attaches_;
  last_handler_ = on_stop;
  deliver(std::move(on_stop), attach_event_);
}

void FakeTarget::resume(const ResumeRequest& request, StopHandler on_stop) {
  std::lock_guard lock(mutex_);
  resumes_.push_back(request);
  last_handler_ = on_stop;
  for (std::size_t i = 0; i < request.actions.size(); ++i) {
    if (request.actions[i] == ThreadAction::kStep) {
      registers_[i].rip += 1;
      deliver(std::move(on_stop),
              StopEvent{StopReason::kTrap, static_cast<ThreadId>(i + 1), TrapCause::kStep});
      return;
    }
  }
  if (script_.empty()) {
    pending_ = std::move(on_stop);  // runs until interrupt()
    return;
  }
  ScriptedStop stop = std::move(script_.front());
  script_.pop_front();
  for (std::size_t i = 0; i < stop.write_bytes.size(); ++i) {
    if (mapped(stop.write_address + i)) {
      memory_[stop.write_address + i - kMemoryBase] = stop.write_bytes[i];
    }
  }
  if (stop.event.thread >= 1 && stop.event.thread <= thread_count()) {
    registers_[static_cast<std::size_t>(stop.event.thread) - 1].rip += stop.advance_rip;
  }
  deliver(std::move(on_stop), stop.event);
}

void FakeTarget::interrupt() {
  std::lock_guard lock(mutex_);
  ++interrupts_;
  if (!pending_) return;
  deliver(std::exchange(pending_, {}), StopEvent{StopReason::kInterrupted, 1});
}

bool FakeTarget::can_reverse() const {
  std::lock_guard lock(mutex_);
  return can_reverse_;
}

Status FakeTarget::reverse_resume(ThreadId thread, ThreadAction action, StopHandler on_stop) {
  std::lock_guard lock(mutex_);
  reverse_calls_.push_back({thread, action});
  if (!can_reverse_) return DebugTarget::reverse_resume(thread, action, std::move(on_stop));
  if (thread < 1 || thread > thread_count()) return Status::failure(3, "no such vCPU");
  last_handler_ = on_stop;
  Registers& registers = registers_[static_cast<std::size_t>(thread) - 1];
  if (reverse_script_.empty()) {
    if (action == ThreadAction::kStep) {
      registers.rip -= 1;
      deliver(std::move(on_stop), StopEvent{StopReason::kTrap, thread, TrapCause::kStep});
    } else {
      pending_ = std::move(on_stop);  // runs backwards until interrupt()
    }
    return Status::success();
  }
  ScriptedReverse reverse = std::move(reverse_script_.front());
  reverse_script_.pop_front();
  if (reverse.refusal) return *reverse.refusal;
  if (reverse.rip) registers.rip = *reverse.rip;
  deliver(std::move(on_stop), reverse.event);
  return Status::success();
}

Status FakeTarget::read_registers(ThreadId thread, Registers& out) {
  std::lock_guard lock(mutex_);
  if (thread < 1 || thread > thread_count()) return Status::failure(3, "no such vCPU");
  out = registers_[static_cast<std::size_t>(thread) - 1];
  return Status::success();
}

Status FakeTarget::write_registers(ThreadId thread, const Registers& in) {
  std::lock_guard lock(mutex_);
  if (thread < 1 || thread > thread_count()) return Status::failure(3, "no such vCPU");
  registers_[static_cast<std::size_t>(thread) - 1] = in;
  return Status::success();
}

bool FakeTarget::mapped(std::uint64_t address) const {
  return address >= kMemoryBase && address < kMemoryBase + kMemorySize &&
         !(address >= kHoleBase && address < kHoleBase + kHoleSize);
}

std::size_t FakeTarget::read_memory(ThreadId, std::uint64_t address, std::span<std::uint8_t> out) {
  std::lock_guard lock(mutex_);
  std::size_t done = 0;
  while (done < out.size() && mapped(address + done)) {
    out[done] = memory_[address + done - kMemoryBase];
    ++done;
  }
  return done;
}

std::size_t FakeTarget::write_memory(ThreadId, std::uint64_t address,
                                     std::span<const std::uint8_t> in) {
  std::lock_guard lock(mutex_);
  std::size_t done = 0;
  while (done < in.size() && mapped(address + done)) {
    memory_[address + done - kMemoryBase] = in[done];
    ++done;
  }
  return done;
}

Status FakeTarget::insert_breakpoint(const Breakpoint& breakpoint) {
  std::lock_guard lock(mutex_);
  if (breakpoint.address == kRefusedAddress) return Status::failure(28, "no room for it");
  breakpoints_.push_back(breakpoint);
  return Status::success();
}

Status FakeTarget::remove_breakpoint(const Breakpoint& breakpoint) {
  std::lock_guard lock(mutex_);
  const auto it = std::find(breakpoints_.begin(), breakpoints_.end(), breakpoint);
  if (it == breakpoints_.end()) return Status::failure(2, "not inserted");
  breakpoints_.erase(it);
  return Status::success();
}

std::string FakeTarget::monitor_command(std::string_view command) {
  std::lock_guard lock(mutex_);
  if (command == "big") return std::string(40000, 'x') + "\n";
  if (command == "dr") return fmt::format("{} breakpoints\n", breakpoints_.size());
  return fmt::format("unknown monitor command '{}'\n", command);
}

void FakeTarget::detach() {
  std::lock_guard lock(mutex_);
  ++detaches_;
  breakpoints_.clear();
  pending_ = {};
}

void FakeTarget::disconnect(bool client_sent_packets) {
  std::lock_guard lock(mutex_);
  ++disconnects_;
  last_disconnect_had_packets_ = client_sent_packets;
  breakpoints_.clear();
  pending_ = {};
}

void FakeTarget::kill() {
  std::lock_guard lock(mutex_);
  ++kills_;
  pending_ = {};
}

Registers FakeTarget::registers(ThreadId thread) const {
  std::lock_guard lock(mutex_);
  return registers_.at(static_cast<std::size_t>(thread) - 1);
}

void FakeTarget::set_registers(ThreadId thread, const Registers& registers) {
  std::lock_guard lock(mutex_);
  registers_.at(static_cast<std::size_t>(thread) - 1) = registers;
}

std::uint8_t FakeTarget::memory_byte(std::uint64_t address) const {
  std::lock_guard lock(mutex_);
  return memory_.at(address - kMemoryBase);
}

std::vector<Breakpoint> FakeTarget::breakpoints() const {
  std::lock_guard lock(mutex_);
  return breakpoints_;
}

std::vector<ResumeRequest> FakeTarget::resumes() const {
  std::lock_guard lock(mutex_);
  return resumes_;
}

std::vector<FakeTarget::ReverseCall> FakeTarget::reverse_resumes() const {
  std::lock_guard lock(mutex_);
  return reverse_calls_;
}

int FakeTarget::attach_count() const {
  std::lock_guard lock(mutex_);
  return attaches_;
}

int FakeTarget::detach_count() const {
  std::lock_guard lock(mutex_);
  return detaches_;
}

int FakeTarget::disconnect_count() const {
  std::lock_guard lock(mutex_);
  return disconnects_;
}

bool FakeTarget::last_disconnect_had_packets() const {
  std::lock_guard lock(mutex_);
  return last_disconnect_had_packets_;
}

int FakeTarget::interrupt_count() const {
  std::lock_guard lock(mutex_);
  return interrupts_;
}

int FakeTarget::kill_count() const {
  std::lock_guard lock(mutex_);
  return kills_;
}

bool FakeTarget::running() const {
  std::lock_guard lock(mutex_);
  return static_cast<bool>(pending_);
}

StopHandler FakeTarget::last_handler() const {
  std::lock_guard lock(mutex_);
  return last_handler_;
}

}  // namespace drvm::gdbstub::testing

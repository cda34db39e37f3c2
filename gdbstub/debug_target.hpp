#pragma once
// The interface the gdb stub debugs through. The VMM implements it; the stub never sees KVM.
//
// Threading contract (the VMM must follow it):
//  - Every DebugTarget method is called from the stub's own thread (the GdbServer io thread),
//    never concurrently with another DebugTarget method.
//  - No method may block for long: resume() and interrupt() only request, and the outcome arrives
//    later through the StopHandler given to attach() or resume().
//  - read/write_registers, read/write_memory, insert/remove_breakpoint, monitor_command,
//    resume and reverse_resume are only called while every vCPU is stopped: after a StopHandler
//    has been called and before the next resume()/reverse_resume(). interrupt(), detach(),
//    disconnect() and kill() may be called at any time.
//  - A StopHandler may be called from any thread (typically a vCPU thread), exactly once per
//    attach()/resume() and per reverse_resume() that succeeded (never for one that failed). The
//    stub posts it into its io_context, so calling it never blocks.
//  - After detach(), disconnect() or kill() returns, the target never calls a StopHandler it
//  received earlier
//    (guard the pending handler with a mutex: clear it there, take it out under the same lock
//    before calling it).

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace drvm::gdbstub {

// gdb's thread ids are vCPUs: thread t is vCPU t - 1, t in 1..thread_count().
using ThreadId = int;

// Why the target stopped.
enum class StopReason {
  kTrap,         // breakpoint, watchpoint or finished step: T05
  kInterrupted,  // interrupt() (gdb's Ctrl-C) or attaching to a running guest: T02
  kSignal,       // the guest faulted (triple fault, halt, internal error) and is held for
                 // inspection: T<signal>; resuming it ends the run with its W/X
  kExited,       // the guest left through the exit port (or halted for good): W<status>
  kTerminated,   // the VM died (triple fault, internal error, killed elsewhere): X<signal>
};

// What kind of trap stopped a vCPU; selects the stop reply's watch:/hwbreak:/swbreak: field.
enum class TrapCause {
  kUnspecified,         // plain T05 (also used when the guest is held at its first instruction)
  kStep,                // a requested single step finished
  kSoftwareBreakpoint,  // a Z0 breakpoint: swbreak:
  kHardwareBreakpoint,  // a Z1 breakpoint: hwbreak:
  kWriteWatchpoint,     // a Z2 watchpoint: watch:ADDR
  kReadWatchpoint,      // a Z3 watchpoint: rwatch:ADDR
  kAccessWatchpoint,    // a Z4 watchpoint: awatch:ADDR
};

struct StopEvent {
  StopReason reason = StopReason::kTrap;
  ThreadId thread = 1;                        // the vCPU that caused the stop
  TrapCause cause = TrapCause::kUnspecified;  // for kTrap
  std::uint64_t data_address = 0;             // for the watchpoint causes: the watched address hit
  int exit_status = 0;                        // for kExited: the status gdb shows (0..255)
  int signal = 9;  // for kTerminated and kSignal: the signal gdb shows (9 = SIGKILL)
  // The stop is at the start of the recorded history (a reverse run could go no further back).
  // T replies then carry `replaylog:begin;`: gdb prints "No more reverse-execution history."
  bool history_start = false;
};

using StopHandler = std::function<void(const StopEvent&)>;

// One vCPU's registers in gdb's order and widths (see docs/gdb.md and target_description.cpp).
// Segment registers are the 16-bit selectors zero-extended. The x87 block is what KVM_GET_FPU
// reports; the debug registers are the guest's own view (its virtual DR file), not the hardware
// slots the host uses.
struct Registers {
  std::uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0, rbp = 0, rsp = 0;
  std::uint64_t r8 = 0, r9 = 0, r10 = 0, r11 = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  std::uint64_t rip = 0;
  std::uint32_t eflags = 0;
  std::uint32_t cs = 0, ss = 0, ds = 0, es = 0, fs = 0, gs = 0;
  std::array<std::array<std::uint8_t, 10>, 8> st{};  // st0..st7, 80-bit little-endian
  std::uint32_t fctrl = 0, fstat = 0, ftag = 0, fiseg = 0, fioff = 0, foseg = 0, fooff = 0, fop = 0;
  std::uint64_t fs_base = 0, gs_base = 0, k_gs_base = 0;
  std::uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0, efer = 0;
  std::uint64_t dr0 = 0, dr1 = 0, dr2 = 0, dr3 = 0, dr6 = 0, dr7 = 0;
};

// The Z/z packet's type field.
enum class BreakpointKind {
  kSoftware = 0,  // Z0: instruction breakpoint gdb would otherwise plant as INT3
  kHardware = 1,  // Z1: instruction breakpoint (hbreak)
  kWrite = 2,     // Z2: write watchpoint (watch)
  kRead = 3,      // Z3: read watchpoint (rwatch)
  kAccess = 4,    // Z4: read-or-write watchpoint (awatch)
};

struct Breakpoint {
  BreakpointKind kind = BreakpointKind::kSoftware;
  std::uint64_t address = 0;  // guest virtual address
  std::uint64_t length = 1;   // bytes watched; for Z0/Z1 gdb's "kind" (1 on x86)
  friend bool operator==(const Breakpoint&, const Breakpoint&) = default;
};

// Success, or an error gdb sees as "E<code>" and drvm logs with the message.
class Status {
 public:
  static Status success() { return Status(); }
  static Status failure(int code, std::string message) { return Status(code, std::move(message)); }
  bool ok() const { return code_ == 0; }
  int code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Status() = default;
  Status(int code, std::string message)
      : code_(code == 0 ? 1 : code), message_(std::move(message)) {}
  int code_ = 0;
  std::string message_;
};

// What each vCPU does on resume(); entries are for threads 1..N in order.
enum class ThreadAction { kStayStopped, kContinue, kStep };

struct ResumeRequest {
  std::vector<ThreadAction> actions;
  ThreadAction action_for(ThreadId thread) const {
    return thread >= 1 && static_cast<std::size_t>(thread) <= actions.size()
               ? actions[static_cast<std::size_t>(thread) - 1]
               : ThreadAction::kStayStopped;
  }
};

class DebugTarget {
 public:
  virtual ~DebugTarget() = default;

  // Number of vCPUs; constant for the life of the target.
  virtual int thread_count() const = 0;

  // A gdb client connected: stop every vCPU (if running) and call on_stop once, with kTrap for
  // a guest held at its first instruction, kInterrupted if it had to stop a running guest, or
  // kExited/kTerminated if the guest is already gone. May call on_stop before returning.
  virtual void attach(StopHandler on_stop) = 0;

  // Run the vCPUs as requested (at least one is not kStayStopped); return at once. When any vCPU
  // stops (breakpoint, watchpoint, finished step, interrupt(), exit), stop all of them (all-stop)
  // and call on_stop once. A step executes exactly one instruction, also when a breakpoint sits
  // at the current rip.
  virtual void resume(const ResumeRequest& request, StopHandler on_stop) = 0;

  // Whether this target can run backwards at all (decided once, e.g. false with more than one
  // vCPU). Only announces ReverseContinue+/ReverseStep+ in qSupported: bc/bs reach
  // reverse_resume() either way, so a target that cannot says why through its Status.
  virtual bool can_reverse() const { return false; }

  // gdb's bc (action kContinue: run backwards until a breakpoint, a watchpoint, interrupt() or the
  // start of the history) or bs (kStep: undo exactly one instruction) on `thread` (the Hc thread,
  // or the stopped one). Like resume(): returns at once, all vCPUs stop together and the outcome
  // arrives through on_stop (history_start set when the history ran out). A failure means
  // refused: on_stop is never called, the stub shows the message on gdb's console and answers
  // E<code>, and the target stays where it was.
  virtual Status reverse_resume(ThreadId thread, ThreadAction action, StopHandler on_stop) {
    static_cast<void>(thread);
    static_cast<void>(action);
    static_cast<void>(on_stop);
    return Status::failure(kReverseUnsupportedCode,
                           "reverse execution is not supported by this target");
  }
  // The default refusal's code: ENOSYS.
  static constexpr int kReverseUnsupportedCode = 0x26;

  // Async request to stop a running target; the pending handler then reports kInterrupted
  // (or the stop that won the race). No effect while stopped.
  virtual void interrupt() = 0;

  virtual Status read_registers(ThreadId thread, Registers& out) = 0;
  virtual Status write_registers(ThreadId thread, const Registers& in) = 0;

  // Guest virtual addresses, translated through the page tables of the thread's vCPU. Return the
  // number of bytes transferred from the start: fewer than asked means the byte after them is not
  // accessible (unmapped page); never throw for a bad address.
  virtual std::size_t read_memory(ThreadId thread, std::uint64_t address,
                                  std::span<std::uint8_t> out) = 0;
  virtual std::size_t write_memory(ThreadId thread, std::uint64_t address,
                                   std::span<const std::uint8_t> in) = 0;

  // Breakpoints apply to every vCPU. Any number may be inserted; the target's breakpoint manager
  // decides whether it can and answers with a Status. Removing one not inserted is an error.
  virtual Status insert_breakpoint(const Breakpoint& breakpoint) = 0;
  virtual Status remove_breakpoint(const Breakpoint& breakpoint) = 0;

  // `monitor COMMAND` (qRcmd): the text to print in gdb (may be empty).
  virtual std::string monitor_command(std::string_view command) = 0;

  // Remove every breakpoint gdb inserted and let all vCPUs run freely (also when the client
  // vanished). Drops the pending StopHandler, if any.
  virtual void detach() = 0;

  // The client went away without detaching (closed its connection, crashed, or only probed the
  // port): remove every breakpoint gdb inserted and drop the pending StopHandler, but leave the
  // vCPUs as they are, as QEMU does: a stopped guest stays stopped until the next gdb attaches
  // and resumes it; a running one runs on. `client_sent_packets` false: the connection sent
  // nothing at all (a script probing the port), so the target returns to its state before
  // attach(): a running guest that attach() stopped runs on; a held one stays held.
  virtual void disconnect(bool client_sent_packets) = 0;

  // gdb's kill: end the guest (drvm exits with status 12). Drops the pending StopHandler. Must not
  // call GdbServer::stop() synchronously (it would join the thread kill() runs on).
  virtual void kill() = 0;
};

}  // namespace drvm::gdbstub

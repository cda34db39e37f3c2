// COM1: a 16550 UART on the port bus. Transmit goes to an output fd through a buffer (flushed at
// newline, when full, and whenever the run loop asks); receive polls an input fd without
// blocking. Interrupts as QEMU's 16550 raises them: "received data available" (IER bit 0) while
// the receive buffer holds a byte, and "transmitter holding register empty" (IER bit 1) after each
// transmitted byte and when that enable is turned on; IIR reports the highest-priority one and
// reading IIR acknowledges THR-empty. The IRQ output (IRQ 4) is driven through a callback, level
// high while an enabled interrupt is pending (MCR.OUT2 is not a gate, as in QEMU).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "vmm/devices/io_bus.hpp"

namespace drvm::vmm {

// Buffered, thread-safe byte sink for the guest's serial stream. Writes are byte-exact.
class SerialOutput {
 public:
  // log: where the first write error is reported (once); nullptr: not reported.
  explicit SerialOutput(int fd, std::FILE* log = nullptr) : fd_(fd), log_(log) {}
  SerialOutput(const SerialOutput&) = delete;
  SerialOutput& operator=(const SerialOutput&) = delete;
  ~SerialOutput() { flush(); }

  void put(std::uint8_t byte);
  void flush();
  // The errno of the first failed write, 0 when every byte was written. After a failure the rest
  // of the stream is dropped (the guest keeps running); the caller ends the run with an error.
  int error();

 private:
  void flush_locked();

  int fd_;
  std::FILE* log_;
  int error_ = 0;
  std::mutex mutex_;
  std::string buffer_;
};

class Uart16550 final : public PortDevice {
 public:
  static constexpr std::uint16_t kCom1Base = 0x3f8;
  static constexpr std::uint16_t kRegisterCount = 8;
  static constexpr std::uint32_t kCom1Irq = 4;

  // Drives the IRQ output: called with the new level whenever it changes, under the UART's lock.
  using IrqLine = std::function<void(bool level)>;

  // input_fd < 0: no input. The input fd is polled, never made non-blocking (it may be shared).
  Uart16550(SerialOutput& output, int input_fd, IrqLine irq = {})
      : output_(output), input_fd_(input_fd), irq_(std::move(irq)) {}

  // PortDevice (any vCPU thread). Wider reads see the register in the low byte, the bus floats
  // high above it; wider writes use the low byte.
  std::uint32_t port_read(unsigned vcpu, std::uint16_t offset, unsigned size) override;
  void port_write(unsigned vcpu, std::uint16_t offset, unsigned size, std::uint32_t value) override;

  // For the input thread: whether the guest waits for input by interrupt (receive interrupt on,
  // buffer empty, input still open), and a non-blocking read of what the fd has, which raises the
  // receive interrupt if any byte came.
  bool wants_input();
  void pump_input();
  // Whether the UART can still raise an interrupt the guest has not seen: the receive interrupt
  // is enabled and input is still open or buffered (the halt rules in docs/vmm.md).
  bool can_interrupt();
  int input_fd();

  // What the guest can observe of the UART (registers, pending THR-empty interrupt, the bytes
  // received and not yet read), for snapshots. The host side (fds, output buffer) is not part.
  struct State {
    std::uint8_t ier = 0, lcr = 0, mcr = 0, scr = 0, fcr = 0, dll = 0, dlm = 0;
    bool thr_interrupt = false;
    std::vector<std::uint8_t> input;
    bool operator==(const State&) const = default;
  };
  State save();
  // Puts the UART back in `state` and drives the IRQ line to the level that state implies, even
  // when the UART believes it is already there: call it after the interrupt controllers have been
  // restored, whose idea of the line may differ.
  void restore(const State& state);

  // The registers without the lock (tests and callers that hold no other thread).
  std::uint8_t read(std::uint16_t offset);
  void write(std::uint16_t offset, std::uint8_t value);

 private:
  bool input_ready();
  bool read_input_fd();
  std::uint8_t pending_iir() const;
  void update_irq();
  bool dlab() const { return (lcr_ & 0x80) != 0; }

  std::mutex mutex_;  // every vCPU thread and the input thread may touch the UART
  SerialOutput& output_;
  int input_fd_;
  IrqLine irq_;
  bool irq_level_ = false;
  bool thr_interrupt_ = false;  // THR-empty interrupt pending (until IIR is read or THR written)
  // Polling drivers read LSR before every byte they send: look for input at most once per
  // interval instead of one poll() per read.
  std::chrono::steady_clock::time_point next_input_poll_{};
  std::deque<std::uint8_t> input_;
  std::uint8_t ier_ = 0, lcr_ = 0x03, mcr_ = 0, scr_ = 0, fcr_ = 0;
  std::uint8_t dll_ = 0x01, dlm_ = 0;  // 115200 baud
};

// Whether drvm should read the guest's serial input from fd: a terminal, a pipe or a regular
// file (`drvm run img < input.txt`); never /dev/null or other devices.
bool usable_serial_input(int fd);

}  // namespace drvm::vmm

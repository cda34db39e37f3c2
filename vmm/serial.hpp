// COM1: a 16550 UART as polling drivers see it. Transmit goes to an output fd through a buffer
// (flushed at newline, when full, and whenever the run loop asks); receive polls an input fd
// without blocking. No interrupts are raised: drvm has no interrupt controller yet.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>

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

class Uart16550 {
 public:
  static constexpr std::uint16_t kCom1Base = 0x3f8;
  static constexpr std::uint16_t kRegisterCount = 8;

  // input_fd < 0: no input. The input fd is polled, never made non-blocking (it may be shared).
  Uart16550(SerialOutput& output, int input_fd) : output_(output), input_fd_(input_fd) {}

  std::uint8_t read(std::uint16_t offset);
  void write(std::uint16_t offset, std::uint8_t value);

 private:
  bool input_ready();
  bool dlab() const { return (lcr_ & 0x80) != 0; }

  SerialOutput& output_;
  int input_fd_;
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

#include "vmm/devices/serial.hpp"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace drvm::vmm {

namespace {
constexpr std::size_t kFlushThreshold = 4096;

// Register offsets from the base port.
constexpr std::uint16_t kData = 0;  // RBR / THR, or DLL with DLAB
constexpr std::uint16_t kIer = 1;   // or DLM with DLAB
constexpr std::uint16_t kIirFcr = 2;
constexpr std::uint16_t kLcr = 3;
constexpr std::uint16_t kMcr = 4;
constexpr std::uint16_t kLsr = 5;
constexpr std::uint16_t kMsr = 6;
constexpr std::uint16_t kScr = 7;

constexpr std::uint8_t kLsrDataReady = 0x01;
constexpr std::uint8_t kLsrThrEmpty = 0x20;
constexpr std::uint8_t kLsrTransmitterEmpty = 0x40;
constexpr std::uint8_t kIirNoInterrupt = 0x01;
constexpr std::uint8_t kIirThrEmpty = 0x02;
constexpr std::uint8_t kIirReceivedData = 0x04;
constexpr std::uint8_t kIerReceivedData = 0x01;
constexpr std::uint8_t kIerThrEmpty = 0x02;
constexpr std::uint8_t kIirFifosEnabled = 0xc0;
constexpr std::uint8_t kMsrConnected = 0xb0;  // DCD, DSR, CTS
}  // namespace

void SerialOutput::put(std::uint8_t byte) {
  std::lock_guard lock(mutex_);
  buffer_.push_back(static_cast<char>(byte));
  if (byte == '\n' || buffer_.size() >= kFlushThreshold) flush_locked();
}

void SerialOutput::flush() {
  std::lock_guard lock(mutex_);
  flush_locked();
}

int SerialOutput::error() {
  std::lock_guard lock(mutex_);
  return error_;
}

void SerialOutput::flush_locked() {
  std::size_t done = 0;
  while (error_ == 0 && done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // Disk full, I/O error, reader gone: said once, as it happens; the guest keeps running.
      error_ = n < 0 ? errno : EIO;
      if (log_) {
        std::fprintf(log_,
                     "drvm: serial: cannot write the guest's output: %s; the rest of it is "
                     "dropped\n",
                     std::strerror(error_));
      }
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  buffer_.clear();
}

bool usable_serial_input(int fd) {
  struct stat info {};
  if (::fstat(fd, &info) != 0) return false;
  return S_ISFIFO(info.st_mode) || S_ISREG(info.st_mode) || (S_ISCHR(info.st_mode) && ::isatty(fd));
}

bool Uart16550::input_ready() {
  if (!input_.empty()) return true;
  if (input_fd_ < 0) return false;
  constexpr auto kInputPollInterval = std::chrono::microseconds(500);
  const auto now = std::chrono::steady_clock::now();
  if (now < next_input_poll_) return false;
  next_input_poll_ = now + kInputPollInterval;
  return read_input_fd();
}

bool Uart16550::read_input_fd() {
  pollfd request{input_fd_, POLLIN, 0};
  if (::poll(&request, 1, 0) <= 0) return false;
  std::uint8_t chunk[256];
  const ssize_t n = ::read(input_fd_, chunk, sizeof chunk);
  if (n <= 0) {
    if (n == 0 || (errno != EINTR && errno != EAGAIN)) input_fd_ = -1;  // EOF or error: stop
    return false;
  }
  input_.insert(input_.end(), chunk, chunk + n);
  return true;
}

std::uint32_t Uart16550::port_read(unsigned, std::uint16_t offset, unsigned size) {
  const std::uint32_t high = size > 1 ? ~std::uint32_t{0xff} : 0;
  std::lock_guard lock(mutex_);
  return read(offset) | high;
}

void Uart16550::port_write(unsigned, std::uint16_t offset, unsigned, std::uint32_t value) {
  std::lock_guard lock(mutex_);
  write(offset, static_cast<std::uint8_t>(value));
}

bool Uart16550::wants_input() {
  std::lock_guard lock(mutex_);
  return (ier_ & kIerReceivedData) != 0 && input_.empty() && input_fd_ >= 0;
}

void Uart16550::pump_input() {
  std::lock_guard lock(mutex_);
  if (input_fd_ >= 0 && input_.empty() && read_input_fd()) update_irq();
}

bool Uart16550::can_interrupt() {
  std::lock_guard lock(mutex_);
  return (ier_ & kIerReceivedData) != 0 && (input_fd_ >= 0 || !input_.empty());
}

int Uart16550::input_fd() {
  std::lock_guard lock(mutex_);
  return input_fd_;
}

Uart16550::State Uart16550::save() {
  std::lock_guard lock(mutex_);
  return State{ier_, lcr_,           mcr_,
               scr_, fcr_,           dll_,
               dlm_, thr_interrupt_, std::vector<std::uint8_t>(input_.begin(), input_.end())};
}

void Uart16550::restore(const State& state) {
  std::lock_guard lock(mutex_);
  ier_ = state.ier;
  lcr_ = state.lcr;
  mcr_ = state.mcr;
  scr_ = state.scr;
  fcr_ = state.fcr;
  dll_ = state.dll;
  dlm_ = state.dlm;
  thr_interrupt_ = state.thr_interrupt;
  input_.assign(state.input.begin(), state.input.end());
  irq_level_ = pending_iir() != kIirNoInterrupt;
  if (irq_) irq_(irq_level_);
}

std::uint8_t Uart16550::pending_iir() const {
  if ((ier_ & kIerReceivedData) != 0 && !input_.empty()) return kIirReceivedData;
  if ((ier_ & kIerThrEmpty) != 0 && thr_interrupt_) return kIirThrEmpty;
  return kIirNoInterrupt;
}

void Uart16550::update_irq() {
  const bool level = pending_iir() != kIirNoInterrupt;
  if (level == irq_level_) return;
  irq_level_ = level;
  if (irq_) irq_(level);
}

std::uint8_t Uart16550::read(std::uint16_t offset) {
  switch (offset) {
    case kData:
      if (dlab()) return dll_;
      if (input_ready()) {
        const std::uint8_t byte = input_.front();
        input_.pop_front();
        update_irq();
        return byte;
      }
      return 0;
    case kIer:
      return dlab() ? dlm_ : ier_;
    case kIirFcr: {
      // A polling driver that enabled the receive interrupt may also look here first.
      if ((ier_ & kIerReceivedData) != 0) input_ready();
      const std::uint8_t iir = pending_iir();
      if (iir == kIirThrEmpty) {
        thr_interrupt_ = false;  // reading IIR acknowledges THR-empty
        update_irq();
      } else if (iir == kIirReceivedData) {
        update_irq();
      }
      return iir | ((fcr_ & 0x01) != 0 ? kIirFifosEnabled : 0);
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr: {
      // Transmission is instantaneous, so the transmitter is always empty.
      const bool ready = input_ready();
      if (ready) update_irq();
      return kLsrThrEmpty | kLsrTransmitterEmpty | (ready ? kLsrDataReady : 0);
    }
    case kMsr:
      return kMsrConnected;
    case kScr:
      return scr_;
    default:
      return 0xff;
  }
}

void Uart16550::write(std::uint16_t offset, std::uint8_t value) {
  switch (offset) {
    case kData:
      if (dlab()) {
        dll_ = value;
      } else {
        output_.put(value);
        // Transmission is instantaneous: the holding register is empty again at once.
        thr_interrupt_ = true;
        update_irq();
      }
      break;
    case kIer:
      if (dlab()) {
        dlm_ = value;
      } else {
        const std::uint8_t enabled = value & 0x0f & ~ier_;
        ier_ = value & 0x0f;
        if ((enabled & kIerThrEmpty) != 0) thr_interrupt_ = true;  // THR is always empty
        if ((ier_ & kIerThrEmpty) == 0) thr_interrupt_ = false;
        update_irq();
      }
      break;
    case kIirFcr:
      fcr_ = value;
      if ((value & 0x02) != 0) input_.clear();  // receive FIFO reset
      update_irq();
      break;
    case kLcr:
      lcr_ = value;
      break;
    case kMcr:
      mcr_ = value & 0x1f;
      break;
    case kScr:
      scr_ = value;
      break;
    default:
      break;  // LSR and MSR are read-only
  }
}

}  // namespace drvm::vmm

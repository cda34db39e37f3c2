#include "harness/cancellation.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace drvm::harness {

Cancellation::Cancellation() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

Cancellation::~Cancellation() {
  ::close(fd_);
}

void Cancellation::request(int signal) {
  int expected = 0;
  signal_.compare_exchange_strong(expected, signal == 0 ? -1 : signal);
  const std::uint64_t one = 1;
  (void)!::write(fd_, &one, sizeof one);
}

}  // namespace drvm::harness

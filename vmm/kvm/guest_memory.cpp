#include "vmm/kvm/guest_memory.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "vmm/kvm/kvm.hpp"

namespace drvm::vmm {

GuestMemory::GuestMemory(std::uint64_t size) : size_(size) {
  // Anonymous memory is already zero and only backed when touched: no memset, no reservation.
  void* mapping = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mapping == MAP_FAILED) throw KvmError("mmap of guest memory", errno);
  base_ = static_cast<std::byte*>(mapping);
}

GuestMemory::~GuestMemory() {
  ::munmap(base_, size_);
}

bool GuestMemory::read(std::uint64_t gpa, std::span<std::byte> out) const {
  if (!contains(gpa, out.size())) return false;
  std::memcpy(out.data(), base_ + gpa, out.size());
  return true;
}

bool GuestMemory::write(std::uint64_t gpa, std::span<const std::byte> in) {
  if (!contains(gpa, in.size())) return false;
  std::memcpy(base_ + gpa, in.data(), in.size());
  return true;
}

}  // namespace drvm::vmm

// Guest physical RAM: one anonymous host mapping starting at guest physical address 0, plus
// bounds-checked physical reads and writes. The PhysicalMemory interface lets page walks and
// loaders run against a fake memory in unit tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace drvm::vmm {

class PhysicalMemory {
 public:
  virtual ~PhysicalMemory() = default;
  // Both return false (and copy nothing) when [gpa, gpa + size) is not entirely RAM.
  virtual bool read(std::uint64_t gpa, std::span<std::byte> out) const = 0;
  virtual bool write(std::uint64_t gpa, std::span<const std::byte> in) = 0;
};

class GuestMemory final : public PhysicalMemory {
 public:
  // Maps size bytes (a multiple of 4 KiB) of zeroed, lazily allocated memory; throws KvmError
  // (with the mmap errno) when the host refuses.
  explicit GuestMemory(std::uint64_t size);
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory() override;

  std::uint64_t size() const { return size_; }
  std::byte* host_base() const { return base_; }
  bool contains(std::uint64_t gpa, std::uint64_t length) const {
    return gpa <= size_ && length <= size_ - gpa;
  }
  // Host pointer for [gpa, gpa + length), or nullptr when out of range.
  std::byte* host(std::uint64_t gpa, std::uint64_t length = 1) const {
    return contains(gpa, length) ? base_ + gpa : nullptr;
  }

  bool read(std::uint64_t gpa, std::span<std::byte> out) const override;
  bool write(std::uint64_t gpa, std::span<const std::byte> in) override;

 private:
  std::byte* base_ = nullptr;
  std::uint64_t size_ = 0;
};

}  // namespace drvm::vmm

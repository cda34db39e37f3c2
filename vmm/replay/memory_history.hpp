// Versions of guest RAM at checkpoints, page by page (4 KiB), append-only: the memory half of a
// replay snapshot. Each page keeps a sorted list of (version, content) entries only where its
// content changed; a page with no entry at or before a version was all zero then. Identical page
// contents are stored once (a zero page is not stored at all), so bytes() counts each distinct
// content once.
//
// The debugger plants INT3 bytes in guest RAM; versions hold memory as the guest sees it without
// them. Raw host pages are compared first (the fast path); only a page whose raw bytes differ
// from the expected content is read through the clean reader, and restored pages are written
// through the clean writer, which keeps planted traps planted.
//
// Not thread-safe: call while every vCPU is paused (outside KVM_RUN).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace drvm::vmm::replay {

inline constexpr std::size_t kPageSize = 4096;

// A raw host view of guest RAM at guest physical address gpa (both page aligned, the size a
// multiple of kPageSize).
struct RamRange {
  std::uint64_t gpa;
  std::span<std::uint8_t> host;
};

// Reads / writes one page as the guest sees it, without the debugger's planted INT3 bytes.
using PageReader = std::function<void(std::uint64_t gpa, std::span<std::uint8_t> page)>;
using PageWriter = std::function<void(std::uint64_t gpa, std::span<const std::uint8_t> page)>;

class MemoryHistory {
 public:
  // Throws std::invalid_argument for ranges that are not page aligned.
  MemoryHistory(std::vector<RamRange> ram, PageReader read_clean, PageWriter write_clean);
  ~MemoryHistory();
  MemoryHistory(const MemoryHistory&) = delete;
  MemoryHistory& operator=(const MemoryHistory&) = delete;

  // Records memory as it is now as version `id` (ids strictly increase: std::invalid_argument
  // otherwise). Returns the bytes newly stored (distinct contents not already held).
  std::size_t capture(std::uint64_t id);
  // Makes memory equal to version `id` (writes only pages that differ). Returns pages written.
  // std::out_of_range when `id` is not a version held.
  std::size_t restore(std::uint64_t id);
  // Whether memory now equals version `id` (an exact compare). std::out_of_range as restore().
  bool matches(std::uint64_t id) const;
  // Forgets the versions older than `id` (which must be held, and stays restorable) and frees the
  // contents only they used.
  void drop_before(std::uint64_t id);

  // Stored page bytes: each distinct non-zero content once (what a history budget counts).
  std::size_t bytes() const { return blocks_.size() * kPageSize; }
  std::optional<std::uint64_t> oldest() const;
  std::optional<std::uint64_t> newest() const;
  const std::vector<std::uint64_t>& versions() const { return versions_; }

 private:
  // One stored page content, shared by every entry (of any page) that has these bytes.
  struct Block {
    std::uint64_t hash;
    std::size_t users = 0;
    alignas(64) std::uint8_t data[kPageSize];
  };
  struct Entry {
    std::uint64_t version;
    Block* block;  // nullptr: an all-zero page
  };
  struct Page {
    std::uint64_t gpa;
    std::uint8_t* host;
    std::vector<Entry> entries;  // sorted by version
  };

  // The content page `page` had at version `id` (nullptr: zero).
  static const Block* content_at(const Page& page, std::uint64_t id);
  static const std::uint8_t* bytes_of(const Block* block);
  // Whether the guest sees `expected` at `page` now: raw compare, then a clean read on difference.
  bool page_equals(const Page& page, const std::uint8_t* expected,
                   std::span<std::uint8_t> scratch) const;
  // A Block holding `content` (an existing one when the bytes are already stored) with one more
  // user; nullptr for zero. `added` is set when a new block was allocated.
  Block* acquire(std::span<const std::uint8_t> content, bool& added);
  void release(Block* block);
  void require_version(std::uint64_t id) const;

  std::vector<Page> pages_;
  PageReader read_clean_;
  PageWriter write_clean_;
  std::vector<std::uint64_t> versions_;  // held versions, ascending
  std::unordered_multimap<std::uint64_t, std::unique_ptr<Block>> blocks_;  // by content hash
};

}  // namespace drvm::vmm::replay

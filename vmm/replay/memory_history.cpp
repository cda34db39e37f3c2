#include "vmm/replay/memory_history.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace drvm::vmm::replay {

namespace {

alignas(64) constexpr std::uint8_t kZeroPage[kPageSize] = {};

bool is_zero(const std::uint8_t* page) {
  return std::memcmp(page, kZeroPage, kPageSize) == 0;
}

// A quick 64-bit hash of one page (four independent lanes, so it runs at memory speed); equal
// hashes are confirmed by a byte compare before a block is shared.
std::uint64_t page_hash(const std::uint8_t* page) {
  constexpr std::uint64_t kMultiplier = 0x9e3779b97f4a7c15ULL;
  std::uint64_t lanes[4] = {1, 2, 3, 4};
  for (std::size_t at = 0; at < kPageSize; at += 32) {
    for (int lane = 0; lane < 4; ++lane) {
      std::uint64_t word;
      std::memcpy(&word, page + at + 8 * lane, sizeof word);
      lanes[lane] = (lanes[lane] ^ word) * kMultiplier;
      lanes[lane] ^= lanes[lane] >> 29;
    }
  }
  std::uint64_t hash = 0;
  for (const std::uint64_t lane : lanes) hash = (hash ^ lane) * kMultiplier + (hash >> 31);
  return hash;
}

}  // namespace

MemoryHistory::MemoryHistory(std::vector<RamRange> ram, PageReader read_clean,
                             PageWriter write_clean)
    : read_clean_(std::move(read_clean)), write_clean_(std::move(write_clean)) {
  for (const RamRange& range : ram) {
    if (range.gpa % kPageSize != 0 || range.host.size() % kPageSize != 0 ||
        reinterpret_cast<std::uintptr_t>(range.host.data()) % kPageSize != 0) {
      throw std::invalid_argument("MemoryHistory: RAM range " + std::to_string(range.gpa) +
                                  " is not page aligned");
    }
    for (std::size_t offset = 0; offset < range.host.size(); offset += kPageSize) {
      pages_.push_back(Page{range.gpa + offset, range.host.data() + offset, {}});
    }
  }
}

MemoryHistory::~MemoryHistory() = default;

const MemoryHistory::Block* MemoryHistory::content_at(const Page& page, std::uint64_t id) {
  // The last entry at or before id; none: the page was zero then.
  const auto after = std::upper_bound(
      page.entries.begin(), page.entries.end(), id,
      [](std::uint64_t version, const Entry& entry) { return version < entry.version; });
  return after == page.entries.begin() ? nullptr : std::prev(after)->block;
}

const std::uint8_t* MemoryHistory::bytes_of(const Block* block) {
  return block != nullptr ? block->data : kZeroPage;
}

bool MemoryHistory::page_equals(const Page& page, const std::uint8_t* expected,
                                std::span<std::uint8_t> scratch) const {
  if (std::memcmp(page.host, expected, kPageSize) == 0) return true;
  // The raw page may differ only by planted INT3 bytes.
  read_clean_(page.gpa, scratch);
  return std::memcmp(scratch.data(), expected, kPageSize) == 0;
}

MemoryHistory::Block* MemoryHistory::acquire(std::span<const std::uint8_t> content, bool& added) {
  added = false;
  if (is_zero(content.data())) return nullptr;
  const std::uint64_t hash = page_hash(content.data());
  const auto [first, last] = blocks_.equal_range(hash);
  for (auto it = first; it != last; ++it) {
    if (std::memcmp(it->second->data, content.data(), kPageSize) == 0) {
      ++it->second->users;
      return it->second.get();
    }
  }
  auto block = std::make_unique<Block>();
  block->hash = hash;
  block->users = 1;
  std::memcpy(block->data, content.data(), kPageSize);
  added = true;
  return blocks_.emplace(hash, std::move(block))->second.get();
}

void MemoryHistory::release(Block* block) {
  if (block == nullptr || --block->users > 0) return;
  const auto [first, last] = blocks_.equal_range(block->hash);
  for (auto it = first; it != last; ++it) {
    if (it->second.get() == block) {
      blocks_.erase(it);
      return;
    }
  }
}

void MemoryHistory::require_version(std::uint64_t id) const {
  if (!std::binary_search(versions_.begin(), versions_.end(), id)) {
    throw std::out_of_range("MemoryHistory: no version " + std::to_string(id));
  }
}

std::size_t MemoryHistory::capture(std::uint64_t id) {
  if (!versions_.empty() && id <= versions_.back()) {
    throw std::invalid_argument("MemoryHistory: version " + std::to_string(id) +
                                " is not newer than " + std::to_string(versions_.back()));
  }
  alignas(64) std::uint8_t clean[kPageSize];
  std::size_t stored = 0;
  for (Page& page : pages_) {
    const std::uint8_t* latest =
        bytes_of(page.entries.empty() ? nullptr : page.entries.back().block);
    if (page_equals(page, latest, clean)) continue;
    bool added = false;
    Block* block = acquire(clean, added);
    page.entries.push_back(Entry{id, block});
    if (added) stored += kPageSize;
  }
  versions_.push_back(id);
  return stored;
}

std::size_t MemoryHistory::restore(std::uint64_t id) {
  require_version(id);
  alignas(64) std::uint8_t clean[kPageSize];
  std::size_t written = 0;
  for (const Page& page : pages_) {
    const std::uint8_t* wanted = bytes_of(content_at(page, id));
    if (page_equals(page, wanted, clean)) continue;
    write_clean_(page.gpa, std::span<const std::uint8_t>(wanted, kPageSize));
    ++written;
  }
  return written;
}

bool MemoryHistory::matches(std::uint64_t id) const {
  require_version(id);
  alignas(64) std::uint8_t clean[kPageSize];
  return std::all_of(pages_.begin(), pages_.end(), [&](const Page& page) {
    return page_equals(page, bytes_of(content_at(page, id)), clean);
  });
}

void MemoryHistory::drop_before(std::uint64_t id) {
  require_version(id);
  for (Page& page : pages_) {
    auto& entries = page.entries;
    // Entries before the one current at id go; that one is re-keyed to id.
    const auto after = std::upper_bound(
        entries.begin(), entries.end(), id,
        [](std::uint64_t version, const Entry& entry) { return version < entry.version; });
    if (after == entries.begin()) continue;  // zero at id: nothing older is held
    const auto current = std::prev(after);
    for (auto it = entries.begin(); it != current; ++it) release(it->block);
    current->version = id;
    // A zero page at the oldest version is what a missing entry means already.
    const auto keep_from = current->block == nullptr ? after : current;
    entries.erase(entries.begin(), keep_from);
  }
  versions_.erase(versions_.begin(), std::lower_bound(versions_.begin(), versions_.end(), id));
}

std::optional<std::uint64_t> MemoryHistory::oldest() const {
  if (versions_.empty()) return std::nullopt;
  return versions_.front();
}

std::optional<std::uint64_t> MemoryHistory::newest() const {
  if (versions_.empty()) return std::nullopt;
  return versions_.back();
}

}  // namespace drvm::vmm::replay

// MemoryHistory over fake guest RAM (two ranges) with a debugger that plants INT3 bytes: the raw
// host bytes hold 0xCC at planted addresses, the clean reader shows the original bytes, and the
// clean writer keeps planted traps planted.
#include "vmm/replay/memory_history.hpp"

#include <sys/mman.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <stdexcept>
#include <vector>

namespace drvm::vmm::replay {
namespace {

constexpr std::uint8_t kInt3 = 0xcc;

class FakeGuest {
 public:
  // Two RAM ranges: [0, 16 pages) and [1 MiB, 1 MiB + 8 pages).
  FakeGuest() {
    low_ = map(16);
    high_ = map(8);
  }
  ~FakeGuest() {
    ::munmap(low_.data(), low_.size());
    ::munmap(high_.data(), high_.size());
  }
  FakeGuest(const FakeGuest&) = delete;
  FakeGuest& operator=(const FakeGuest&) = delete;

  static constexpr std::uint64_t kHighBase = 1 << 20;

  MemoryHistory history() {
    return MemoryHistory(
        {RamRange{0, low_}, RamRange{kHighBase, high_}},
        [this](std::uint64_t gpa, std::span<std::uint8_t> page) {
          ++clean_reads;
          std::memcpy(page.data(), raw(gpa), kPageSize);
          for (const auto& [address, original] : planted_) {
            if (address >= gpa && address < gpa + kPageSize) page[address - gpa] = original;
          }
        },
        [this](std::uint64_t gpa, std::span<const std::uint8_t> page) {
          std::memcpy(raw(gpa), page.data(), kPageSize);
          for (auto& [address, original] : planted_) {
            if (address >= gpa && address < gpa + kPageSize) {
              original = page[address - gpa];
              *raw(address) = kInt3;
            }
          }
        });
  }

  // The guest's view (planted bytes hidden) of one byte, and writes as the guest makes them.
  std::uint8_t read(std::uint64_t gpa) const {
    const auto planted = planted_.find(gpa);
    return planted != planted_.end() ? planted->second : *raw(gpa);
  }
  void write(std::uint64_t gpa, std::uint8_t value) {
    const auto planted = planted_.find(gpa);
    if (planted != planted_.end()) {
      planted->second = value;
    } else {
      *raw(gpa) = value;
    }
  }
  void plant(std::uint64_t gpa) {
    planted_.emplace(gpa, *raw(gpa));
    *raw(gpa) = kInt3;
  }
  void unplant_all() {
    for (const auto& [address, original] : planted_) *raw(address) = original;
    planted_.clear();
  }
  std::uint8_t raw_byte(std::uint64_t gpa) const { return *raw(gpa); }

  // Every guest physical address of RAM, in order.
  std::vector<std::uint64_t> addresses() const {
    std::vector<std::uint64_t> all;
    for (std::uint64_t a = 0; a < low_.size(); ++a) all.push_back(a);
    for (std::uint64_t a = 0; a < high_.size(); ++a) all.push_back(kHighBase + a);
    return all;
  }
  std::vector<std::uint8_t> view() const {
    std::vector<std::uint8_t> bytes;
    for (const std::uint64_t a : addresses()) bytes.push_back(read(a));
    return bytes;
  }
  std::uint64_t page_address(std::size_t page) const {
    const std::size_t low_pages = low_.size() / kPageSize;
    return page < low_pages ? page * kPageSize : kHighBase + (page - low_pages) * kPageSize;
  }
  std::size_t page_count() const { return (low_.size() + high_.size()) / kPageSize; }
  void fill_page(std::size_t page, std::uint8_t value) {
    for (std::size_t i = 0; i < kPageSize; ++i) write(page_address(page) + i, value);
  }

  std::size_t clean_reads = 0;

 private:
  static std::span<std::uint8_t> map(std::size_t pages) {
    void* p = ::mmap(nullptr, pages * kPageSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap");
    return {static_cast<std::uint8_t*>(p), pages * kPageSize};
  }
  std::uint8_t* raw(std::uint64_t gpa) const {
    return gpa >= kHighBase ? high_.data() + (gpa - kHighBase) : low_.data() + gpa;
  }

  std::span<std::uint8_t> low_, high_;
  std::map<std::uint64_t, std::uint8_t> planted_;
};

// Random guest activity: scattered byte writes, whole pages filled, pages zeroed.
void scribble(FakeGuest& guest, std::mt19937& random) {
  const auto addresses = guest.addresses();
  std::uniform_int_distribution<std::size_t> any_address(0, addresses.size() - 1);
  std::uniform_int_distribution<std::size_t> any_page(0, guest.page_count() - 1);
  std::uniform_int_distribution<int> any_byte(0, 255);
  for (int i = 0; i < 200; ++i) {
    guest.write(addresses[any_address(random)], static_cast<std::uint8_t>(any_byte(random)));
  }
  guest.fill_page(any_page(random), static_cast<std::uint8_t>(any_byte(random)));
  guest.fill_page(any_page(random), 0);
}

TEST(MemoryHistory, RestoresEveryEarlierVersionInRandomOrder) {
  FakeGuest guest;
  MemoryHistory history = guest.history();
  std::mt19937 random(1234);
  std::map<std::uint64_t, std::vector<std::uint8_t>> expected;
  for (std::uint64_t id = 0; id < 10; ++id) {
    if (id > 0) scribble(guest, random);
    history.capture(id * 7);  // ids need only increase
    expected[id * 7] = guest.view();
  }
  std::vector<std::uint64_t> order;
  for (const auto& [id, bytes] : expected) order.push_back(id);
  for (int round = 0; round < 3; ++round) {
    std::shuffle(order.begin(), order.end(), random);
    for (const std::uint64_t id : order) {
      history.restore(id);
      ASSERT_EQ(guest.view(), expected[id]) << "version " << id;
      EXPECT_TRUE(history.matches(id));
      EXPECT_EQ(history.restore(id), 0u) << "a second restore writes nothing";
    }
  }
  // Capturing after a restore of an old version, then going back to the newest, still works.
  history.restore(14);
  scribble(guest, random);
  history.capture(100);
  const auto newest = guest.view();
  history.restore(63);
  EXPECT_EQ(guest.view(), expected[63]);
  history.restore(100);
  EXPECT_EQ(guest.view(), newest);
}

TEST(MemoryHistory, RestoreWritesOnlyThePagesThatDiffer) {
  FakeGuest guest;
  MemoryHistory history = guest.history();
  guest.fill_page(3, 0x11);
  history.capture(1);
  guest.fill_page(3, 0x22);
  guest.fill_page(5, 0x33);
  guest.write(FakeGuest::kHighBase + 10, 0x44);
  history.capture(2);
  EXPECT_EQ(history.restore(1), 3u);
  EXPECT_EQ(history.restore(2), 3u);
  guest.write(7, 1);
  EXPECT_EQ(history.restore(2), 1u);
}

TEST(MemoryHistory, MatchesSeesOneByte) {
  FakeGuest guest;
  MemoryHistory history = guest.history();
  guest.fill_page(2, 0x5a);
  history.capture(1);
  EXPECT_TRUE(history.matches(1));
  guest.write(FakeGuest::kHighBase + 4095, 1);
  EXPECT_FALSE(history.matches(1));
  guest.write(FakeGuest::kHighBase + 4095, 0);
  EXPECT_TRUE(history.matches(1));
  guest.write(2 * kPageSize + 100, 0x5b);
  EXPECT_FALSE(history.matches(1));
}

TEST(MemoryHistory, CountsEachDistinctContentOnceAndNoZeroPages) {
  FakeGuest guest;
  MemoryHistory history = guest.history();
  EXPECT_EQ(history.capture(0), 0u) << "all-zero RAM stores nothing";
  EXPECT_EQ(history.bytes(), 0u);
  guest.fill_page(1, 0x77);
  EXPECT_EQ(history.capture(1), kPageSize);
  EXPECT_EQ(history.bytes(), kPageSize);
  guest.fill_page(4, 0x77);  // the same content on another page
  guest.fill_page(20, 0x77);
  EXPECT_EQ(history.capture(2), 0u);
  EXPECT_EQ(history.bytes(), kPageSize);
  guest.fill_page(1, 0);  // back to zero: an entry, but no stored bytes
  guest.fill_page(4, 0x78);
  EXPECT_EQ(history.capture(3), kPageSize);
  EXPECT_EQ(history.bytes(), 2 * kPageSize);
  EXPECT_EQ(history.capture(4), 0u) << "nothing changed";
  history.restore(1);
  EXPECT_EQ(guest.read(kPageSize + 9), 0x77);
  EXPECT_EQ(guest.read(4 * kPageSize), 0);
}

TEST(MemoryHistory, DropBeforeKeepsTheCurrentContentAndFreesTheRest) {
  FakeGuest guest;
  MemoryHistory history = guest.history();
  guest.fill_page(0, 0x01);  // page 0: changes at every version
  guest.fill_page(6, 0x66);  // page 6: written at version 1 only, current ever after
  history.capture(1);
  guest.fill_page(0, 0x02);
  history.capture(2);
  guest.fill_page(0, 0x03);
  guest.fill_page(9, 0x99);
  history.capture(3);
  const auto at3 = guest.view();
  guest.fill_page(0, 0x04);
  history.capture(4);
  const auto at4 = guest.view();
  EXPECT_EQ(history.bytes(), 6 * kPageSize);

  history.drop_before(3);
  EXPECT_EQ(history.oldest(), 3u);
  EXPECT_EQ(history.bytes(), 4 * kPageSize) << "0x01 and 0x02 freed";
  EXPECT_THROW(history.restore(2), std::out_of_range);
  EXPECT_THROW(history.matches(1), std::out_of_range);
  EXPECT_THROW(history.drop_before(2), std::out_of_range);

  guest.fill_page(6, 0);  // version 3's page 6 (from version 1) must come back
  guest.fill_page(12, 0xab);
  history.restore(3);
  EXPECT_EQ(guest.view(), at3);
  history.restore(4);
  EXPECT_EQ(guest.view(), at4);

  history.drop_before(4);
  EXPECT_EQ(history.bytes(), 3 * kPageSize);
  guest.fill_page(0, 0);
  guest.fill_page(6, 0);
  guest.fill_page(9, 0);
  history.restore(4);
  EXPECT_EQ(guest.view(), at4);
  EXPECT_EQ(history.versions(), std::vector<std::uint64_t>{4});
}

TEST(MemoryHistory, DropBeforeForgetsPagesThatWereZeroAtTheKeptVersion) {
  FakeGuest guest;
  MemoryHistory history = guest.history();
  guest.fill_page(2, 0x42);
  history.capture(1);
  guest.fill_page(2, 0);
  history.capture(2);
  history.drop_before(2);
  EXPECT_EQ(history.bytes(), 0u);
  guest.fill_page(2, 0x43);
  EXPECT_FALSE(history.matches(2));
  history.restore(2);
  EXPECT_EQ(guest.read(2 * kPageSize + 1), 0);
}

TEST(MemoryHistory, VersionsHoldTheGuestsBytesNotPlantedTraps) {
  FakeGuest guest;
  MemoryHistory history = guest.history();
  guest.fill_page(1, 0x90);
  guest.write(FakeGuest::kHighBase + 3, 0x55);
  const std::uint64_t trap_a = kPageSize + 17;
  const std::uint64_t trap_b = FakeGuest::kHighBase + 3;
  guest.plant(trap_a);
  guest.plant(trap_b);
  ASSERT_EQ(guest.raw_byte(trap_a), kInt3);
  history.capture(1);
  const auto at1 = guest.view();

  // Planting another trap changes raw bytes only: not a change, nothing written back.
  guest.plant(kPageSize + 40);
  EXPECT_EQ(history.capture(2), 0u);
  EXPECT_TRUE(history.matches(1));
  EXPECT_EQ(history.restore(1), 0u);

  // The guest overwrites a trapped byte and others; the restore brings back the original bytes
  // while the traps stay planted.
  guest.fill_page(1, 0x00);
  guest.write(trap_a, 0x12);
  guest.write(trap_b, 0x66);
  history.capture(3);
  EXPECT_GT(history.restore(1), 0u);
  EXPECT_EQ(guest.view(), at1);
  EXPECT_EQ(guest.raw_byte(trap_a), kInt3);
  EXPECT_EQ(guest.raw_byte(trap_b), kInt3);
  EXPECT_EQ(guest.read(trap_a), 0x90);

  // Without the traps, raw memory is version 1 exactly: no clean read is needed to see it.
  guest.unplant_all();
  guest.clean_reads = 0;
  EXPECT_TRUE(history.matches(1));
  EXPECT_EQ(guest.clean_reads, 0u);
  history.restore(3);
  EXPECT_EQ(guest.read(trap_a), 0x12);
  EXPECT_EQ(guest.read(trap_b), 0x66);
}

TEST(MemoryHistory, RejectsVersionsOutOfOrderAndUnalignedRam) {
  FakeGuest guest;
  MemoryHistory history = guest.history();
  EXPECT_FALSE(history.oldest().has_value());
  history.capture(5);
  EXPECT_THROW(history.capture(5), std::invalid_argument);
  EXPECT_THROW(history.capture(4), std::invalid_argument);
  EXPECT_THROW(history.restore(6), std::out_of_range);
  EXPECT_EQ(history.oldest(), 5u);

  std::vector<std::uint8_t> buffer(3 * kPageSize);
  auto* aligned = reinterpret_cast<std::uint8_t*>(
      (reinterpret_cast<std::uintptr_t>(buffer.data()) + kPageSize - 1) & ~(kPageSize - 1));
  auto noop_read = [](std::uint64_t, std::span<std::uint8_t>) {};
  auto noop_write = [](std::uint64_t, std::span<const std::uint8_t>) {};
  EXPECT_THROW(MemoryHistory({RamRange{100, {aligned, kPageSize}}}, noop_read, noop_write),
               std::invalid_argument);
  EXPECT_THROW(MemoryHistory({RamRange{0, {aligned, 100}}}, noop_read, noop_write),
               std::invalid_argument);
  EXPECT_NO_THROW(MemoryHistory({RamRange{0, {aligned, 2 * kPageSize}}}, noop_read, noop_write));
}

}  // namespace
}  // namespace drvm::vmm::replay

// Unit tests of the guest page walk on a fake physical memory.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "vmm/x86/paging.hpp"

namespace drvm::vmm {
namespace {

class FakeMemory final : public PhysicalMemory {
 public:
  explicit FakeMemory(std::size_t size) : bytes_(size) {}
  bool read(std::uint64_t gpa, std::span<std::byte> out) const override {
    if (gpa > bytes_.size() || out.size() > bytes_.size() - gpa) return false;
    std::memcpy(out.data(), bytes_.data() + gpa, out.size());
    return true;
  }
  bool write(std::uint64_t gpa, std::span<const std::byte> in) override {
    if (gpa > bytes_.size() || in.size() > bytes_.size() - gpa) return false;
    std::memcpy(bytes_.data() + gpa, in.data(), in.size());
    return true;
  }
  void put64(std::uint64_t gpa, std::uint64_t value) { std::memcpy(&bytes_[gpa], &value, 8); }
  void put32(std::uint64_t gpa, std::uint32_t value) { std::memcpy(&bytes_[gpa], &value, 4); }

 private:
  std::vector<std::byte> bytes_;
};

constexpr std::uint64_t kCr0Paging = 0x80000011;
constexpr std::uint64_t kLongEfer = 0x500;
constexpr std::uint64_t kPae = 0x20;

// PML4 at 0x1000, PDPT at 0x2000, PD at 0x3000, PT at 0x4000.
FakeMemory long_mode_tables() {
  FakeMemory memory(8 << 20);
  memory.put64(0x1000 + 0x1 * 8, 0x2000 | 3);         // PML4[1]: 512 GiB-1 TiB
  memory.put64(0x2000 + 0x0 * 8, 0x3000 | 3);         // PDPT[0]
  memory.put64(0x2000 + 0x1 * 8, 0x40000000 | 0x83);  // PDPT[1]: 1 GiB page at 1 GiB
  memory.put64(0x3000 + 0x2 * 8, 0x200000 | 0x83);    // PD[2]: 2 MiB page -> 2 MiB
  memory.put64(0x3000 + 0x3 * 8, 0x4000 | 3);         // PD[3] -> PT
  memory.put64(0x4000 + 0x5 * 8, 0x5000 | 1);         // PT[5]: read-only 4 KiB -> 0x5000
  memory.put64(0x4000 + 0x6 * 8, 0x7000 | 3);         // PT[6]: 4 KiB -> 0x7000
  return memory;
}

const PagingState kLong{kCr0Paging, 0x1000, kPae, kLongEfer};
constexpr std::uint64_t kBase = 0x8000000000ULL;  // PML4 index 1

TEST(PagingTest, FourKilobytePage) {
  const FakeMemory memory = long_mode_tables();
  const auto t = translate(memory, kLong, kBase + 0x600000 + 0x5123);
  ASSERT_TRUE(t.ok()) << to_string(t.error);
  EXPECT_EQ(t.gpa, 0x5123u);
  EXPECT_EQ(t.page_size, 0x1000u);
  EXPECT_FALSE(t.writable);
}

TEST(PagingTest, TwoMegabytePage) {
  const FakeMemory memory = long_mode_tables();
  const auto t = translate(memory, kLong, kBase + 0x400000 + 0x12345);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.gpa, 0x212345u);
  EXPECT_EQ(t.page_size, 0x200000u);
}

TEST(PagingTest, OneGigabytePageBeyondRamIsReportedNotCrashing) {
  const FakeMemory memory = long_mode_tables();
  const auto t = translate(memory, kLong, kBase + 0x40000000 + 0x10);
  EXPECT_EQ(t.error, WalkError::kTableOutsideRam);  // 1 GiB is beyond the fake's 8 MiB
}

TEST(PagingTest, NotPresentAndNonCanonical) {
  const FakeMemory memory = long_mode_tables();
  const auto absent = translate(memory, kLong, 0x1000);  // PML4[0] is empty
  EXPECT_EQ(absent.error, WalkError::kNotPresent);
  EXPECT_EQ(absent.failed_level, 4);
  const auto missing_pte = translate(memory, kLong, kBase + 0x600000 + 0x7000);
  EXPECT_EQ(missing_pte.error, WalkError::kNotPresent);
  EXPECT_EQ(missing_pte.failed_level, 1);
  EXPECT_EQ(translate(memory, kLong, 0x0000900000000000ULL).error, WalkError::kNonCanonical);
}

TEST(PagingTest, PagingOffIsIdentityBelowFourGiB) {
  const FakeMemory memory(1 << 20);
  const PagingState off{0x11, 0, 0, 0};
  const auto t = translate(memory, off, 0x1234);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.gpa, 0x1234u);
  EXPECT_EQ(translate(memory, off, 0x100000000ULL).error, WalkError::kOutOfRange);
  EXPECT_EQ(translate(memory, off, 0x200000).error, WalkError::kTableOutsideRam);
}

TEST(PagingTest, Legacy32BitAndPae) {
  FakeMemory memory(8 << 20);
  // 32-bit: PD at 0x1000, PDE[1] -> PT at 0x2000, PTE[2] -> 0x9000; PDE[2] is a 4 MiB page.
  memory.put32(0x1000 + 4, 0x2000 | 3);
  memory.put32(0x2000 + 8, 0x9000 | 3);
  memory.put32(0x1000 + 8, 0x400000 | 0x83);
  const PagingState legacy{kCr0Paging, 0x1000, 0x10 /* PSE */, 0};
  EXPECT_EQ(translate(memory, legacy, 0x402abc).gpa, 0x9abcu);
  EXPECT_EQ(translate(memory, legacy, 0x812345).gpa, 0x412345u);
  // PAE: PDPT at 0x3000, PDPTE[0] -> PD at 0x4000, PDE[1] is a 2 MiB page at 6 MiB.
  memory.put64(0x3000, 0x4000 | 1);
  memory.put64(0x4000 + 8, 0x600000 | 0x83);
  const PagingState pae{kCr0Paging, 0x3000, kPae, 0};
  EXPECT_EQ(translate(memory, pae, 0x200010).gpa, 0x600010u);
  EXPECT_EQ(translate(memory, pae, 0x40000000).error, WalkError::kNotPresent);
}

// Each walk reports the tables it read, from the top down, also when it fails.
TEST(PagingTest, WalksReportTheTablesTheyRead) {
  const FakeMemory memory = long_mode_tables();
  const auto four_k = translate(memory, kLong, kBase + 0x600000 + 0x5000).tables;
  ASSERT_EQ(four_k.count, 4u);
  EXPECT_EQ(four_k.page[0], 0x1000u);
  EXPECT_EQ(four_k.page[3], 0x4000u);
  EXPECT_EQ(translate(memory, kLong, kBase + 0x400000).tables.count, 3u);  // a 2 MiB page
  EXPECT_EQ(translate(memory, kLong, 0x1000).tables.count, 1u);            // PML4E not present
  EXPECT_EQ(translate(memory, PagingState{0x11, 0, 0, 0}, 0x1000).tables.count, 0u);

  FakeMemory legacy_memory(8 << 20);
  legacy_memory.put32(0x1000 + 4, 0x2000 | 3);       // PDE[1] -> PT at 0x2000
  legacy_memory.put32(0x1000 + 8, 0x400000 | 0x83);  // PDE[2]: 4 MiB page
  const PagingState legacy{kCr0Paging, 0x1000, 0x10 /* PSE */, 0};
  const auto pt = translate(legacy_memory, legacy, 0x402abc).tables;  // PTE not present
  ASSERT_EQ(pt.count, 2u);
  EXPECT_EQ(pt.page[1], 0x2000u);
  EXPECT_EQ(translate(legacy_memory, legacy, 0x812345).tables.count, 1u);
  legacy_memory.put64(0x3000 + 0x20, 0x4000 | 1);  // PAE: PDPT at 0x3020 (32-byte aligned)
  const PagingState pae{kCr0Paging, 0x3020, kPae, 0};
  const auto pae_tables = translate(legacy_memory, pae, 0x1000).tables;
  ASSERT_EQ(pae_tables.count, 2u);  // PDE not present: no PT
  EXPECT_EQ(pae_tables.page[0], 0x3000u);
  EXPECT_EQ(pae_tables.page[1], 0x4000u);
}

TEST(PagingTest, AllPagingStructurePagesSkipLargePagesAndStopAtTheLimit) {
  const FakeMemory memory = long_mode_tables();
  const std::vector<std::uint64_t> all = all_paging_structure_pages(memory, kLong);
  EXPECT_EQ(all, (std::vector<std::uint64_t>{0x1000, 0x2000, 0x3000, 0x4000}));
  EXPECT_EQ(all_paging_structure_pages(memory, kLong, 2).size(), 2u);
  EXPECT_TRUE(all_paging_structure_pages(memory, PagingState{0x11, 0, 0, 0}).empty());
  FakeMemory looped(1 << 20);
  looped.put64(0x1000, 0x1000 | 3);  // PML4[0] points back at the PML4
  EXPECT_EQ(all_paging_structure_pages(looped, kLong), (std::vector<std::uint64_t>{0x1000}));
}

TEST(PagingTest, VirtualReadAndWriteCrossPages) {
  FakeMemory memory = long_mode_tables();
  // Virtual pages 5 and 6 of the PT map to 0x5000 and 0x7000: not physically adjacent.
  const std::uint64_t va = kBase + 0x600000 + 0x5ffe;
  const std::byte data[4] = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
  ASSERT_TRUE(write_virtual(memory, kLong, va, data).ok());
  std::byte physical[2];
  ASSERT_TRUE(memory.read(0x7000, physical));
  EXPECT_EQ(physical[0], std::byte{3});
  std::byte back[4];
  ASSERT_TRUE(read_virtual(memory, kLong, va, back).ok());
  EXPECT_EQ(std::memcmp(back, data, 4), 0);
  // Page 7 is unmapped: the read stops there, saying where.
  std::byte long_read[0x1010];
  const auto partial = read_virtual(memory, kLong, kBase + 0x606ff8, long_read);
  EXPECT_EQ(partial.error, WalkError::kNotPresent);
  EXPECT_EQ(partial.failed_at, kBase + 0x607000);
  EXPECT_EQ(partial.transferred, 8u);
}

}  // namespace
}  // namespace drvm::vmm

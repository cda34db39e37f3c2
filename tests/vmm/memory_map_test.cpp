// Unit tests of memslot splitting and merging, with a recording slot installer.
#include <gtest/gtest.h>

#include <map>

#include "vmm/kvm/memory_map.hpp"

namespace drvm::vmm {
namespace {

// Mirrors KVM's slot table and checks that installations never overlap.
struct FakeSlots {
  std::map<std::uint32_t, Memslot> slots;
  void install(const Memslot& slot) {
    if (slot.size == 0) {
      ASSERT_EQ(slots.erase(slot.slot), 1u) << "deleting a slot that is not installed";
      return;
    }
    for (const auto& [id, other] : slots) {
      ASSERT_NE(id, slot.slot) << "slot id reused while installed";
      ASSERT_TRUE(slot.guest_phys + slot.size <= other.guest_phys ||
                  other.guest_phys + other.size <= slot.guest_phys)
          << "overlapping slots";
    }
    slots[slot.slot] = slot;
  }
};

TEST(MemoryMapTest, StartsAsOneSlot) {
  GuestMemory memory(1 << 20);
  FakeSlots fake;
  MemoryMap map(memory, [&fake](const Memslot& s) { fake.install(s); });
  ASSERT_EQ(fake.slots.size(), 1u);
  EXPECT_EQ(fake.slots.begin()->second.size, 1u << 20);
  EXPECT_EQ(map.slot_count(), 1u);
}

TEST(MemoryMapTest, SplitsProtectsAndMergesBack) {
  GuestMemory memory(1 << 20);
  FakeSlots fake;
  MemoryMap map(memory, [&fake](const Memslot& s) { fake.install(s); });
  map.set_access(0x10000, 0x1000, PageAccess::kReadOnly);
  EXPECT_EQ(fake.slots.size(), 3u);
  EXPECT_EQ(map.access(0x10000), PageAccess::kReadOnly);
  EXPECT_EQ(map.access(0x11000), PageAccess::kReadWrite);
  bool found_read_only = false;
  for (const auto& [id, slot] : fake.slots) {
    if (slot.read_only) {
      found_read_only = true;
      EXPECT_EQ(slot.guest_phys, 0x10000u);
      EXPECT_EQ(slot.size, 0x1000u);
      EXPECT_EQ(slot.host, memory.host(0x10000));
    }
  }
  EXPECT_TRUE(found_read_only);

  map.set_access(0x20000, 0x2000, PageAccess::kUnmapped);  // a hole: no slot at all
  EXPECT_EQ(map.slot_count(), 4u);
  EXPECT_EQ(fake.slots.size(), 4u);
  EXPECT_EQ(map.access(0x21000), PageAccess::kUnmapped);

  map.set_access(0x10000, 0x1000, PageAccess::kReadWrite);
  map.set_access(0x20000, 0x2000, PageAccess::kReadWrite);
  EXPECT_EQ(fake.slots.size(), 1u);
  EXPECT_EQ(map.regions().size(), 1u);
}

TEST(MemoryMapTest, RejectsUnalignedOrOutsideRanges) {
  GuestMemory memory(1 << 20);
  MemoryMap map(memory, [](const Memslot&) {});
  EXPECT_THROW(map.set_access(0x10001, 0x1000, PageAccess::kReadOnly), std::invalid_argument);
  EXPECT_THROW(map.set_access(1 << 20, 0x1000, PageAccess::kReadOnly), std::invalid_argument);
}

}  // namespace
}  // namespace drvm::vmm

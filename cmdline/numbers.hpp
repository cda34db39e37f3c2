// The one place that reads numbers from text for drvm's command lines and manifests: whole
// decimal numbers, sizes with binary K/M/G units, seconds, and guest RAM. The gdb stub's hex
// numbers are protocol, not user text, and stay in gdbstub/.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace drvm::cmdline {

// what(): "'TEXT' is not ...; write ..." -- the caller puts its option or key in front.
class NumberError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

inline constexpr std::uint64_t kKiB = 1ULL << 10;
inline constexpr std::uint64_t kMiB = 1ULL << 20;
inline constexpr std::uint64_t kGiB = 1ULL << 30;

// Decimal digits only ("0", "42"): no sign, no spaces, no suffix; nullopt if not, or too large.
std::optional<std::uint64_t> parse_whole_number(std::string_view text);

// A whole number of `bare_unit` bytes, or with a binary unit K, M or G (lower case too): with
// bare_unit = kMiB, "64" is 64 MiB as QEMU's -m 64. Throws NumberError.
std::uint64_t parse_size(std::string_view text, std::uint64_t bare_unit);

// Positive, finite seconds; fractions allowed ("0.5", "10"). Throws NumberError.
double parse_seconds(std::string_view text);

// Guest RAM for `drvm run --mem` and a manifest's `mem`: a bare number is MiB (as QEMU's -m),
// K/M/G suffixes as parse_size; a multiple of 4 KiB from 2 MiB to 3 GiB (vmm/boot/boot_layout.hpp).
inline constexpr std::uint64_t kMinGuestMemory = 2 * kMiB;
inline constexpr std::uint64_t kMaxGuestMemory = 3 * kGiB;
std::uint64_t parse_guest_memory(std::string_view text);  // throws NumberError

// vCPUs for `drvm run --cpus` and a manifest's `cpus`: a whole number from 1 to 255 (xAPIC IDs
// are 8 bits and 0xff is the broadcast ID, so APIC IDs 0-254; the MADT's entries have 8-bit IDs
// too). KVM's own limit (KVM_CAP_MAX_VCPUS) is checked by drvm run once /dev/kvm is open.
inline constexpr unsigned kMaxVcpus = 255;
unsigned parse_vcpu_count(std::string_view text);  // throws NumberError

}  // namespace drvm::cmdline

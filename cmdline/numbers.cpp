#include "cmdline/numbers.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace drvm::cmdline {

std::optional<std::uint64_t> parse_whole_number(std::string_view text) {
  // Digits throughout: no sign, no spaces, no "0x".
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::uint64_t parse_size(std::string_view text, std::uint64_t bare_unit) {
  const std::size_t digits = text.find_first_not_of("0123456789");
  const std::string_view suffix = digits == std::string_view::npos ? "" : text.substr(digits);
  const std::optional<std::uint64_t> number = parse_whole_number(text.substr(0, digits));
  std::uint64_t unit = 0;
  if (suffix.empty()) {
    unit = bare_unit;
  } else if (suffix == "k" || suffix == "K") {
    unit = kKiB;
  } else if (suffix == "m" || suffix == "M") {
    unit = kMiB;
  } else if (suffix == "g" || suffix == "G") {
    unit = kGiB;
  }
  if (!number || unit == 0 || *number > ~std::uint64_t{0} / unit) {
    throw NumberError(fmt::format(
        "'{}' is not a size; write a whole number{} or one with K, M or G (e.g. 64M, 1G)", text,
        bare_unit == kMiB ? " of MiB"
        : bare_unit == 1  ? " of bytes"
                          : ""));
  }
  return *number * unit;
}

double parse_seconds(std::string_view text) {
  double seconds = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(seconds) || seconds <= 0) {
    throw NumberError(
        fmt::format("'{}' is not a positive number of seconds; write e.g. 0.5 or 10", text));
  }
  return seconds;
}

std::uint64_t parse_guest_memory(std::string_view text) {
  const std::uint64_t size = parse_size(text, kMiB);
  if (size % (4 * kKiB) != 0 || size < kMinGuestMemory || size > kMaxGuestMemory) {
    throw NumberError(fmt::format(
        "{} is out of range; give a multiple of 4 KiB from 2M to 3G (a bare number is MiB)", text));
  }
  return size;
}

unsigned parse_vcpu_count(std::string_view text) {
  const auto count = parse_whole_number(text);
  if (!count || *count < 1 || *count > kMaxVcpus) {
    throw NumberError(
        fmt::format("'{}' is not a vCPU count; give a whole number from 1 to {}", text, kMaxVcpus));
  }
  return static_cast<unsigned>(*count);
}

}  // namespace drvm::cmdline

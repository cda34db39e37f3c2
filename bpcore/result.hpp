// Error codes and the Result type returned by every fallible bpcore call.
#pragma once

#include <cassert>
#include <optional>
#include <string_view>
#include <utility>

namespace drvm::bp {

/// One code per way a request can be refused. Each has a message (error_message()).
enum class Error {
  kBadLength,      ///< length is not 1, 2, 4 or 8 bytes
  kMisaligned,     ///< address is not a multiple of the length
  kExecuteLength,  ///< instruction breakpoint with a length other than 1
  kNonCanonical,   ///< address is not canonical (bits 63..47 differ)
  kUnknownType,    ///< type is not read, write, read/write or execute
  kNoSpace,        ///< no free slot under the constraint rules (the kernel's ENOSPC)
  kBadWeight,      ///< weight is 0 or larger than the slot pool
  kBadVcpu,        ///< vCPU index out of range, or "all vCPUs" for a vCPU-bound event
  kUnknownEvent,   ///< event id is stale or was never issued
};

/// A one-line, human-readable description of `error` (no trailing period).
std::string_view error_message(Error error);

/// Either a value of type T or an Error; Result<void> carries only the error.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}
  Result(Error error) : error_(error) {}

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  /// The value; only valid when ok().
  const T& value() const {
    assert(ok());
    return *value_;
  }
  T& value() {
    assert(ok());
    return *value_;
  }
  /// The error; only meaningful when !ok().
  Error error() const { return error_; }

 private:
  std::optional<T> value_;
  Error error_{};
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(error) {}

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  Error error() const { return error_.value_or(Error{}); }

 private:
  std::optional<Error> error_;
};

}  // namespace drvm::bp

// QEMU's spellings typed at `drvm run` (-kernel, -append, -m, -s, -S, -gdb, ...): a one-line hint
// with drvm's equivalent instead of "unknown option". docs/user-guide.md, "Coming from QEMU".
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace drvm::cli {

// For the first QEMU spelling among the options (before any "--"): "run: '-kernel' is QEMU's
// spelling; <what drvm does instead>". nullopt if there is none.
std::optional<std::string> qemu_spelling_hint(std::span<const std::string_view> args);

}  // namespace drvm::cli

// Golden files: the exact serial output a case must produce, kept beside the manifest.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace drvm::harness {

// The file's bytes, or nullopt when it does not exist or cannot be read.
std::optional<std::string> read_golden(const std::filesystem::path& file);

// Replaces the file with `contents` (write to a temporary beside it, then rename, so an
// interrupted update never leaves half a golden file). Creates missing directories.
// Throws std::system_error on failure.
void write_golden(const std::filesystem::path& file, std::string_view contents);

}  // namespace drvm::harness

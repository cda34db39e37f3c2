#include "harness/golden.hpp"

#include <fstream>
#include <sstream>
#include <system_error>

namespace drvm::harness {

namespace fs = std::filesystem;

std::optional<std::string> read_golden(const fs::path& file) {
  std::error_code error;
  if (!fs::is_regular_file(file, error)) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_golden(const fs::path& file, std::string_view contents) {
  if (file.has_parent_path()) fs::create_directories(file.parent_path());
  const fs::path temporary = fs::path(file).concat(".tmp");
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) {
      throw std::system_error(errno ? errno : EIO, std::generic_category(),
                              "writing " + temporary.string());
    }
  }
  fs::rename(temporary, file);
}

}  // namespace drvm::harness

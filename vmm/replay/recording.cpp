#include "vmm/replay/recording.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace drvm::vmm::replay {
namespace {

constexpr const char* kFirstLine = "drvm-recording 1";

std::string quoted(const std::string& text) {
  return fmt::format("{}:{}", text.size(), text);
}

// LENGTH:BYTES at the start of `rest`; advances past it.
std::string unquote(std::string_view& rest) {
  const std::size_t colon = rest.find(':');
  std::size_t length = 0;
  if (colon == std::string_view::npos ||
      std::sscanf(std::string(rest.substr(0, colon)).c_str(), "%zu", &length) != 1 ||
      colon + 1 + length > rest.size()) {
    throw RecordingError("a malformed string in the recording's header");
  }
  std::string text(rest.substr(colon + 1, length));
  rest.remove_prefix(colon + 1 + length);
  if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  return text;
}

std::uint64_t number(std::string_view text) {
  const std::string copy(text);
  char* end = nullptr;
  errno = 0;
  const std::uint64_t value = std::strtoull(copy.c_str(), &end, 0);
  if (copy.empty() || errno != 0 || end != copy.c_str() + copy.size()) {
    throw RecordingError(fmt::format("'{}' in the recording's header is not a number", text));
  }
  return value;
}

std::string file_line(const RecordedFile& file) {
  return fmt::format("{} {} {:#018x}", quoted(file.path), file.size, file.hash);
}

RecordedFile parse_file(std::string_view rest) {
  RecordedFile file;
  file.path = unquote(rest);
  const std::size_t space = rest.find(' ');
  if (space == std::string_view::npos) throw RecordingError("a malformed file line");
  file.size = number(rest.substr(0, space));
  file.hash = number(rest.substr(space + 1));
  return file;
}

}  // namespace

RecordedFile describe_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RecordingError(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  RecordedFile file;
  file.path = path;
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      hash = (hash ^ static_cast<std::uint8_t>(buffer[i])) * 0x100000001b3ULL;
    }
    file.size += static_cast<std::uint64_t>(in.gcount());
  }
  file.hash = hash;
  return file;
}

std::string module_file(const std::string& spec) {
  return spec.substr(0, spec.find(' '));
}

void write_recording(const std::string& path, const Recording& recording, const ExitLog& log) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    throw RecordingError(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
  out << kFirstLine << '\n';
  out << "image " << file_line(recording.image) << '\n';
  out << "memory " << recording.memory << '\n';
  out << "cmdline " << quoted(recording.cmdline) << '\n';
  for (std::size_t i = 0; i < recording.modules.size(); ++i) {
    out << "module " << quoted(recording.module_specs.at(i)) << ' '
        << file_line(recording.modules[i]) << '\n';
  }
  out << "status " << recording.status << '\n';
  out << "ended " << quoted(recording.ended) << '\n';
  out << "exits\n";
  log.write(out);
  out.flush();
  if (!out) {
    throw RecordingError(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
}

Recording read_recording(const std::string& path, ExitLog* log) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RecordingError(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  std::string line;
  if (!std::getline(in, line) || line != kFirstLine) {
    throw RecordingError(fmt::format("{} is not a drvm recording", path));
  }
  Recording recording;
  bool has_image = false;
  while (std::getline(in, line)) {
    if (line == "exits") {
      if (!has_image) throw RecordingError(fmt::format("{} names no image", path));
      if (log != nullptr) {
        try {
          log->read(in);
        } catch (const std::runtime_error& error) {
          throw RecordingError(fmt::format("{}: {}", path, error.what()));
        }
      }
      return recording;
    }
    const std::size_t space = line.find(' ');
    const std::string key = line.substr(0, space);
    std::string_view rest =
        space == std::string::npos ? std::string_view() : std::string_view(line).substr(space + 1);
    if (key == "image") {
      recording.image = parse_file(rest);
      has_image = true;
    } else if (key == "memory") {
      recording.memory = number(rest);
    } else if (key == "cmdline") {
      recording.cmdline = unquote(rest);
    } else if (key == "module") {
      recording.module_specs.push_back(unquote(rest));
      recording.modules.push_back(parse_file(rest));
    } else if (key == "status") {
      recording.status = static_cast<int>(number(rest));
    } else if (key == "ended") {
      recording.ended = unquote(rest);
    }
    // Unknown keys are a newer drvm's additions: skipped.
  }
  throw RecordingError(fmt::format("{} ends before its exit log (a truncated recording)", path));
}

std::optional<std::string> check_recorded_files(const Recording& recording) {
  std::vector<RecordedFile> files{recording.image};
  files.insert(files.end(), recording.modules.begin(), recording.modules.end());
  for (const RecordedFile& recorded : files) {
    RecordedFile now;
    try {
      now = describe_file(recorded.path);
    } catch (const RecordingError& error) {
      return std::string(error.what());
    }
    if (now.size != recorded.size || now.hash != recorded.hash) {
      return fmt::format(
          "{} is not the file that was recorded ({} bytes, checksum {:#x}; now {} "
          "bytes, {:#x})",
          recorded.path, recorded.size, recorded.hash, now.size, now.hash);
    }
  }
  return std::nullopt;
}

}  // namespace drvm::vmm::replay

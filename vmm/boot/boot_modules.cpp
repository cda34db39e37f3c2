#include "vmm/boot/boot_modules.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>

#include "vmm/boot/boot_layout.hpp"
#include "vmm/kvm/kvm.hpp"

namespace drvm::vmm {

namespace {

std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// "16M" for messages about --mem: the smallest whole MiB that holds `bytes`.
std::string mebibytes_for(std::uint64_t bytes) {
  return fmt::format("{}M", (bytes + (1 << 20) - 1) >> 20);
}

[[noreturn]] void refuse_module(const std::string& path, std::string_view cause,
                                std::string_view fix) {
  throw SetupError(fmt::format("--initrd: module {}: {}; {}", path, cause, fix));
}

}  // namespace

std::vector<std::string> split_initrd_option(std::string_view value) {
  std::vector<std::string> specs(1);
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] != ',') {
      specs.back() += value[i];
    } else if (i + 1 < value.size() && value[i + 1] == ',') {
      specs.back() += ',';
      ++i;
    } else {
      specs.emplace_back();
    }
  }
  return specs;
}

BootModule read_boot_module(const std::string& spec, std::uint64_t memory_size) {
  BootModule module;
  module.cmdline = spec;
  module.path = spec.substr(0, spec.find(' '));
  if (module.path.empty()) {
    throw SetupError(fmt::format(
        "--initrd: '{}' names no file; give FILE or \"FILE ARGS\", several separated by commas",
        spec));
  }
  const int fd = ::open(module.path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    refuse_module(module.path, std::strerror(error),
                  error == ENOENT ? "check the path" : "check the file's permissions");
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    refuse_module(module.path, "not a regular file", "give the path of a file");
  }
  const auto size = static_cast<std::uint64_t>(info.st_size);
  if (size > memory_size) {
    ::close(fd);
    refuse_module(module.path,
                  fmt::format("{} bytes do not fit in guest RAM ({} bytes)", size, memory_size),
                  fmt::format("raise --mem (to at least {} plus the image)", mebibytes_for(size)));
  }
  module.data.resize(static_cast<std::size_t>(size));
  std::size_t done = 0;
  while (done < module.data.size()) {
    const ssize_t n =
        ::pread(fd, module.data.data() + done, module.data.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      refuse_module(module.path,
                    fmt::format("read failed: {}", n < 0 ? std::strerror(error) : "file shrank"),
                    "check the file and the disk");
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return module;
}

std::vector<std::uint64_t> place_modules(std::span<const BootModule> modules, std::uint64_t start,
                                         std::uint64_t memory_size) {
  std::vector<std::uint64_t> addresses;
  std::uint64_t next = align_up(start, kModuleAlign);
  for (const BootModule& module : modules) {
    const std::uint64_t size = module.data.size();
    // Below 1 MiB only if the module ends before the legacy hole (images linked low).
    if (next < layout::kLegacyHoleEnd && next + size > layout::kLegacyHoleStart) {
      next = layout::kLegacyHoleEnd;
    }
    const std::uint64_t end = next + size;
    if (end > memory_size) {
      throw SetupError(fmt::format(
          "--initrd: module {} ({} bytes) does not fit in guest RAM: placed at {:#x} after the "
          "image and the modules before it, it would end at {:#x}, past the {} bytes of --mem; "
          "raise --mem to at least {}",
          module.path, size, next, end, memory_size, mebibytes_for(end)));
    }
    addresses.push_back(next);
    next = align_up(end, kModuleAlign);
  }
  return addresses;
}

}  // namespace drvm::vmm

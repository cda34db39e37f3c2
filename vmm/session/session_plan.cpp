#include "vmm/session/session_plan.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace drvm::vmm::session {
namespace {

constexpr const char* kSymbolsHint =
    "give an ELF with a symbol table, such as the unstripped build "
    "of the image";

// --symbols FILE: its symbol table, or an OptionError that says what is wrong with FILE.
SymbolTable load_symbol_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat info {};
  if (fd < 0 || ::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    const int error = fd < 0 ? errno : EISDIR;
    if (fd >= 0) ::close(fd);
    throw OptionError(fmt::format("--symbols: cannot read {}: {}; {}", path,
                                  fd < 0 ? std::strerror(error) : "not a regular file",
                                  kSymbolsHint));
  }
  std::vector<std::byte> bytes(static_cast<std::size_t>(info.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      ::close(fd);
      throw OptionError(fmt::format("--symbols: cannot read {}: {}; {}", path, std::strerror(error),
                                    kSymbolsHint));
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  SymbolTable table = SymbolTable::from_elf(bytes);
  if (bytes.size() < 4 || std::memcmp(bytes.data(),
                                      "\x7f"
                                      "ELF",
                                      4) != 0) {
    throw OptionError(fmt::format("--symbols: {} is not an ELF file; {}", path, kSymbolsHint));
  }
  if (table.empty()) {
    // The table's problem speaks of "the image"; here it is FILE.
    std::string why = table.problem();
    if (why.starts_with("the image ")) why.replace(0, 10, "it ");
    throw OptionError(
        fmt::format("--symbols: {} has no usable symbols: {}; {}", path, why, kSymbolsHint));
  }
  return table;
}

}  // namespace

SessionPlan::SessionPlan(SessionOptions options, const BootImage& image, unsigned vcpus,
                         bool gdb_attached)
    : options_(std::move(options)), image_name_(image.name), vcpus_(vcpus) {
  options_.finalize();
  (void)gdb_attached;  // the slot default no longer depends on it
  slots_ = options_.debug_slots();
  // A bad --symbols FILE is an error even without --event: the user meant something by it.
  if (!options_.symbols.empty()) {
    symbols_ = load_symbol_file(options_.symbols);
    symbol_source_ = options_.symbols;
  }
  if (!options_.active()) return;
  if (options_.symbols.empty()) {
    symbols_ = SymbolTable::from_elf(image.bytes);
    symbol_source_ = image_name_;
  }
  // The budget pinned events must fit: the slots the controller will have.
  const std::uint32_t slots = slots_.value_or(debug::DebugOptions{}.slots);
  events_ = plan_events(options_.events, symbols_, PlanLimits{symbol_source_, vcpus_, slots});
}

void SessionPlan::configure(debug::DebugOptions& debug_options) const {
  if (slots_) debug_options.slots = *slots_;
}

}  // namespace drvm::vmm::session

#include "vmm/image.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>
#include <optional>

#include "vmm/boot_layout.hpp"

namespace drvm::vmm {

namespace {

[[noreturn]] void refuse(const std::string& name, std::string_view cause, std::string_view fix) {
  throw ImageError(fmt::format("cannot boot {}: {}; {}", name, cause, fix));
}

constexpr std::string_view kRebuild = "rebuild the image";

// Class-independent view of the headers drvm needs.
struct ProgramHeader {
  std::uint32_t type;
  std::uint64_t offset, paddr, filesz, memsz, align;
};
struct SectionHeader {
  std::uint32_t type;
  std::uint64_t offset, size, align;
};

template <typename T>
T load(const std::vector<std::byte>& bytes, std::uint64_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

bool in_file(const std::vector<std::byte>& bytes, std::uint64_t offset, std::uint64_t size) {
  return offset <= bytes.size() && size <= bytes.size() - offset;
}

class ElfReader {
 public:
  ElfReader(const std::vector<std::byte>& bytes, const std::string& name)
      : bytes_(bytes), name_(name) {}

  // The fields drvm uses, the same for both ELF classes.
  template <typename Ehdr>
  void take_header(const Ehdr& header) {
    type_ = header.e_type;
    machine_ = header.e_machine;
    entry_ = header.e_entry;
    phoff_ = header.e_phoff;
    phentsize_ = header.e_phentsize;
    phnum_ = header.e_phnum;
    shoff_ = header.e_shoff;
    shentsize_ = header.e_shentsize;
    shnum_ = header.e_shnum;
  }

  void read_header() {
    if (bytes_.size() < EI_NIDENT || std::memcmp(bytes_.data(), ELFMAG, SELFMAG) != 0) {
      refuse(name_, "not an ELF file", "give a PVH ELF or ELF64 image");
    }
    const auto elf_class = static_cast<unsigned char>(bytes_[EI_CLASS]);
    if (elf_class != ELFCLASS32 && elf_class != ELFCLASS64) {
      refuse(name_, fmt::format("unknown ELF class {}", elf_class), kRebuild);
    }
    is64_ = elf_class == ELFCLASS64;
    if (static_cast<unsigned char>(bytes_[EI_DATA]) != ELFDATA2LSB) {
      refuse(name_, "big-endian ELF", "build a little-endian x86 image");
    }
    if (bytes_.size() < (is64_ ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr))) {
      refuse(name_, fmt::format("truncated ELF header ({} bytes)", bytes_.size()), kRebuild);
    }
    if (is64_) {
      take_header(load<Elf64_Ehdr>(bytes_, 0));
    } else {
      take_header(load<Elf32_Ehdr>(bytes_, 0));
    }
    const unsigned expected_machine = is64_ ? EM_X86_64 : EM_386;
    if (machine_ != expected_machine) {
      refuse(name_,
             fmt::format("ELF machine {} in a {}-bit image (expected {})", machine_,
                         is64_ ? 64 : 32, is64_ ? "EM_X86_64" : "EM_386"),
             "build the image for x86");
    }
    if (type_ != ET_EXEC && type_ != ET_DYN) {
      refuse(name_, fmt::format("ELF type {} is not an executable", type_),
             "link the image into an executable");
    }
  }

  std::vector<ProgramHeader> program_headers() const {
    const std::size_t entry_size = is64_ ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    if (phnum_ == 0) refuse(name_, "no program headers", "link the image as an executable");
    if (phentsize_ != entry_size) {
      refuse(name_, fmt::format("program header size {} (expected {})", phentsize_, entry_size),
             kRebuild);
    }
    if (!in_file(bytes_, phoff_, std::uint64_t{phnum_} * entry_size)) {
      refuse(name_, "truncated: the program header table extends past the end of the file",
             kRebuild);
    }
    std::vector<ProgramHeader> headers;
    for (unsigned i = 0; i < phnum_; ++i) {
      const std::uint64_t at = phoff_ + i * entry_size;
      if (is64_) {
        const auto h = load<Elf64_Phdr>(bytes_, at);
        headers.push_back({h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz, h.p_align});
      } else {
        const auto h = load<Elf32_Phdr>(bytes_, at);
        headers.push_back({h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz, h.p_align});
      }
    }
    return headers;
  }

  // Section headers are optional: an image stripped of them (or with a damaged table) still
  // boots from its program headers, so a bad table yields no sections rather than an error.
  std::vector<SectionHeader> section_headers() const {
    const std::size_t entry_size = is64_ ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
    if (shnum_ == 0 || shentsize_ != entry_size ||
        !in_file(bytes_, shoff_, std::uint64_t{shnum_} * entry_size)) {
      return {};
    }
    std::vector<SectionHeader> headers;
    for (unsigned i = 0; i < shnum_; ++i) {
      const std::uint64_t at = shoff_ + i * entry_size;
      if (is64_) {
        const auto h = load<Elf64_Shdr>(bytes_, at);
        headers.push_back({h.sh_type, h.sh_offset, h.sh_size, h.sh_addralign});
      } else {
        const auto h = load<Elf32_Shdr>(bytes_, at);
        headers.push_back({h.sh_type, h.sh_offset, h.sh_size, h.sh_addralign});
      }
    }
    return headers;
  }

  // Scans one note area for Xen's PHYS32_ENTRY note.
  std::optional<std::uint64_t> find_pvh_entry(std::uint64_t offset, std::uint64_t size,
                                              std::uint64_t align) const {
    if (!in_file(bytes_, offset, size)) {
      refuse(name_, "truncated: a note area extends past the end of the file", kRebuild);
    }
    const std::uint64_t step = align == 8 ? 8 : 4;
    auto round = [step](std::uint64_t n) { return (n + step - 1) / step * step; };
    std::uint64_t at = offset;
    const std::uint64_t end = offset + size;
    // `at` can step past `end` when the last note's padding is cut off.
    while (at <= end && end - at >= 12) {
      const auto namesz = load<std::uint32_t>(bytes_, at);
      const auto descsz = load<std::uint32_t>(bytes_, at + 4);
      const auto type = load<std::uint32_t>(bytes_, at + 8);
      const std::uint64_t name_at = at + 12;
      const std::uint64_t desc_at = name_at + round(namesz);
      if (desc_at > end || descsz > end - desc_at) break;  // malformed tail: stop scanning
      const bool xen = namesz == 4 && std::memcmp(bytes_.data() + name_at, "Xen", 4) == 0;
      if (xen && type == kPvhEntryNoteType) {
        if (descsz == 4) return load<std::uint32_t>(bytes_, desc_at);
        if (descsz == 8) return load<std::uint64_t>(bytes_, desc_at);
        refuse(name_, fmt::format("PVH entry note has a {}-byte value", descsz), kRebuild);
      }
      at = desc_at + round(descsz);
    }
    return std::nullopt;
  }

  bool is64() const { return is64_; }
  std::uint64_t entry() const { return entry_; }

 private:
  const std::vector<std::byte>& bytes_;
  const std::string& name_;
  bool is64_ = false;
  unsigned type_ = 0, machine_ = 0;
  std::uint64_t entry_ = 0, phoff_ = 0, shoff_ = 0;
  unsigned phentsize_ = 0, phnum_ = 0, shentsize_ = 0, shnum_ = 0;
};

}  // namespace

BootImage parse_image(std::vector<std::byte> bytes, const std::string& name) {
  BootImage image;
  image.name = name;
  image.bytes = std::move(bytes);
  ElfReader reader(image.bytes, name);
  reader.read_header();

  std::optional<std::uint64_t> pvh_entry;
  const auto program_headers = reader.program_headers();
  for (std::size_t i = 0; i < program_headers.size(); ++i) {
    const ProgramHeader& ph = program_headers[i];
    if (ph.type == PT_NOTE && !pvh_entry) {
      pvh_entry = reader.find_pvh_entry(ph.offset, ph.filesz, ph.align);
    }
    if (ph.type != PT_LOAD || ph.memsz == 0) continue;
    if (ph.filesz > ph.memsz) {
      refuse(name, fmt::format("segment {} has a file size larger than its memory size", i),
             kRebuild);
    }
    if (!in_file(image.bytes, ph.offset, ph.filesz)) {
      refuse(name,
             fmt::format("truncated: segment {} (file offset {:#x}, {:#x} bytes) extends past the "
                         "end of the file ({} bytes)",
                         i, ph.offset, ph.filesz, image.bytes.size()),
             kRebuild);
    }
    image.segments.push_back({ph.offset, ph.filesz, ph.paddr, ph.memsz});
  }
  if (!pvh_entry) {
    for (const SectionHeader& sh : reader.section_headers()) {
      if (sh.type != SHT_NOTE) continue;
      pvh_entry = reader.find_pvh_entry(sh.offset, sh.size, sh.align);
      if (pvh_entry) break;
    }
  }
  if (image.segments.empty()) {
    refuse(name, "no loadable (PT_LOAD) segment", "link the image with its code in a PT_LOAD");
  }
  if (pvh_entry) {
    if (*pvh_entry > 0xffffffffULL) {
      refuse(name, fmt::format("PVH entry {:#x} is above 4 GiB", *pvh_entry), kRebuild);
    }
    image.mode = EntryMode::kPvh32;
    image.entry = *pvh_entry;
  } else if (reader.is64()) {
    image.mode = EntryMode::kLong64;
    image.entry = reader.entry();
  } else {
    refuse(name, "32-bit ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)",
           "add the PVH note or build a 64-bit ELF");
  }
  return image;
}

BootImage read_image(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    refuse(path, std::strerror(error),
           error == ENOENT ? "check the path" : "check the file's permissions");
  }
  struct stat info {};
  std::vector<std::byte> bytes;
  const bool is_file = ::fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
  if (is_file) {
    bytes.resize(static_cast<std::size_t>(info.st_size));
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int error = n < 0 ? errno : EIO;
        ::close(fd);
        refuse(path, fmt::format("read failed: {}", std::strerror(error)),
               "check the file and the disk");
      }
      done += static_cast<std::size_t>(n);
    }
  }
  ::close(fd);
  if (!is_file) refuse(path, "not a regular file", "give the path of an ELF image file");
  return parse_image(std::move(bytes), path);
}

void load_image(const BootImage& image, GuestMemory& memory) {
  for (std::size_t i = 0; i < image.segments.size(); ++i) {
    const LoadSegment& segment = image.segments[i];
    const std::uint64_t end = segment.gpa + segment.mem_size;
    if (end < segment.gpa || !memory.contains(segment.gpa, segment.mem_size)) {
      refuse(image.name,
             fmt::format("segment {} at {:#x}-{:#x} lies outside guest memory (0-{:#x})", i,
                         segment.gpa, end, memory.size()),
             "link the image lower or raise --mem");
    }
    if (segment.gpa < layout::kBootAreaEnd) {
      refuse(image.name,
             fmt::format("segment {} at {:#x}-{:#x} overlaps drvm's boot structures at 0-{:#x}", i,
                         segment.gpa, end, layout::kBootAreaEnd),
             "link the image at or above 0x10000 (1 MiB is usual)");
    }
  }
  for (const LoadSegment& segment : image.segments) {
    std::byte* target = memory.host(segment.gpa, segment.mem_size);
    std::memcpy(target, image.bytes.data() + segment.file_offset, segment.file_size);
    // Anonymous memory is zero already; clear the bss anyway in case segments overlap.
    std::memset(target + segment.file_size, 0, segment.mem_size - segment.file_size);
  }
  if (image.mode == EntryMode::kPvh32 && !memory.contains(image.entry, 1)) {
    refuse(image.name, fmt::format("PVH entry {:#x} lies outside guest memory", image.entry),
           "check the image's PVH note");
  }
}

}  // namespace drvm::vmm

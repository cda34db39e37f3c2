#include "vmm/boot/image.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <span>
#include <utility>

#include "vmm/boot/boot_layout.hpp"
#include "vmm/boot/multiboot.hpp"

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
  std::uint32_t link;
};

template <typename T>
T load(std::span<const std::byte> bytes, std::uint64_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

// The `count` entries of an ELF table (program or section headers), each read as Entry64 or
// Entry32 and converted by `convert` (a generic lambda: both layouts name their fields alike).
template <typename Entry64, typename Entry32, typename Convert>
auto load_table(std::span<const std::byte> table, unsigned count, bool is64, Convert convert) {
  std::vector<decltype(convert(std::declval<Entry64>()))> entries;
  for (unsigned i = 0; i < count; ++i) {
    entries.push_back(is64 ? convert(load<Entry64>(table, i * std::uint64_t{sizeof(Entry64)}))
                           : convert(load<Entry32>(table, i * std::uint64_t{sizeof(Entry32)})));
  }
  return entries;
}

template <typename T>
void store(std::span<std::byte> bytes, std::uint64_t offset, const T& value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

// Bounds on what drvm reads besides the loadable segments (which guest RAM bounds); real images
// are far below them, and they keep a hostile header from costing memory.
constexpr std::uint64_t kMaxNoteArea = 1 << 20;
constexpr std::uint64_t kMaxSymbolBytes = 256 << 20;

// Where the image's bytes come from: the file, read piece by piece, or memory (tests).
class ImageSource {
 public:
  ImageSource(std::span<const std::byte> memory, std::uint64_t size, int fd,
              const std::string& name)
      : memory_(memory), size_(size), fd_(fd), name_(name) {}

  std::uint64_t size() const { return size_; }
  bool contains(std::uint64_t offset, std::uint64_t size) const {
    return offset <= size_ && size <= size_ - offset;
  }

  // `out.size()` bytes at `offset`; the caller checked contains().
  void read(std::uint64_t offset, std::span<std::byte> out) const {
    if (out.empty()) return;  // memcpy must not see the null pointers of empty spans
    if (fd_ < 0) {
      std::memcpy(out.data(), memory_.data() + offset, out.size());
      return;
    }
    std::size_t done = 0;
    while (done < out.size()) {
      const ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        refuse(name_, fmt::format("read failed: {}", n < 0 ? std::strerror(errno) : "file shrank"),
               "check the file and the disk");
      }
      done += static_cast<std::size_t>(n);
    }
  }

  std::vector<std::byte> read(std::uint64_t offset, std::uint64_t size) const {
    std::vector<std::byte> out(static_cast<std::size_t>(size));
    read(offset, out);
    return out;
  }

 private:
  std::span<const std::byte> memory_;
  std::uint64_t size_;
  int fd_;
  const std::string& name_;
};

class ElfReader {
 public:
  ElfReader(const ImageSource& source, const std::string& name) : source_(source), name_(name) {}

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
    header_ = source_.read(0, std::min<std::uint64_t>(source_.size(), sizeof(Elf64_Ehdr)));
    if (header_.size() < EI_NIDENT || std::memcmp(header_.data(), ELFMAG, SELFMAG) != 0) {
      refuse(name_, "not an ELF file", "give a PVH ELF or ELF64 image");
    }
    const auto elf_class = static_cast<unsigned char>(header_[EI_CLASS]);
    if (elf_class != ELFCLASS32 && elf_class != ELFCLASS64) {
      refuse(name_, fmt::format("unknown ELF class {}", elf_class), kRebuild);
    }
    is64_ = elf_class == ELFCLASS64;
    if (static_cast<unsigned char>(header_[EI_DATA]) != ELFDATA2LSB) {
      refuse(name_, "big-endian ELF", "build a little-endian x86 image");
    }
    const std::size_t header_size = is64_ ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
    if (header_.size() < header_size) {
      refuse(name_, fmt::format("truncated ELF header ({} bytes)", header_.size()), kRebuild);
    }
    header_.resize(header_size);
    if (is64_) {
      take_header(load<Elf64_Ehdr>(header_, 0));
    } else {
      take_header(load<Elf32_Ehdr>(header_, 0));
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

  std::vector<ProgramHeader> program_headers() {
    const std::size_t entry_size = is64_ ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    if (phnum_ == 0) refuse(name_, "no program headers", "link the image as an executable");
    if (phentsize_ != entry_size) {
      refuse(name_, fmt::format("program header size {} (expected {})", phentsize_, entry_size),
             kRebuild);
    }
    if (!source_.contains(phoff_, std::uint64_t{phnum_} * entry_size)) {
      refuse(name_, "truncated: the program header table extends past the end of the file",
             kRebuild);
    }
    phdr_table_ = source_.read(phoff_, std::uint64_t{phnum_} * entry_size);
    return load_table<Elf64_Phdr, Elf32_Phdr>(phdr_table_, phnum_, is64_, [](const auto& h) {
      return ProgramHeader{h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz, h.p_align};
    });
  }

  // Section headers are optional: an image stripped of them (or with a damaged table) still
  // boots from its program headers, so a bad table yields no sections rather than an error.
  std::vector<SectionHeader> section_headers() {
    const std::size_t entry_size = is64_ ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
    if (shnum_ == 0 || shentsize_ != entry_size ||
        !source_.contains(shoff_, std::uint64_t{shnum_} * entry_size)) {
      return {};
    }
    shdr_table_ = source_.read(shoff_, std::uint64_t{shnum_} * entry_size);
    return load_table<Elf64_Shdr, Elf32_Shdr>(shdr_table_, shnum_, is64_, [](const auto& h) {
      return SectionHeader{h.sh_type, h.sh_offset, h.sh_size, h.sh_addralign, h.sh_link};
    });
  }

  // Scans one note area for Xen's PHYS32_ENTRY note. `area` names it in errors.
  std::optional<std::uint64_t> find_pvh_entry(std::uint64_t offset, std::uint64_t size,
                                              std::uint64_t align, std::string_view area) const {
    if (!source_.contains(offset, size)) {
      refuse(name_, fmt::format("truncated: {} extends past the end of the file", area), kRebuild);
    }
    if (size > kMaxNoteArea) {
      refuse(
          name_,
          fmt::format("{} has {:#x} bytes, more than drvm reads ({:#x})", area, size, kMaxNoteArea),
          kRebuild);
    }
    const std::vector<std::byte> notes = source_.read(offset, size);
    const std::uint64_t step = align == 8 ? 8 : 4;
    auto round = [step](std::uint64_t n) { return (n + step - 1) / step * step; };
    std::uint64_t at = 0;
    const std::uint64_t end = notes.size();
    // `at` can step past `end` when the last note's padding is cut off.
    while (at <= end && end - at >= 12) {
      const auto namesz = load<std::uint32_t>(notes, at);
      const auto descsz = load<std::uint32_t>(notes, at + 4);
      const auto type = load<std::uint32_t>(notes, at + 8);
      const std::uint64_t name_at = at + 12;
      const std::uint64_t desc_at = name_at + round(namesz);
      const bool xen =
          namesz == 4 && name_at + 4 <= end && std::memcmp(notes.data() + name_at, "Xen", 4) == 0;
      if (desc_at > end || descsz > end - desc_at) {
        // A damaged note could be the PVH entry: booting on without it would run the wrong code.
        refuse(name_,
               fmt::format("malformed {}note at file offset {:#x} in {}: its name ({} bytes) and "
                           "descriptor ({} bytes) run past the end of the area",
                           xen && type == kPvhEntryNoteType ? "PVH entry (Xen type 18) " : "",
                           offset + at, area, namesz, descsz),
               "fix the note (or the area's size) in the image's linker script");
      }
      if (xen && type == kPvhEntryNoteType) {
        if (descsz == 4) return load<std::uint32_t>(notes, desc_at);
        if (descsz == 8) return load<std::uint64_t>(notes, desc_at);
        refuse(name_,
               fmt::format("PVH entry note at file offset {:#x} has a {}-byte value (expected 4 "
                           "or 8)",
                           offset + at, descsz),
               kRebuild);
      }
      at = desc_at + round(descsz);
    }
    return std::nullopt;
  }

  bool is64() const { return is64_; }
  std::uint64_t entry() const { return entry_; }
  const std::vector<std::byte>& header() const { return header_; }
  const std::vector<std::byte>& phdr_table() const { return phdr_table_; }
  const std::vector<std::byte>& shdr_table() const { return shdr_table_; }

 private:
  const ImageSource& source_;
  const std::string& name_;
  std::vector<std::byte> header_, phdr_table_, shdr_table_;
  bool is64_ = false;
  unsigned type_ = 0, machine_ = 0;
  std::uint64_t entry_ = 0, phoff_ = 0, shoff_ = 0;
  unsigned phentsize_ = 0, phnum_ = 0, shentsize_ = 0, shnum_ = 0;
};

// BootImage::bytes: the ELF header, program and section headers, each PT_LOAD's file bytes and
// the symbol table with its strings, packed one after the other with the headers' offsets
// rewritten to match. Other parts of the file (debug sections, padding, holes) are never read:
// their headers say offset 0, size 0. Readers of ELF structure (site scanner, symbol table) work
// unchanged.
template <typename Ehdr, typename Phdr, typename Shdr>
std::vector<std::byte> compact_elf(const ElfReader& reader, const ImageSource& source,
                                   std::vector<LoadSegment>& segments,
                                   const std::optional<std::pair<unsigned, unsigned>>& symbols) {
  std::vector<std::byte> phdrs = reader.phdr_table();
  std::vector<std::byte> shdrs = reader.shdr_table();
  std::uint64_t size = sizeof(Ehdr) + phdrs.size() + shdrs.size();
  for (const LoadSegment& segment : segments) size += segment.file_size;
  auto section = [&](unsigned index) { return load<Shdr>(shdrs, index * sizeof(Shdr)); };
  if (symbols) size += section(symbols->first).sh_size + section(symbols->second).sh_size;

  std::vector<std::byte> out(static_cast<std::size_t>(size));
  std::uint64_t at = sizeof(Ehdr) + phdrs.size() + shdrs.size();
  auto copy = [&](std::uint64_t offset, std::uint64_t bytes) {
    source.read(offset, std::span(out.data() + at, static_cast<std::size_t>(bytes)));
    const std::uint64_t placed = at;
    at += bytes;
    return placed;
  };
  std::size_t next_segment = 0;
  for (std::size_t i = 0; i < phdrs.size() / sizeof(Phdr); ++i) {
    auto phdr = load<Phdr>(phdrs, i * sizeof(Phdr));
    if (phdr.p_type == PT_LOAD && phdr.p_memsz != 0) {
      LoadSegment& segment = segments[next_segment++];
      segment.file_offset = copy(segment.file_offset, segment.file_size);
      phdr.p_offset = static_cast<decltype(phdr.p_offset)>(segment.file_offset);
    } else {
      phdr.p_offset = 0;
      phdr.p_filesz = 0;
    }
    store(phdrs, i * sizeof(Phdr), phdr);
  }
  for (unsigned i = 0; i < shdrs.size() / sizeof(Shdr); ++i) {
    auto shdr = section(i);
    if (symbols && (i == symbols->first || i == symbols->second)) {
      shdr.sh_offset = static_cast<decltype(shdr.sh_offset)>(copy(shdr.sh_offset, shdr.sh_size));
    } else {
      shdr.sh_offset = 0;
      if (shdr.sh_type != SHT_NOBITS) shdr.sh_size = 0;
    }
    store(shdrs, i * sizeof(Shdr), shdr);
  }
  auto header = load<Ehdr>(reader.header(), 0);
  header.e_phoff = sizeof(Ehdr);
  header.e_shoff = shdrs.empty() ? 0 : sizeof(Ehdr) + phdrs.size();
  if (shdrs.empty()) header.e_shnum = 0;
  store(out, 0, header);
  // Empty vectors may hold null pointers, which memcpy must not be given.
  if (!phdrs.empty()) std::memcpy(out.data() + sizeof(Ehdr), phdrs.data(), phdrs.size());
  if (!shdrs.empty()) {
    std::memcpy(out.data() + sizeof(Ehdr) + phdrs.size(), shdrs.data(), shdrs.size());
  }
  return out;
}

constexpr std::string_view kFormats = "drvm boots PVH ELF, ELF64 and Multiboot v1 images";

// The a.out kludge (Multiboot header flag 16): the header's address fields say which bytes of the
// file load where, whatever the file's format. Appends those bytes to image.bytes and makes them
// the one segment, as QEMU does (the ELF headers, if any, are ignored for loading).
void apply_aout_kludge(BootImage& image, const ImageSource& source, const MultibootHeader& header,
                       std::uint64_t memory_size) {
  const std::string& name = image.name;
  constexpr std::string_view kFix = "fix the Multiboot header's address fields";
  if (header.header_addr < header.load_addr) {
    refuse(name,
           fmt::format("Multiboot header_addr {:#x} is below its load_addr {:#x}",
                       header.header_addr, header.load_addr),
           kFix);
  }
  const std::uint64_t before_header = header.header_addr - header.load_addr;
  if (before_header > header.file_offset) {
    refuse(name,
           fmt::format("Multiboot header at file offset {:#x} says {:#x} bytes load before it "
                       "(header_addr - load_addr), more than the file has",
                       header.file_offset, before_header),
           kFix);
  }
  const std::uint64_t text_offset = header.file_offset - before_header;
  std::uint64_t load_size = source.size() - text_offset;  // load_end_addr 0: the rest of the file
  if (header.load_end_addr != 0) {
    if (header.load_end_addr < header.load_addr) {
      refuse(name,
             fmt::format("Multiboot load_end_addr {:#x} is below load_addr {:#x}",
                         header.load_end_addr, header.load_addr),
             kFix);
    }
    load_size = header.load_end_addr - header.load_addr;
    if (!source.contains(text_offset, load_size)) {
      refuse(name,
             fmt::format("truncated: Multiboot load_end_addr asks for {:#x} bytes from file offset "
                         "{:#x}, past the end of the file ({} bytes)",
                         load_size, text_offset, source.size()),
             kFix);
    }
  }
  std::uint64_t mem_size = load_size;
  if (header.bss_end_addr != 0) {
    if (header.bss_end_addr < header.load_addr + load_size) {
      refuse(name,
             fmt::format("Multiboot bss_end_addr {:#x} is below the end of the loaded bytes {:#x}",
                         header.bss_end_addr, header.load_addr + load_size),
             kFix);
    }
    mem_size = header.bss_end_addr - header.load_addr;
  }
  if (mem_size == 0) refuse(name, "the Multiboot address fields load nothing", kFix);
  if (mem_size > memory_size) {
    refuse(name,
           fmt::format("the Multiboot image ({:#x} bytes with its bss) does not fit in guest "
                       "memory ({:#x} bytes)",
                       mem_size, memory_size),
           "raise --mem or link a smaller image");
  }
  if (header.entry_addr < header.load_addr || header.entry_addr - header.load_addr >= mem_size) {
    refuse(name,
           fmt::format("Multiboot entry_addr {:#x} lies outside what the image loads ({:#x}-{:#x})",
                       header.entry_addr, header.load_addr, header.load_addr + mem_size),
           kFix);
  }
  const std::uint64_t at = image.bytes.size();
  image.bytes.resize(static_cast<std::size_t>(at + load_size));
  source.read(text_offset, std::span(image.bytes.data() + at, static_cast<std::size_t>(load_size)));
  image.segments = {{at, load_size, header.load_addr, mem_size}};
  image.entry = header.entry_addr;
}

void warn_about_multiboot_flags(BootImage& image, const MultibootHeader& header) {
  if (header.flags & kMultibootVideoMode) {
    image.warnings.push_back(fmt::format(
        "{}: its Multiboot header requests a video mode (flag 2); ignored as QEMU does: drvm has "
        "no display and passes no video information",
        image.name));
  }
}

// A file that is not ELF: bootable only as a Multiboot image with the a.out kludge.
BootImage parse_non_elf(const ImageSource& source, const std::string& name,
                        std::uint64_t memory_size, std::span<const std::byte> head,
                        const MultibootScan& multiboot) {
  if (!multiboot.problem.empty()) refuse(name, multiboot.problem, multiboot.fix);
  if (multiboot.header) {
    if ((multiboot.header->flags & kMultibootAoutKludge) == 0) {
      refuse(name,
             "its Multiboot header has no address fields (flag 16) and the file is not an ELF",
             "set flag 16 with load_addr, load_end_addr, bss_end_addr and entry_addr, or link an "
             "ELF image");
    }
    BootImage image;
    image.name = name;
    image.mode = EntryMode::kMultiboot32;
    // BootImage::bytes stays an ELF for the symbol and code readers: a header and one PT_LOAD.
    image.bytes.resize(sizeof(Elf32_Ehdr) + sizeof(Elf32_Phdr));
    apply_aout_kludge(image, source, *multiboot.header, memory_size);
    Elf32_Ehdr ehdr{};
    std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
    ehdr.e_ident[EI_CLASS] = ELFCLASS32;
    ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
    ehdr.e_ident[EI_VERSION] = EV_CURRENT;
    ehdr.e_type = ET_EXEC;
    ehdr.e_machine = EM_386;
    ehdr.e_version = EV_CURRENT;
    ehdr.e_entry = static_cast<Elf32_Addr>(image.entry);
    ehdr.e_phoff = sizeof(Elf32_Ehdr);
    ehdr.e_ehsize = sizeof(Elf32_Ehdr);
    ehdr.e_phentsize = sizeof(Elf32_Phdr);
    ehdr.e_phnum = 1;
    Elf32_Phdr phdr{};
    const LoadSegment& segment = image.segments.front();
    phdr.p_type = PT_LOAD;
    phdr.p_offset = static_cast<Elf32_Off>(segment.file_offset);
    phdr.p_vaddr = phdr.p_paddr = static_cast<Elf32_Addr>(segment.gpa);
    phdr.p_filesz = static_cast<Elf32_Word>(segment.file_size);
    phdr.p_memsz = static_cast<Elf32_Word>(segment.mem_size);
    phdr.p_flags = PF_R | PF_W | PF_X;
    phdr.p_align = 4096;
    store(image.bytes, 0, ehdr);
    store(image.bytes, sizeof(Elf32_Ehdr), phdr);
    warn_about_multiboot_flags(image, *multiboot.header);
    return image;
  }
  // The Linux boot protocol's signature at 0x202 (Documentation/arch/x86/boot.rst).
  if (head.size() >= 0x206 && std::memcmp(head.data() + 0x202, "HdrS", 4) == 0) {
    refuse(name, "a Linux bzImage (boot protocol), which drvm does not boot",
           fmt::format("boot the kernel's vmlinux ELF built with CONFIG_PVH=y instead ({})",
                       kFormats));
  }
  refuse(name, "neither an ELF file nor a Multiboot image",
         fmt::format("give a PVH ELF, an ELF64 or a Multiboot v1 image ({})", kFormats));
}

BootImage parse(const ImageSource& source, const std::string& name, std::uint64_t memory_size) {
  const std::vector<std::byte> head =
      source.read(0, std::min<std::uint64_t>(source.size(), kMultibootSearchBytes));
  const MultibootScan multiboot = scan_multiboot_header(head);
  if (head.size() < SELFMAG || std::memcmp(head.data(), ELFMAG, SELFMAG) != 0) {
    return parse_non_elf(source, name, memory_size, head, multiboot);
  }
  BootImage image;
  image.name = name;
  ElfReader reader(source, name);
  reader.read_header();

  std::optional<std::uint64_t> pvh_entry;
  std::uint64_t loadable_bytes = 0;
  const auto program_headers = reader.program_headers();
  for (std::size_t i = 0; i < program_headers.size(); ++i) {
    const ProgramHeader& ph = program_headers[i];
    if (ph.type == PT_NOTE && !pvh_entry) {
      pvh_entry = reader.find_pvh_entry(ph.offset, ph.filesz, ph.align,
                                        fmt::format("the note segment (program header {})", i));
    }
    if (ph.type != PT_LOAD || ph.memsz == 0) continue;
    if (ph.filesz > ph.memsz) {
      refuse(name, fmt::format("segment {} has a file size larger than its memory size", i),
             kRebuild);
    }
    if (!source.contains(ph.offset, ph.filesz)) {
      refuse(name,
             fmt::format("truncated: segment {} (file offset {:#x}, {:#x} bytes) extends past the "
                         "end of the file ({} bytes)",
                         i, ph.offset, ph.filesz, source.size()),
             kRebuild);
    }
    // Checked before anything is read: the segments' bytes must fit the guest's RAM.
    loadable_bytes += ph.filesz;
    if (ph.memsz > memory_size || loadable_bytes > memory_size) {
      refuse(name,
             fmt::format("segment {} ({:#x} bytes) does not fit in guest memory ({:#x} bytes) "
                         "with the segments before it",
                         i, ph.memsz, memory_size),
             "raise --mem or link a smaller image");
    }
    image.segments.push_back({ph.offset, ph.filesz, ph.paddr, ph.memsz});
  }
  const auto sections = reader.section_headers();
  if (!pvh_entry) {
    for (std::size_t i = 0; i < sections.size(); ++i) {
      const SectionHeader& sh = sections[i];
      if (sh.type != SHT_NOTE) continue;
      pvh_entry = reader.find_pvh_entry(sh.offset, sh.size, sh.align,
                                        fmt::format("the note section (section {})", i));
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
  } else if (multiboot.header || !multiboot.problem.empty()) {
    // A Multiboot header takes precedence over plain ELF64 entry, as in QEMU (which, unlike drvm
    // and GRUB, refuses ELF64 Multiboot images).
    if (!multiboot.problem.empty()) refuse(name, multiboot.problem, multiboot.fix);
    image.mode = EntryMode::kMultiboot32;
    image.entry = reader.entry();
    if ((multiboot.header->flags & kMultibootAoutKludge) == 0 && image.entry > 0xffffffffULL) {
      refuse(name, fmt::format("Multiboot entry (e_entry) {:#x} is above 4 GiB", image.entry),
             kRebuild);
    }
    warn_about_multiboot_flags(image, *multiboot.header);
  } else if (reader.is64()) {
    image.mode = EntryMode::kLong64;
    image.entry = reader.entry();
  } else {
    refuse(name,
           "32-bit ELF with neither a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) nor a Multiboot "
           "header",
           "add the PVH note or a Multiboot header, or build a 64-bit ELF");
  }
  const bool aout_kludge = image.mode == EntryMode::kMultiboot32 &&
                           (multiboot.header->flags & kMultibootAoutKludge) != 0;
  // The entry must be code the image brings: anywhere else the vCPU runs zeros until --timeout.
  // (The a.out kludge's entry is checked against what the kludge loads.)
  const bool entry_loaded =
      aout_kludge ||
      std::any_of(image.segments.begin(), image.segments.end(), [&](const LoadSegment& s) {
        return image.entry >= s.gpa && image.entry - s.gpa < s.mem_size;
      });
  if (!entry_loaded) {
    refuse(name,
           fmt::format("{} {:#x} lies outside every loadable segment",
                       image.mode == EntryMode::kPvh32         ? "PVH entry"
                       : image.mode == EntryMode::kMultiboot32 ? "Multiboot entry (e_entry)"
                                                               : "ELF entry point (e_entry)",
                       image.entry),
           image.mode == EntryMode::kPvh32 ? "check the image's PVH note"
                                           : "check the image's entry symbol and linker script");
  }

  // The first symbol table and its strings, for --event and gdb by name (vmm/session).
  std::optional<std::pair<unsigned, unsigned>> symbols;
  for (unsigned i = 0; i < sections.size(); ++i) {
    if (sections[i].type != SHT_SYMTAB) continue;
    const unsigned link = sections[i].link;
    if (link < sections.size() && source.contains(sections[i].offset, sections[i].size) &&
        source.contains(sections[link].offset, sections[link].size)) {
      if (sections[i].size + sections[link].size > kMaxSymbolBytes) {
        refuse(name,
               fmt::format("its symbol table and strings have {:#x} bytes, more than drvm reads "
                           "({:#x})",
                           sections[i].size + sections[link].size, kMaxSymbolBytes),
               "strip the image's symbols or keep fewer");
      }
      symbols = std::pair{i, link};
    }
    break;
  }
  image.bytes = reader.is64() ? compact_elf<Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr>(
                                    reader, source, image.segments, symbols)
                              : compact_elf<Elf32_Ehdr, Elf32_Phdr, Elf32_Shdr>(
                                    reader, source, image.segments, symbols);
  if (aout_kludge) apply_aout_kludge(image, source, *multiboot.header, memory_size);
  return image;
}

}  // namespace

BootImage parse_image(std::vector<std::byte> bytes, const std::string& name,
                      std::uint64_t memory_size) {
  const ImageSource source(bytes, bytes.size(), -1, name);
  return parse(source, name, memory_size);
}

BootImage read_image(const std::string& path, std::uint64_t memory_size) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below, never read.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    refuse(path, std::strerror(error),
           error == ENOENT ? "check the path" : "check the file's permissions");
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    refuse(path, "not a regular file", "give the path of an ELF image file");
  }
  // Only the headers, the segments and the symbols are read, so the file's size costs nothing.
  const ImageSource source({}, static_cast<std::uint64_t>(info.st_size), fd, path);
  try {
    BootImage image = parse(source, path, memory_size);
    ::close(fd);
    return image;
  } catch (...) {
    ::close(fd);
    throw;
  }
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

std::uint64_t image_end_page(const BootImage& image) {
  std::uint64_t low = UINT64_MAX, high = 0;
  for (const LoadSegment& segment : image.segments) {
    low = std::min(low, segment.gpa);
    high = std::max(high, segment.gpa + segment.mem_size);
  }
  if (image.segments.empty()) return 0;
  // QEMU: the load address plus the image's span rounded up to a page.
  return low + ((high - low + 4095) & ~std::uint64_t{4095});
}

}  // namespace drvm::vmm

#include "vmm/kvm/kvm.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace drvm::vmm {

namespace {

constexpr int kExpectedApiVersion = KVM_API_VERSION;

// kvm_cpuid2, kvm_msrs and kvm_irq_routing end in __DECLARE_FLEX_ARRAY, which in C++ adds a
// one-byte empty member: sizeof() and the offset of `entries` differ from the C ABI, and so would
// the ioctl numbers derived from them. drvm lays these buffers out by hand: an 8-byte header, then
// the entries.
struct FlexHeader {
  std::uint32_t count;
  std::uint32_t padding;
};
static_assert(sizeof(FlexHeader) == 8);
constexpr unsigned long kGetSupportedCpuid = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, 8);
constexpr unsigned long kSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, 8);
constexpr unsigned long kGetMsrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, 8);
constexpr unsigned long kSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, 8);
constexpr unsigned long kSetGsiRouting = _IOC(_IOC_WRITE, KVMIO, 0x6a, 8);  // kvm_irq_routing
// kvm_msr_list: a 4-byte count, then 32-bit indices.
constexpr unsigned long kGetMsrIndexList = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x02, 4);
// kvm_xsave: 4096 bytes of region, then (KVM_GET_XSAVE2 / KVM_SET_XSAVE) the extra components.
constexpr std::size_t kXsaveRegionSize = 4096;
constexpr unsigned long kGetXsave = _IOC(_IOC_READ, KVMIO, 0xa4, kXsaveRegionSize);
constexpr unsigned long kSetXsave = _IOC(_IOC_WRITE, KVMIO, 0xa5, kXsaveRegionSize);
constexpr unsigned long kGetXsave2 = _IOC(_IOC_READ, KVMIO, 0xcf, kXsaveRegionSize);

// A FlexHeader followed by `count` entries of T, suitably aligned.
template <typename T>
class FlexBuffer {
 public:
  explicit FlexBuffer(std::size_t count) : storage_(1 + count * sizeof(T) / 8 + 1) {
    header()->count = static_cast<std::uint32_t>(count);
  }
  FlexHeader* header() { return reinterpret_cast<FlexHeader*>(storage_.data()); }
  T* entries() { return reinterpret_cast<T*>(storage_.data() + 1); }

 private:
  std::vector<std::uint64_t> storage_;
};

int ioctl_retry(int fd, unsigned long request, void* arg) {
  int result;
  do {
    result = ::ioctl(fd, request, arg);
  } while (result < 0 && errno == EINTR);
  return result;
}

}  // namespace

KvmError::KvmError(std::string_view operation, int error_number)
    : std::runtime_error(fmt::format("{} failed: {}", operation, std::strerror(error_number))),
      errno_(error_number) {}

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

int Fd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

std::string kvm_device_path() {
  const char* override_path = std::getenv("DRVM_KVM_DEVICE");
  return override_path != nullptr && *override_path != '\0' ? override_path : "/dev/kvm";
}

std::vector<RequiredCapability> required_capabilities() {
  return {
      {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
      {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
      {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
  };
}

System System::open(const std::string& device_path) {
  Fd fd{::open(device_path.c_str(), O_RDWR | O_CLOEXEC)};
  if (!fd.valid()) {
    const int error = errno;
    const char* fix = error == EACCES || error == EPERM
                          ? "add your user to the 'kvm' group or run as root"
                      : error == ENOENT ? "load the kvm module (modprobe kvm_intel or kvm_amd) or "
                                          "run on a host with virtualization enabled"
                                        : "check that KVM is available on this host";
    throw SetupError(fmt::format("cannot open {}: {}; {}", device_path, std::strerror(error), fix));
  }
  const int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version < 0) {
    throw SetupError(
        fmt::format("{} is not a KVM device: KVM_GET_API_VERSION failed: {}; "
                    "point DRVM_KVM_DEVICE at /dev/kvm or unset it",
                    device_path, std::strerror(errno)));
  }
  if (version != kExpectedApiVersion) {
    throw SetupError(
        fmt::format("{}: KVM API version {} (drvm needs {}); use a kernel with the "
                    "stable KVM API",
                    device_path, version, kExpectedApiVersion));
  }
  for (const auto& required : required_capabilities()) {
    if (::ioctl(fd.get(), KVM_CHECK_EXTENSION, required.cap) <= 0) {
      throw SetupError(
          fmt::format("{}: KVM lacks {}; use a newer kernel", device_path, required.name));
    }
  }
  const int mmap_size = ::ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size <= 0) throw KvmError("KVM_GET_VCPU_MMAP_SIZE", errno);
  return System(std::move(fd), device_path, static_cast<std::size_t>(mmap_size));
}

int System::check_extension(unsigned cap) const {
  const int result = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  return result < 0 ? 0 : result;
}

std::vector<kvm_cpuid_entry2> System::supported_cpuid() const {
  for (std::uint32_t capacity = 128; capacity <= 4096; capacity *= 2) {
    FlexBuffer<kvm_cpuid_entry2> buffer(capacity);
    if (::ioctl(fd_.get(), kGetSupportedCpuid, buffer.header()) == 0) {
      return {buffer.entries(), buffer.entries() + buffer.header()->count};
    }
    if (errno != E2BIG) throw KvmError("KVM_GET_SUPPORTED_CPUID", errno);
  }
  throw KvmError("KVM_GET_SUPPORTED_CPUID", E2BIG);
}

std::vector<std::uint32_t> System::msr_index_list() const {
  // The call with a too-small count fails with E2BIG and reports the count needed.
  std::vector<std::uint32_t> buffer(1, 0);
  if (::ioctl(fd_.get(), kGetMsrIndexList, buffer.data()) < 0 && errno != E2BIG) {
    throw KvmError("KVM_GET_MSR_INDEX_LIST", errno);
  }
  const std::uint32_t count = buffer[0];
  buffer.assign(1 + count, 0);
  buffer[0] = count;
  if (::ioctl(fd_.get(), kGetMsrIndexList, buffer.data()) < 0) {
    throw KvmError("KVM_GET_MSR_INDEX_LIST", errno);
  }
  return {buffer.begin() + 1, buffer.begin() + 1 + buffer[0]};
}

Vm::Vm(const System& system) : system_(&system) {
  int fd;
  do {
    // KVM_CREATE_VM can fail transiently with EINTR while the kernel sets up the address space.
    fd = ::ioctl(system.fd(), KVM_CREATE_VM, 0);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw KvmError("KVM_CREATE_VM", errno);
  fd_ = Fd{fd};
  // VMX needs a three-page TSS region for real-mode emulation; it must not overlap guest RAM.
  // Place it just below 4 GiB like other VMMs. Hosts without the capability do not need it.
  if (system.check_extension(KVM_CAP_SET_TSS_ADDR) > 0) {
    if (::ioctl(fd_.get(), KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0) {
      throw KvmError("KVM_SET_TSS_ADDR", errno);
    }
  }
}

void Vm::set_memslot(const Memslot& slot) {
  kvm_userspace_memory_region region{};
  region.slot = slot.slot;
  region.flags = slot.read_only ? KVM_MEM_READONLY : 0;
  region.guest_phys_addr = slot.guest_phys;
  region.memory_size = slot.size;
  region.userspace_addr = reinterpret_cast<std::uint64_t>(slot.host);
  if (ioctl_retry(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    throw KvmError(fmt::format("KVM_SET_USER_MEMORY_REGION (slot {}, gpa {:#x}, size {:#x})",
                               slot.slot, slot.guest_phys, slot.size),
                   errno);
  }
}

void Vm::create_irqchip() {
  if (::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0) throw KvmError("KVM_CREATE_IRQCHIP", errno);
}

void Vm::create_pit2(std::uint32_t flags) {
  kvm_pit_config config{};
  config.flags = flags;
  if (::ioctl(fd_.get(), KVM_CREATE_PIT2, &config) < 0) throw KvmError("KVM_CREATE_PIT2", errno);
}

void Vm::set_gsi_routing(const std::vector<kvm_irq_routing_entry>& entries) {
  FlexBuffer<kvm_irq_routing_entry> buffer(entries.size());
  std::memcpy(buffer.entries(), entries.data(), entries.size() * sizeof(kvm_irq_routing_entry));
  if (ioctl_retry(fd_.get(), kSetGsiRouting, buffer.header()) < 0) {
    throw KvmError("KVM_SET_GSI_ROUTING", errno);
  }
}

void Vm::irq_line(std::uint32_t gsi, bool level) {
  kvm_irq_level line{};
  line.irq = gsi;
  line.level = level ? 1 : 0;
  if (ioctl_retry(fd_.get(), KVM_IRQ_LINE, &line) < 0) {
    throw KvmError(fmt::format("KVM_IRQ_LINE {}", gsi), errno);
  }
}

kvm_irqchip Vm::irqchip(std::uint32_t chip_id) const {
  kvm_irqchip chip{};
  chip.chip_id = chip_id;
  if (ioctl_retry(fd_.get(), KVM_GET_IRQCHIP, &chip) < 0) throw KvmError("KVM_GET_IRQCHIP", errno);
  return chip;
}

void Vm::set_irqchip(const kvm_irqchip& chip) {
  if (ioctl_retry(fd_.get(), KVM_SET_IRQCHIP, const_cast<kvm_irqchip*>(&chip)) < 0) {
    throw KvmError("KVM_SET_IRQCHIP", errno);
  }
}

kvm_pit_state2 Vm::pit_state() const {
  kvm_pit_state2 state{};
  if (ioctl_retry(fd_.get(), KVM_GET_PIT2, &state) < 0) throw KvmError("KVM_GET_PIT2", errno);
  return state;
}

void Vm::set_pit_state(const kvm_pit_state2& state) {
  if (ioctl_retry(fd_.get(), KVM_SET_PIT2, const_cast<kvm_pit_state2*>(&state)) < 0) {
    throw KvmError("KVM_SET_PIT2", errno);
  }
}

kvm_clock_data Vm::clock() const {
  kvm_clock_data clock{};
  if (ioctl_retry(fd_.get(), KVM_GET_CLOCK, &clock) < 0) throw KvmError("KVM_GET_CLOCK", errno);
  return clock;
}

void Vm::set_clock(const kvm_clock_data& clock) {
  if (ioctl_retry(fd_.get(), KVM_SET_CLOCK, const_cast<kvm_clock_data*>(&clock)) < 0) {
    throw KvmError("KVM_SET_CLOCK", errno);
  }
}

int Vm::check_extension(unsigned cap) const {
  const int result = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  return result < 0 ? 0 : result;
}

Vcpu::Vcpu(const Vm& vm, unsigned index) : index_(index) {
  const int fd = ::ioctl(vm.fd(), KVM_CREATE_VCPU, static_cast<unsigned long>(index));
  if (fd < 0) throw KvmError(fmt::format("KVM_CREATE_VCPU {}", index), errno);
  fd_ = Fd{fd};
  run_size_ = vm.system().vcpu_mmap_size();
  void* mapping = ::mmap(nullptr, run_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mapping == MAP_FAILED) throw KvmError("mmap of kvm_run", errno);
  run_ = static_cast<kvm_run*>(mapping);
}

Vcpu::Vcpu(Vcpu&& other) noexcept
    : index_(other.index_),
      fd_(std::move(other.fd_)),
      run_(std::exchange(other.run_, nullptr)),
      run_size_(other.run_size_) {}

Vcpu::~Vcpu() {
  if (run_ != nullptr) ::munmap(run_, run_size_);
}

int Vcpu::run() {
  if (::ioctl(fd_.get(), KVM_RUN, 0) == 0) return 0;
  const int error = errno;
  if (error == EINTR || error == EAGAIN) return error;
  throw KvmError("KVM_RUN", error);
}

void Vcpu::ioctl_or_throw(unsigned long request, void* arg, const char* name) const {
  if (ioctl_retry(fd_.get(), request, arg) < 0) throw KvmError(name, errno);
}

kvm_regs Vcpu::regs() const {
  return get<kvm_regs>(KVM_GET_REGS, "KVM_GET_REGS");
}

void Vcpu::set_regs(const kvm_regs& regs) {
  set(KVM_SET_REGS, regs, "KVM_SET_REGS");
}

kvm_sregs Vcpu::sregs() const {
  return get<kvm_sregs>(KVM_GET_SREGS, "KVM_GET_SREGS");
}

void Vcpu::set_sregs(const kvm_sregs& sregs) {
  set(KVM_SET_SREGS, sregs, "KVM_SET_SREGS");
}

kvm_fpu Vcpu::fpu() const {
  return get<kvm_fpu>(KVM_GET_FPU, "KVM_GET_FPU");
}

void Vcpu::set_fpu(const kvm_fpu& fpu) {
  set(KVM_SET_FPU, fpu, "KVM_SET_FPU");
}

std::vector<std::uint32_t> Vcpu::xsave(std::size_t size_bytes) const {
  if (size_bytes < kXsaveRegionSize || size_bytes % 4 != 0) {
    throw KvmError("KVM_GET_XSAVE (bad size)", EINVAL);
  }
  std::vector<std::uint32_t> area(size_bytes / 4);
  if (size_bytes == kXsaveRegionSize) {
    ioctl_or_throw(kGetXsave, area.data(), "KVM_GET_XSAVE");
  } else {
    ioctl_or_throw(kGetXsave2, area.data(), "KVM_GET_XSAVE2");
  }
  return area;
}

void Vcpu::set_xsave(std::span<const std::uint32_t> area) {
  if (area.size() * 4 < kXsaveRegionSize) throw KvmError("KVM_SET_XSAVE (bad size)", EINVAL);
  ioctl_or_throw(kSetXsave, const_cast<std::uint32_t*>(area.data()), "KVM_SET_XSAVE");
}

kvm_xcrs Vcpu::xcrs() const {
  return get<kvm_xcrs>(KVM_GET_XCRS, "KVM_GET_XCRS");
}

void Vcpu::set_xcrs(const kvm_xcrs& xcrs) {
  set(KVM_SET_XCRS, xcrs, "KVM_SET_XCRS");
}

kvm_debugregs Vcpu::debugregs() const {
  return get<kvm_debugregs>(KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS");
}

void Vcpu::set_debugregs(const kvm_debugregs& debugregs) {
  set(KVM_SET_DEBUGREGS, debugregs, "KVM_SET_DEBUGREGS");
}

kvm_vcpu_events Vcpu::events() const {
  return get<kvm_vcpu_events>(KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS");
}

void Vcpu::set_events(const kvm_vcpu_events& events) {
  set(KVM_SET_VCPU_EVENTS, events, "KVM_SET_VCPU_EVENTS");
}

void Vcpu::set_guest_debug(const kvm_guest_debug& debug) {
  set(KVM_SET_GUEST_DEBUG, debug, "KVM_SET_GUEST_DEBUG");
}

void Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) {
  FlexBuffer<kvm_cpuid_entry2> buffer(entries.size());
  std::memcpy(buffer.entries(), entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  ioctl_or_throw(kSetCpuid2, buffer.header(), "KVM_SET_CPUID2");
}

std::uint64_t Vcpu::msr(std::uint32_t index) const {
  FlexBuffer<kvm_msr_entry> buffer(1);
  buffer.entries()->index = index;
  const int read = ioctl_retry(fd_.get(), kGetMsrs, buffer.header());
  if (read != 1) throw KvmError(fmt::format("KVM_GET_MSRS {:#x}", index), read < 0 ? errno : EIO);
  return buffer.entries()->data;
}

void Vcpu::set_msr(std::uint32_t index, std::uint64_t value) {
  FlexBuffer<kvm_msr_entry> buffer(1);
  buffer.entries()->index = index;
  buffer.entries()->data = value;
  const int written = ioctl_retry(fd_.get(), kSetMsrs, buffer.header());
  if (written != 1) {
    throw KvmError(fmt::format("KVM_SET_MSRS {:#x}", index), written < 0 ? errno : EIO);
  }
}

std::vector<kvm_msr_entry> Vcpu::msrs(std::span<const std::uint32_t> indices) const {
  FlexBuffer<kvm_msr_entry> buffer(indices.size());
  for (std::size_t i = 0; i < indices.size(); ++i)
    buffer.entries()[i] = kvm_msr_entry{indices[i], 0, 0};
  const int read = ioctl_retry(fd_.get(), kGetMsrs, buffer.header());
  if (read < 0) throw KvmError("KVM_GET_MSRS", errno);
  return {buffer.entries(), buffer.entries() + read};
}

std::size_t Vcpu::set_msrs(std::span<const kvm_msr_entry> entries) {
  FlexBuffer<kvm_msr_entry> buffer(entries.size());
  std::memcpy(buffer.entries(), entries.data(), entries.size() * sizeof(kvm_msr_entry));
  const int written = ioctl_retry(fd_.get(), kSetMsrs, buffer.header());
  if (written < 0) throw KvmError("KVM_SET_MSRS", errno);
  return static_cast<std::size_t>(written);
}

kvm_lapic_state Vcpu::lapic() const {
  return get<kvm_lapic_state>(KVM_GET_LAPIC, "KVM_GET_LAPIC");
}

void Vcpu::set_lapic(const kvm_lapic_state& state) {
  set(KVM_SET_LAPIC, state, "KVM_SET_LAPIC");
}

kvm_mp_state Vcpu::mp_state() const {
  return get<kvm_mp_state>(KVM_GET_MP_STATE, "KVM_GET_MP_STATE");
}

void Vcpu::set_mp_state(std::uint32_t state) {
  kvm_mp_state mp{state};
  ioctl_or_throw(KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE");
}

}  // namespace drvm::vmm

// RAII wrappers over the /dev/kvm ioctl API: the system fd, a VM fd, a vCPU fd and its kvm_run
// mapping. Every failing ioctl throws KvmError carrying the errno; failures a user can cause while
// opening the device (missing, not permitted, wrong API version, missing capability) throw
// SetupError whose message is already the one-line report "what: cause; fix".
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace drvm::vmm {

// A user-fixable problem before the guest runs (process status 2). what() is the whole line
// without the "drvm: " prefix.
class SetupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A KVM ioctl failed unexpectedly (process status 10).
class KvmError : public std::runtime_error {
 public:
  KvmError(std::string_view operation, int error_number);
  int error_number() const { return errno_; }

 private:
  int errno_;
};

// Owns one file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();

 private:
  int fd_ = -1;
};

// The device path: /dev/kvm unless the environment variable DRVM_KVM_DEVICE names another one
// (used by tests to exercise the failure paths; documented in docs/user-guide.md).
std::string kvm_device_path();

// Capabilities drvm cannot boot without; System::open checks them all.
struct RequiredCapability {
  unsigned cap;
  const char* name;
};
std::vector<RequiredCapability> required_capabilities();

// The /dev/kvm fd. open() verifies the API version (12) and the required capabilities.
class System {
 public:
  static System open(const std::string& device_path = kvm_device_path());

  // KVM_CHECK_EXTENSION on the system fd: 0 when absent, otherwise a capability-specific value.
  int check_extension(unsigned cap) const;
  std::size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }
  // KVM_GET_SUPPORTED_CPUID: the host's CPUID leaves as KVM can expose them.
  std::vector<kvm_cpuid_entry2> supported_cpuid() const;
  // KVM_GET_MSR_INDEX_LIST: the MSRs KVM_GET_MSRS/KVM_SET_MSRS can save and restore.
  std::vector<std::uint32_t> msr_index_list() const;
  int fd() const { return fd_.get(); }
  const std::string& device_path() const { return path_; }

 private:
  System(Fd fd, std::string path, std::size_t mmap_size)
      : fd_(std::move(fd)), path_(std::move(path)), vcpu_mmap_size_(mmap_size) {}
  Fd fd_;
  std::string path_;
  std::size_t vcpu_mmap_size_ = 0;
};

// One KVM memslot as installed with KVM_SET_USER_MEMORY_REGION.
struct Memslot {
  std::uint32_t slot = 0;
  std::uint64_t guest_phys = 0;
  std::uint64_t size = 0;  // 0 deletes the slot
  void* host = nullptr;
  bool read_only = false;  // KVM_MEM_READONLY: guest writes become KVM_EXIT_MMIO
};

class Vcpu;

// A VM fd. Memslots are installed here; MemoryMap (memory_map.hpp) decides the layout.
class Vm {
 public:
  explicit Vm(const System& system);

  void set_memslot(const Memslot& slot);
  // KVM_CHECK_EXTENSION on the VM fd (per-VM answers, e.g. KVM_CAP_READONLY_MEM).
  int check_extension(unsigned cap) const;
  int fd() const { return fd_.get(); }

  // The in-kernel interrupt controllers and timer; create both before any vCPU.
  void create_irqchip();                  // KVM_CREATE_IRQCHIP: PIC pair, IOAPIC, local APICs
  void create_pit2(std::uint32_t flags);  // KVM_CREATE_PIT2
  void set_gsi_routing(const std::vector<kvm_irq_routing_entry>& entries);
  // KVM_IRQ_LINE: drives GSI `gsi` to `level` (edge inputs trigger on 0 -> 1).
  void irq_line(std::uint32_t gsi, bool level);
  kvm_irqchip irqchip(std::uint32_t chip_id) const;  // KVM_IRQCHIP_PIC_MASTER/SLAVE/IOAPIC
  void set_irqchip(const kvm_irqchip& chip);
  kvm_pit_state2 pit_state() const;
  void set_pit_state(const kvm_pit_state2& state);  // KVM_SET_PIT2
  // KVM_GET_CLOCK / KVM_SET_CLOCK: the VM's kvmclock base (nanoseconds).
  kvm_clock_data clock() const;
  void set_clock(const kvm_clock_data& clock);
  const System& system() const { return *system_; }

 private:
  const System* system_;
  Fd fd_;
};

// A vCPU fd and its kvm_run page. Register accessors are thin ioctls; call them from the vCPU's
// own thread, or while that thread is paused outside KVM_RUN.
class Vcpu {
 public:
  Vcpu(const Vm& vm, unsigned index);
  Vcpu(Vcpu&&) noexcept;
  Vcpu& operator=(Vcpu&&) = delete;
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;
  ~Vcpu();

  unsigned index() const { return index_; }
  kvm_run& run_area() { return *run_; }
  const kvm_run& run_area() const { return *run_; }

  // KVM_RUN. Returns 0 after an exit to handle, or EINTR/EAGAIN when interrupted by a signal or
  // kvm_run.immediate_exit (no exit_reason to handle). Throws KvmError on any other failure.
  int run();

  kvm_regs regs() const;
  void set_regs(const kvm_regs& regs);
  kvm_sregs sregs() const;
  void set_sregs(const kvm_sregs& sregs);
  kvm_fpu fpu() const;
  void set_fpu(const kvm_fpu& fpu);
  // The XSAVE area (x87, SSE, AVX and the other XCR0 components): KVM_GET_XSAVE for size 4096,
  // KVM_GET_XSAVE2 for the larger size KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) reports on the VM.
  std::vector<std::uint32_t> xsave(std::size_t size_bytes) const;
  void set_xsave(std::span<const std::uint32_t> area);  // KVM_SET_XSAVE, the size read back
  kvm_xcrs xcrs() const;                                // KVM_GET_XCRS (KVM_CAP_XCRS)
  void set_xcrs(const kvm_xcrs& xcrs);
  kvm_debugregs debugregs() const;
  void set_debugregs(const kvm_debugregs& debugregs);
  kvm_vcpu_events events() const;
  void set_events(const kvm_vcpu_events& events);
  void set_guest_debug(const kvm_guest_debug& debug);
  void set_cpuid(const std::vector<kvm_cpuid_entry2>& entries);
  // KVM_GET_MSRS / KVM_SET_MSRS for a single MSR index.
  std::uint64_t msr(std::uint32_t index) const;
  void set_msr(std::uint32_t index, std::uint64_t value);
  // Several MSRs in one KVM_GET_MSRS / KVM_SET_MSRS. KVM stops at the first MSR it refuses: the
  // result holds (or the count says) only the ones before it.
  std::vector<kvm_msr_entry> msrs(std::span<const std::uint32_t> indices) const;
  std::size_t set_msrs(std::span<const kvm_msr_entry> entries);
  // The in-kernel local APIC's registers, and the vCPU's run state (KVM_MP_STATE_HALTED while it
  // waits in HLT inside KVM_RUN). Only from the vCPU's own thread, or while it is parked: a vCPU
  // blocked in an in-kernel HLT holds its mutex and other threads' ioctls would wait.
  kvm_lapic_state lapic() const;
  void set_lapic(const kvm_lapic_state& state);
  kvm_mp_state mp_state() const;
  void set_mp_state(std::uint32_t state);  // KVM_SET_MP_STATE

  int fd() const { return fd_.get(); }

 private:
  void ioctl_or_throw(unsigned long request, void* arg, const char* name) const;
  // One KVM_GET_* ioctl into a zeroed T, and one KVM_SET_* ioctl from `value`.
  template <typename T>
  T get(unsigned long request, const char* name) const {
    T value{};
    ioctl_or_throw(request, &value, name);
    return value;
  }
  template <typename T>
  void set(unsigned long request, const T& value, const char* name) {
    ioctl_or_throw(request, const_cast<T*>(&value), name);
  }

  unsigned index_;
  Fd fd_;
  kvm_run* run_ = nullptr;
  std::size_t run_size_ = 0;
};

}  // namespace drvm::vmm

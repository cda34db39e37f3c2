#include "vmm/debug/debug_controller.hpp"

#include <sys/ioctl.h>

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bpcore/manager.hpp"
#include "vmm/debug/access_decoder.hpp"
#include "vmm/debug/flags_instructions.hpp"
#include "vmm/debug/instruction_decoding.hpp"
#include "vmm/debug/page_guard.hpp"
#include "vmm/debug/site_scanner.hpp"
#include "vmm/debug/trap_sites.hpp"
#include "vmm/x86/event_delivery.hpp"
#include "vmm/x86/paging.hpp"
#include "vmm/x86/software_interrupts.hpp"
#include "vmm/x86/x86.hpp"

namespace drvm::vmm::debug {
namespace {

constexpr std::uint64_t kNoAddress = std::numeric_limits<std::uint64_t>::max();
constexpr unsigned kMaxInstruction = 15;
// MOV DRs emulated back to back at one boundary before the guest runs again.
constexpr unsigned kMaxEmulatedInARow = 64;

struct SlotArm {
  Engine engine = Engine::kNone;
  int hw = -1;            // DR index for kHardware
  std::uint64_t gpa = 0;  // INT3 site, or the watched GPA (page engines)
  PageAccess page_access = PageAccess::kReadWrite;
};

// A REP string instruction made to stop after its current iteration: its count register was set
// to 1 for that iteration (KVM runs every other iteration in one go, without an exit).
struct RepCut {
  bool active = false;
  std::uint64_t rip = 0;
  std::uint64_t rcx = 0;  // RCX before the iteration
  unsigned length = 0;
  std::uint64_t mask = 0;
  RepCondition condition = RepCondition::kNone;
};

struct Counters {
  std::atomic<std::uint64_t> debug_exits{0}, single_steps{0}, protected_accesses{0}, trap_exits{0},
      dr_emulations{0}, host_hits{0}, guest_debug_exceptions{0}, untrapped_dr_changes{0}, rearms{0};
};

// Host hits collected under the lock and reported to the owners after it is released.
struct Notifications {
  std::array<HostHit, bp::kMaxSlots> hits{};
  unsigned hit_count = 0;
  bool stop = false;  // an overflow asked to stop
  bool guest_delivered = false;
  StopInfo stop_info;
};

}  // namespace

const char* engine_name(Engine engine) {
  switch (engine) {
    case Engine::kNone:
      return "none";
    case Engine::kHardware:
      return "hardware";
    case Engine::kInt3:
      return "int3";
    case Engine::kReadOnlyPage:
      return "read-only page";
    case Engine::kUnmappedPage:
      return "unmapped page";
    case Engine::kSingleStep:
      return "single-step";
  }
  return "?";
}

struct PerVcpu {
  VcpuRunner* runner = nullptr;
  unsigned index = 0;
  std::atomic<std::thread::id> thread{};
  std::atomic<bool> dirty{true};

  // The whole vCPU runs on the single-step engine: --exact, or a watch whose page engine would
  // protect a page KVM reads or writes on its own (a descriptor table, the TSS, a paging
  // structure, the stack an exception frame goes on). Entered at a re-arm, left at a boundary.
  bool exact = false;
  bool restore_tf = false;        // leaving it: the guest's TF goes back after KVM_SET_GUEST_DEBUG
  bool rearm_after_step = false;  // the stepped instruction may have moved a system structure
  bool layout_changed =
      false;  // look at the layout at the next re-arm even if nothing else changed
  unsigned steps_since_layout_check = 0;

  // Armed state: written only on the vCPU's own thread (under the lock).
  bool armed = false;
  std::uint64_t armed_generation = 0;
  std::uint64_t armed_cr3 = 0;
  std::uint64_t armed_paging_mode = 0;  // CR0.PG, CR4.PAE/PSE/LA57, EFER.LMA when armed
  std::array<SlotArm, bp::kMaxSlots> slots{};
  std::uint64_t armed_table_generation = 0;
  std::vector<std::uint64_t> guarded_tables;  // paging-structure pages this vCPU write-protects
  std::uint64_t page_slots = 0;               // slots served by a page engine
  std::uint64_t exec_slots = 0;               // instruction breakpoints (any engine)
  std::uint64_t data_slots = 0;               // data breakpoints (any engine)
  kvm_guest_debug wanted{};                   // control without SINGLESTEP
  kvm_guest_debug applied{};
  bool debug_applied = false;
  std::uint8_t hw_suppressed = 0;  // hardware slots disabled for one step over them
  kvm_debugregs loaded{};          // what KVM's own guest DRs hold (safety net)

  // Instruction in flight.
  bool completing = false;          // a matched protected access waits for its instruction
  bool completion_entered = false;  // immediate_exit was set for it
  bool mmio_pending = false;        // the last exit was MMIO: KVM owes the rest of the instruction
  std::uint64_t access_slots = 0;
  std::optional<AccessInfo> first_access;
  // drvm's own steps.
  bool step_over = false;
  std::uint64_t lifted_site = kNoAddress;
  std::uint64_t open_page = kNoAddress;
  bool debugger_step = false;
  bool guest_tf = false;  // the guest's own TF was set when drvm started a step
  // ... and once the stepped instruction completes (POPF and IRET load it). KVM hides TF while it
  // steps and drops it when the step ends: drvm gives it back (restore_tf).
  bool tf_after = false;
  bool step_decoded = false;
  DecodedAccesses step_decode;
  kvm_regs step_before{};
  bool prime = true;  // --exact: decode the instruction at RIP before running
  RepCut rep_cut;
  // --exact: the guest's RFLAGS.TF. KVM keeps TF for its own single-stepping and hides the
  // guest's, so drvm tracks it (flags instructions, exception delivery) and reports its traps.
  bool exact_tf = false;
  // Registers at this exit (KVM_CAP_SYNC_REGS brings them with it), valid until the next entry.
  bool regs_cached = false;
  bool sregs_cached = false;
  kvm_regs regs_cache{};
  kvm_sregs sregs_cache{};
  std::uint64_t skip_exec_at = kNoAddress;
  bool cancel_stop = false;
  Counters counters;
};

struct DebugController::State {
  State(Machine& m, ProbeSource p, const DebugOptions& o)
      : machine(m),
        probe_source(std::move(p)),
        options(o),
        manager(bp::ManagerConfig{static_cast<std::uint32_t>(m.vcpu_count()),
                                  bp::SlotLayout::mixed(std::clamp<std::uint32_t>(
                                      o.slots, bp::kX86HardwareSlots, bp::kMaxHostSlots))}),
        sites(m.memory()),
        pages(m.memory_map()) {}

  Machine& machine;
  ProbeSource probe_source;
  const ProbeResult* probe = nullptr;  // set by the first answers()
  DebugOptions options;
  std::mutex mutex;
  bp::BreakpointManager manager;
  TrapSites sites;
  PageGuard pages;
  // Derived from the probe's answers (false until answers() ran).
  bool payload = false;
  bool gd_trap = false;      // MOV DR exits through DR7.GD
  bool sw_bp_exits = false;  // planted INT3 arrives as KVM_EXIT_DEBUG #BP (USE_SW_BP)
  bool sync_sregs = false;   // KVM_CAP_SYNC_REGS: CR3 comes with every exit, no ioctl
  bool sync_regs = false;    // ... and the general-purpose registers (--exact reads them per step)
  bool block_irq = false;    // KVM_GUESTDBG_BLOCKIRQ exists (KVM_CAP_SET_GUEST_DEBUG2)
  std::unordered_map<bp::TargetId, HitCallback> hit_callbacks;
  StopCallback stop_callback;
  std::vector<std::unique_ptr<PerVcpu>> vcpus;
  std::atomic<bool> warned_untrapped{false};
  std::atomic<bool> warned_arm{false};
  // Planted at the first entry, once the image is in memory (Machine::boot may come later).
  std::vector<MovDrSite> mov_dr_sites;
  ImageCode image_code;  // instruction starts: where an INT3 may go; system instructions
  bool system_sites_planted = false;  // at the first page engine (image_code.system_sites)
  // Paging-structure pages write-protected because an armed translation depends on them
  // (references from every vCPU), and a count of the guest's writes to them: each re-arms.
  std::unordered_map<std::uint64_t, unsigned> table_pages;
  std::atomic<std::uint64_t> table_generation{0};
  std::atomic<bool> sites_planted{false};

  // The probe's answers and the settings derived from them (lock held). The first call runs the
  // probe; trapping MOV DR through DR7.GD then re-arms every vCPU.
  const ProbeResult& answers() {
    if (probe != nullptr) return *probe;
    probe = &probe_source();
    if (probe->db_injection_payload.yes()) {
      kvm_enable_cap enable{};
      enable.cap = KVM_CAP_EXCEPTION_PAYLOAD;
      enable.args[0] = 1;
      payload = ::ioctl(machine.vm().fd(), KVM_ENABLE_CAP, &enable) == 0;
    }
    gd_trap = !options.exact && probe->gd_exit.yes();
    sw_bp_exits = probe->sw_bp_debug_exit.yes();
    if (gd_trap) mark_all_dirty();
    return *probe;
  }

  void plant_mov_dr_sites() {
    std::lock_guard lock(mutex);
    if (sites_planted.load()) return;
    for (const MovDrSite& site : mov_dr_sites) sites.add_mov_dr(site.gpa);
    sites_planted.store(true);
  }

  // ---- registers of the vCPU being handled (its own thread, or while it is paused) ----
  const kvm_regs& regs_of(PerVcpu& s) {
    if (!s.regs_cached) {
      s.regs_cache = cpu(s).regs();
      s.regs_cached = true;
    }
    return s.regs_cache;
  }
  const kvm_sregs& sregs_of(PerVcpu& s) {
    if (!s.sregs_cached) {
      s.sregs_cache = cpu(s).sregs();
      s.sregs_cached = true;
    }
    return s.sregs_cache;
  }
  void set_regs_of(PerVcpu& s, const kvm_regs& regs) {
    cpu(s).set_regs(regs);
    s.regs_cache = regs;
    s.regs_cached = true;
  }
  // KVM_RUN returned: take the registers it synced, if any.
  void registers_synced(PerVcpu& s, const kvm_run& run) {
    s.regs_cached = sync_regs;
    s.sregs_cached = sync_sregs;
    if (sync_regs) s.regs_cache = run.s.regs.regs;
    if (sync_sregs) s.sregs_cache = run.s.regs.sregs;
  }

  // ---- helpers (called with the lock held unless noted) ----
  PerVcpu& at(VcpuRunner& runner) { return *vcpus[runner.index()]; }
  Vcpu& cpu(PerVcpu& s) { return s.runner->vcpu(); }

  void warn(std::atomic<bool>& once, const std::string& text) {
    if (options.log && !once.exchange(true)) fmt::print(options.log, "drvm: {}\n", text);
  }

  void mark_all_dirty() {
    for (auto& s : vcpus) {
      s->dirty.store(true, std::memory_order_release);
      if (s->thread.load() != std::this_thread::get_id()) s->runner->kick();
    }
  }

  std::optional<std::uint64_t> linear_to_gpa(const kvm_sregs& sregs, std::uint64_t linear,
                                             std::uint32_t size = 1) {
    const Translation t = translate(machine.memory(), PagingState::from(sregs), linear);
    if (!t.ok() || !machine.memory().contains(t.gpa, size)) return std::nullopt;
    return t.gpa;
  }

  // Guest bytes at RIP with drvm's traps replaced by the original bytes.
  std::size_t fetch(const kvm_regs& regs, const kvm_sregs& sregs,
                    std::array<std::uint8_t, kMaxInstruction>& out) {
    const std::uint64_t linear = sregs.cs.base + regs.rip;
    const PagingState paging = PagingState::from(sregs);
    auto span = std::as_writable_bytes(std::span(out));
    const VirtualAccess got = read_virtual(machine.memory(), paging, linear, span);
    for (std::size_t i = 0; i < got.transferred;) {
      const Translation t = translate(machine.memory(), paging, linear + i);
      const std::size_t in_page =
          std::min<std::size_t>(got.transferred - i, 4096 - ((linear + i) & 4095));
      if (t.ok()) sites.overlay_originals(t.gpa, std::span(out).subspan(i, in_page));
      i += in_page;
    }
    return got.transferred;
  }

  std::size_t read_physical(std::uint64_t gpa, std::span<std::uint8_t> out) {
    if (!machine.memory().read(gpa, std::as_writable_bytes(out))) return 0;
    sites.overlay_originals(gpa, out);
    return out.size();
  }

  // ---- arming ----
  void disarm(PerVcpu& s) {
    for (unsigned i = 0; i < bp::kMaxSlots; ++i) {
      SlotArm& arm = s.slots[i];
      if (arm.engine == Engine::kInt3) sites.remove_breakpoint(arm.gpa);
      if (arm.engine == Engine::kReadOnlyPage || arm.engine == Engine::kUnmappedPage) {
        pages.remove(PageGuard::page_of(arm.gpa), arm.page_access);
      }
      arm = SlotArm{};
    }
    for (std::uint64_t page : s.guarded_tables) {
      pages.remove(page, PageAccess::kReadOnly);
      if (--table_pages[page] == 0) table_pages.erase(page);
    }
    s.guarded_tables.clear();
    s.page_slots = s.exec_slots = s.data_slots = 0;
  }

  static bool hardware_can_serve(const bp::BpAttr& attr, const ProbeResult& can) {
    switch (attr.type) {
      case bp::BpType::kExecute:
        return can.hw_insn_bp.yes();
      case bp::BpType::kWrite:
        return can.hw_data_bp_write.yes();
      default:
        return can.hw_data_bp_rw.yes();
    }
  }

  // The control bits that decide how linear addresses translate (besides CR3).
  static std::uint64_t paging_mode(const kvm_sregs& sregs) {
    return (sregs.cr0 & (std::uint64_t{1} << 31)) | (sregs.cr4 & 0x1030) |
           (sregs.efer & x86::kEferLma);
  }

  // Whether a drvm step of this vCPU is under way (between setting it up and its exit).
  static bool step_in_flight(const PerVcpu& s) {
    return s.step_over || s.debugger_step || s.open_page != kNoAddress || s.rep_cut.active ||
           s.completing || s.lifted_site != kNoAddress;
  }

  void rearm(PerVcpu& s, bool force) {
    s.dirty.store(false, std::memory_order_release);
    mirror_guest_registers(s);  // a debugger or the safety net may have changed them
    const bp::EffectiveSet& eff = manager.schedule(s.index);
    const kvm_sregs sregs = cpu(s).sregs();
    const std::uint64_t tables = table_generation.load();
    const bool same_translation =
        eff.generation == s.armed_generation && sregs.cr3 == s.armed_cr3 &&
        paging_mode(sregs) == s.armed_paging_mode && tables == s.armed_table_generation;
    const bool layout_changed = std::exchange(s.layout_changed, false);
    if (s.armed && !force && !layout_changed && same_translation) return;
    // --exact single-steps every slot; the other engines depend on what the host can do, and on
    // the layout: a page engine never protects a page KVM needs (layout_needs_stepping).
    const ProbeResult* can = eff.used_mask && !options.exact ? &answers() : nullptr;
    const bool stepping_wanted =
        options.exact || s.exact || (can && layout_needs_stepping(s, eff, sregs, *can));
    // A system instruction that moved no watch onto a system page (LGDT elsewhere): as armed.
    if (s.armed && !force && layout_changed && same_translation && stepping_wanted == s.exact) {
      return;
    }
    if (stepping_wanted && !s.exact && step_in_flight(s)) {
      recheck_layout(s);  // after the step's exit
      return;
    }
    disarm(s);
    set_stepping(s, stepping_wanted);
    kvm_guest_debug wanted{};
    wanted.control = KVM_GUESTDBG_ENABLE;
    unsigned hw_used = 0;
    for (std::uint64_t m = eff.used_mask; m; m &= m - 1) {
      const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
      const bp::BpAttr& attr = eff.slot_attr[slot];
      SlotArm& arm = s.slots[slot];
      const bool exec = attr.type == bp::BpType::kExecute;
      (exec ? s.exec_slots : s.data_slots) |= std::uint64_t{1} << slot;
      if (s.exact) {
        arm.engine = Engine::kSingleStep;
        continue;
      }
      if (hardware_can_serve(attr, *can) && hw_used < bp::kX86HardwareSlots) {
        arm.engine = Engine::kHardware;
        arm.hw = static_cast<int>(hw_used);
        wanted.arch.debugreg[hw_used] = attr.addr;
        wanted.arch.debugreg[7] |= bp::encode_dr7_slot(hw_used, attr);
        ++hw_used;
        continue;
      }
      const auto gpa = linear_to_gpa(sregs, attr.addr, attr.len);
      if (!gpa) continue;  // not mapped now: re-tried at the next CR3 change or event change
      arm.gpa = *gpa;
      guard_tables(s, sregs, attr.addr);
      if (exec) {
        // Inside an instruction the processor never reports it, and an INT3 there would change
        // the instruction: left unarmed.
        if (image_code.instruction_may_start(*gpa) && sites.add_breakpoint(*gpa)) {
          arm.engine = Engine::kInt3;
        }
        continue;
      }
      const bool write_only = attr.type == bp::BpType::kWrite && can->readonly_mem.yes();
      arm.engine = write_only ? Engine::kReadOnlyPage : Engine::kUnmappedPage;
      arm.page_access = write_only ? PageAccess::kReadOnly : PageAccess::kUnmapped;
      pages.add(PageGuard::page_of(*gpa), arm.page_access);
      s.page_slots |= std::uint64_t{1} << slot;
      plant_system_sites();
    }
    if (hw_used) wanted.control |= KVM_GUESTDBG_USE_HW_BP;
    if (gd_trap) {
      wanted.control |= KVM_GUESTDBG_USE_HW_BP;
      wanted.arch.debugreg[7] |= bp::dr7::kGd;
    }
    // Until the probe has said that INT3 does not exit with USE_SW_BP, ask for it: a planted trap
    // must never reach the guest's #BP handler.
    if ((probe == nullptr || sw_bp_exits) && !sites.empty()) {
      wanted.control |= KVM_GUESTDBG_USE_SW_BP;
    }
    s.wanted = wanted;
    s.armed = true;
    s.armed_generation = eff.generation;
    s.armed_cr3 = sregs.cr3;
    s.armed_paging_mode = paging_mode(sregs);
    s.armed_table_generation = tables;
    s.counters.rearms.fetch_add(1, std::memory_order_relaxed);
  }

  // ---- the layout: pages a page engine must not protect ----
  // Bytes below the 16-byte aligned RSP an exception frame may take (SS, RSP, RFLAGS, CS, RIP and
  // an error code in 64-bit mode), with room to spare.
  static constexpr std::uint64_t kFrameReach = 64;

  // Appends the guest-physical pages of linear [linear, linear + size) that translate.
  void add_pages(const kvm_sregs& sregs, std::uint64_t linear, std::uint64_t size,
                 std::vector<std::uint64_t>& out) {
    constexpr std::uint64_t kMaxPages = 17;  // a 64 KiB table, unaligned
    const std::uint64_t first = linear & ~std::uint64_t{4095};
    const std::uint64_t last =
        (linear + std::max<std::uint64_t>(size, 1) - 1) & ~std::uint64_t{4095};
    for (std::uint64_t at = first, n = 0; n < kMaxPages; at += 4096, ++n) {
      if (const auto gpa = linear_to_gpa(sregs, std::max(at, linear))) {
        out.push_back(PageGuard::page_of(*gpa));
      }
      if (at == last) break;
    }
  }

  // The pages KVM reads or writes itself, without an exit drvm could complete: the GDT (segment
  // loads read descriptors and set their accessed bits), the IDT, the LDT and the TSS (event
  // delivery), and the stack an exception frame would be pushed on now.
  std::vector<std::uint64_t> system_structure_pages(const kvm_sregs& sregs, const kvm_regs& regs) {
    std::vector<std::uint64_t> pages;
    add_pages(sregs, sregs.gdt.base, std::uint64_t{sregs.gdt.limit} + 1, pages);
    add_pages(sregs, sregs.idt.base, std::uint64_t{sregs.idt.limit} + 1, pages);
    for (const kvm_segment* table : {&sregs.ldt, &sregs.tr}) {
      if (table->present && !table->unusable) {
        add_pages(sregs, table->base, std::min<std::uint64_t>(table->limit, 0xffff) + 1, pages);
      }
    }
    const std::uint64_t top = regs.rsp & ~std::uint64_t{15};
    add_pages(sregs, top - kFrameReach, kFrameReach + 8, pages);
    return pages;
  }

  // Whether a page engine for one of `eff`'s slots would protect a system structure (above) or a
  // paging structure (KVM walks them; an unmapped one ends the walk), or a page-table page on its
  // walk (write-protected by guard_tables) would hold a system structure. Then the vCPU
  // single-steps instead: slower, exact on every layout.
  bool layout_needs_stepping(PerVcpu& s, const bp::EffectiveSet& eff, const kvm_sregs& sregs,
                             const ProbeResult& can) {
    std::vector<std::uint64_t> watched;  // pages the page engines would protect
    std::vector<std::uint64_t> walked;   // paging-structure pages guard_tables would protect
    unsigned hw_used = 0;
    for (std::uint64_t m = eff.used_mask; m; m &= m - 1) {
      const bp::BpAttr& attr = eff.slot_attr[static_cast<unsigned>(std::countr_zero(m))];
      if (hardware_can_serve(attr, can) && hw_used < bp::kX86HardwareSlots) {
        ++hw_used;
        continue;
      }
      const auto gpa = linear_to_gpa(sregs, attr.addr, attr.len);
      if (!gpa) continue;
      const TablePages walk =
          translate(machine.memory(), PagingState::from(sregs), attr.addr).tables;
      walked.insert(walked.end(), walk.page.begin(), walk.page.begin() + walk.count);
      if (attr.type != bp::BpType::kExecute) watched.push_back(PageGuard::page_of(*gpa));
    }
    if (watched.empty() && walked.empty()) return false;
    const std::vector<std::uint64_t> system = system_structure_pages(sregs, regs_of(s));
    const auto is_system = [&](std::uint64_t page) {
      return std::find(system.begin(), system.end(), page) != system.end();
    };
    if (std::any_of(walked.begin(), walked.end(), is_system)) return true;
    if (watched.empty()) return false;
    if (std::any_of(watched.begin(), watched.end(), is_system)) return true;
    const std::vector<std::uint64_t> tables =
        all_paging_structure_pages(machine.memory(), PagingState::from(sregs));
    return std::any_of(watched.begin(), watched.end(), [&](std::uint64_t page) {
      return std::binary_search(tables.begin(), tables.end(), page);
    });
  }

  // Whether an exception frame pushed now would land on a page drvm protects.
  bool frame_on_guarded_page(const kvm_sregs& sregs, const kvm_regs& regs) {
    const std::uint64_t top = regs.rsp & ~std::uint64_t{15};
    for (std::uint64_t linear : {top - kFrameReach, top - 1}) {
      const auto gpa = linear_to_gpa(sregs, linear);
      if (gpa && pages.guarded(PageGuard::page_of(*gpa))) return true;
    }
    return false;
  }

  // Switches the vCPU to or from the single-step engine. While it steps, KVM owns RFLAGS.TF and
  // drvm keeps the guest's (exact_tf).
  void set_stepping(PerVcpu& s, bool on) {
    if (on == s.exact) return;
    kvm_regs regs = regs_of(s);
    if (on) {
      s.exact_tf = guest_tf(s, regs);
      if (regs.rflags & x86::kRflagsTf) {
        regs.rflags &= ~x86::kRflagsTf;
        set_regs_of(s, regs);
      }
      s.prime = true;  // decode the instruction at RIP before it runs
      s.restore_tf = false;
    } else {
      // KVM_SET_GUEST_DEBUG without SINGLESTEP drops TF: set it again after (before_run).
      s.restore_tf = s.exact_tf;
      s.exact_tf = false;
      s.prime = false;
    }
    s.steps_since_layout_check = 0;
    s.exact = on;
  }

  // The next entry re-arms and looks at the layout again (the stack or a table may have moved).
  static void recheck_layout(PerVcpu& s) {
    s.layout_changed = true;
    s.dirty.store(true, std::memory_order_release);
  }

  // The vCPU single-steps from its next instruction on; every slot is re-armed for it then.
  void step_from_now(PerVcpu& s) {
    disarm(s);
    set_stepping(s, true);
    s.armed = false;
    s.dirty.store(true, std::memory_order_release);
  }

  void plant_system_sites() {
    if (system_sites_planted) return;
    system_sites_planted = true;
    for (std::uint64_t gpa : image_code.system_sites) sites.add_system(gpa);
  }

  // The guest's own RFLAGS.TF (KVM hides it while it single-steps for --exact).
  // Whether KVM_GUESTDBG_SINGLESTEP is in force on the vCPU (KVM then owns RFLAGS.TF).
  static bool kvm_steps(const PerVcpu& s) {
    return s.debug_applied && (s.applied.control & KVM_GUESTDBG_SINGLESTEP);
  }

  // KVM_GET_REGS hides TF while KVM single-steps for drvm: drvm kept the guest's when the step
  // began (begin_step), or keeps it all along on the single-step engine.
  bool guest_tf(const PerVcpu& s, const kvm_regs& regs) const {
    if (s.exact) return s.exact_tf;
    if (kvm_steps(s)) return s.tf_after;
    return (regs.rflags & x86::kRflagsTf) != 0;
  }

  // Write-protects the paging structures translating `linear`: a guest write to them re-arms.
  void guard_tables(PerVcpu& s, const kvm_sregs& sregs, std::uint64_t linear) {
    const TablePages walk = translate(machine.memory(), PagingState::from(sregs), linear).tables;
    for (unsigned i = 0; i < walk.count; ++i) {
      const std::uint64_t page = walk.page[i];
      if (std::find(s.guarded_tables.begin(), s.guarded_tables.end(), page) !=
          s.guarded_tables.end()) {
        continue;
      }
      s.guarded_tables.push_back(page);
      pages.add(page, PageAccess::kReadOnly);
      ++table_pages[page];
    }
  }

  bool stepping(const PerVcpu& s) const {
    return s.exact || s.step_over || s.debugger_step || s.open_page != kNoAddress;
  }

  void apply_guest_debug(PerVcpu& s) {
    kvm_guest_debug debug = s.wanted;
    for (unsigned n = 0; n < bp::kX86HardwareSlots; ++n) {
      if (s.hw_suppressed & (1u << n)) debug.arch.debugreg[7] &= ~bp::dr7::slot_mask(n);
    }
    if (stepping(s)) debug.control |= KVM_GUESTDBG_SINGLESTEP;
    // A step drvm takes for itself (over a breakpoint, an access to a protected page, a debugger's
    // stepi) must end after that instruction, not at the first one of an interrupt handler that
    // became pending meanwhile: interrupts wait while it steps (QEMU's gdbstub does the same).
    // --exact steps the guest through everything, handlers included, so it does not block them.
    if (block_irq && !s.exact && (debug.control & KVM_GUESTDBG_SINGLESTEP)) {
      debug.control |= KVM_GUESTDBG_BLOCKIRQ;
    }
    if (debug.control == KVM_GUESTDBG_ENABLE) debug.control = 0;  // nothing to do: plain run
    if (s.debug_applied && std::memcmp(&debug, &s.applied, sizeof debug) == 0) return;
    cpu(s).set_guest_debug(debug);
    s.applied = debug;
    s.debug_applied = true;
  }

  // ---- injection ----
  void inject(PerVcpu& s, std::uint8_t vector, std::optional<std::uint32_t> error_code,
              std::optional<std::uint64_t> dr6 = std::nullopt) {
    Vcpu& vcpu = cpu(s);
    if (dr6) {
      // The guest reads DR6 through drvm; KVM's copy is kept equal for code drvm never saw.
      s.loaded.dr6 = *dr6;
      vcpu.set_debugregs(s.loaded);
      s.counters.guest_debug_exceptions.fetch_add(1, std::memory_order_relaxed);
    }
    if (!s.exact && !step_in_flight(s) && frame_on_guarded_page(sregs_of(s), regs_of(s))) {
      // The handler would run with its stack on a protected page: it steps from its first
      // instruction on (the layout check at the next re-arm would decide so anyway).
      step_from_now(s);
    }
    if (deliver_in_software(s, vector, error_code)) return;
    answers();  // whether KVM takes a DR6 payload (KVM_CAP_EXCEPTION_PAYLOAD)
    queue_event(vcpu, Exception{vector, error_code},
                dr6 ? std::optional(*dr6 & bp::dr6::kWritable) : std::nullopt, payload);
    s.exact_tf = false;  // the delivery clears TF
    s.prime = false;     // --exact: the handler's entry is decoded after the injection
    s.step_decoded = false;
  }

  // KVM cannot push an exception frame onto a page drvm protects (its delivery does not exit to
  // userspace: the guest would triple-fault). When the frame lands on such a page, drvm delivers
  // the exception itself, as the processor does for a 64-bit interrupt or trap gate without a
  // privilege change or IST (SDM Vol. 3, 6.14); other cases go to KVM.
  // --exact delivers every exception it can itself too: KVM's own delivery clears the trap flag
  // its single-stepping relies on, so the handler would run unchecked up to its IRET.
  bool deliver_in_software(PerVcpu& s, std::uint8_t vector,
                           std::optional<std::uint32_t> error_code) {
    kvm_regs regs = regs_of(s);
    const kvm_sregs sregs = sregs_of(s);
    // While KVM steps for drvm it hides the guest's TF, which the frame must hold.
    if (!s.exact && !frame_on_guarded_page(sregs, regs) && !(kvm_steps(s) && s.tf_after)) {
      return false;
    }
    const std::uint64_t pushed_rflags =
        (regs.rflags & ~x86::kRflagsTf) | (guest_tf(s, regs) ? x86::kRflagsTf : 0);
    if (!deliver_without_privilege_change(machine.memory(), sregs, regs,
                                          Exception{vector, error_code}, pushed_rflags)) {
      return false;
    }
    s.exact_tf = false;
    set_regs_of(s, regs);
    s.prime = false;
    s.step_decoded = false;
    s.debug_applied = false;  // KVM re-arms its single-step at the new RIP
    if (s.exact) s.prime = true;
    return true;
  }

  // ---- dispatch ----
  void route(PerVcpu& s, const bp::DispatchResult& out, std::uint64_t rip, StopKind kind,
             const std::optional<AccessInfo>& access, Notifications& n) {
    for (unsigned i = 0; i < out.fired_count; ++i) {
      const bp::FiredEvent& fired = out.fired[i];
      HostHit& hit = n.hits[n.hit_count++];
      hit = HostHit{.vcpu = s.index,
                    .event = fired.event,
                    .owner = fired.owner,
                    .rip = rip,
                    .access = access,
                    .data = kind == StopKind::kWatchpoint,
                    .overflow = fired.overflow};
      if (auto reading = manager.read(fired.event)) hit.count = reading.value().value;
      if (fired.action == bp::HitAction::kStop && fired.overflow && !n.stop) {
        n.stop = true;
        n.stop_info = StopInfo{kind, rip, fired.event, fired.owner, access};
      }
    }
    s.counters.host_hits.fetch_add(out.fired_count, std::memory_order_relaxed);
    if (out.deliver_to_guest) {
      inject(s, x86::kVectorDb, std::nullopt, out.guest_dr6);
      n.guest_delivered = true;
    }
  }

  // Calls the owners' callbacks without the lock; returns whether the vCPU must stop.
  bool notify(Notifications& n) {
    bool stop = n.stop;
    for (unsigned i = 0; i < n.hit_count; ++i) {
      HitCallback callback;
      {
        std::lock_guard lock(mutex);
        auto it = hit_callbacks.find(n.hits[i].owner);
        if (it != hit_callbacks.end()) callback = it->second;
      }
      if (callback && callback(n.hits[i]) && !stop) {
        stop = true;
        const HostHit& hit = n.hits[i];
        n.stop_info = StopInfo{hit.data ? StopKind::kWatchpoint : StopKind::kBreakpoint, hit.rip,
                               hit.event, hit.owner, hit.access};
      }
    }
    return stop;
  }

  // Parks the vCPU and tells the stop callback (no lock held).
  ExitAction stop_vcpu(PerVcpu& s, const StopInfo& info) {
    StopCallback callback;
    {
      std::lock_guard lock(mutex);
      callback = stop_callback;
      s.cancel_stop = false;
    }
    if (callback) callback(s.index, info);
    std::lock_guard lock(mutex);
    if (s.cancel_stop) {
      s.cancel_stop = false;
      return ExitAction::kResume;
    }
    return ExitAction::kPause;
  }

  // ---- MOV DR emulation ----
  // Emulates the MOV DR `move` at RIP. Returns false when an exception was injected instead.
  bool emulate_mov_dr(PerVcpu& s, kvm_regs& regs, const kvm_sregs& sregs, const DecodedMove& move) {
    s.counters.dr_emulations.fetch_add(1, std::memory_order_relaxed);
    const bp::CpuMode mode = cpu_mode(sregs);
    bp::GuestDrFile& file = manager.guest(s.index);
    bp::DrAccessResult result;
    if (move.kind == ControlMove::kToDr) {
      std::uint64_t value = gpr(regs, move.gpr);
      if (!mode.long_mode) value &= 0xffffffffu;
      result = file.mov_to_dr(move.special, value, mode);
      s.dirty.store(true, std::memory_order_release);
      if (result.action == bp::DrAccessResult::Action::kOk) mirror_guest_registers(s);
    } else {
      result = file.mov_from_dr(move.special, mode);
    }
    switch (result.action) {
      case bp::DrAccessResult::Action::kOk:
        if (move.kind == ControlMove::kFromDr) {
          gpr(regs, move.gpr) = mode.long_mode ? result.value : (result.value & 0xffffffffu);
        }
        regs.rip += move.length;
        regs.rflags &= ~x86::kRflagsRf;
        set_regs_of(s, regs);
        if (result.arm_error) {
          warn(warned_arm,
               fmt::format("vCPU {}: the guest's breakpoint could not be armed at RIP {:#x}: {}; "
                           "host events hold the slots (raise --slots)",
                           s.index, regs.rip - move.length, bp::error_message(*result.arm_error)));
        }
        return true;
      case bp::DrAccessResult::Action::kInjectUd:
        inject(s, x86::kVectorUd, std::nullopt);
        return false;
      case bp::DrAccessResult::Action::kInjectGp:
        inject(s, x86::kVectorGp, 0);
        return false;
      case bp::DrAccessResult::Action::kInjectDb:
        inject(s, x86::kVectorDb, std::nullopt, result.dr6);
        return false;
    }
    return false;
  }

  // The guest's TF single-step after an instruction drvm completed itself (emulated MOV DR).
  void guest_single_step_trap(PerVcpu& s, Notifications& n, std::uint64_t rip) {
    bp::DispatchResult out;
    manager.dispatch(s.index, bp::DbHit{0, bp::dr6::kBs}, out);
    route(s, out, rip, StopKind::kStep, std::nullopt, n);
  }

  // KVM's own copy of the guest's DRs holds the guest's values, so that a MOV from DR drvm never
  // sees (code outside the image) reads them, and so that the safety net notices KVM's own
  // changes (BS when it delivers the guest's TF step itself). DR7's enables and GD are left out:
  // KVM must not arm or check them itself (the engines do), so an untrapped read of DR7 misses
  // just those bits.
  void mirror_guest_registers(PerVcpu& s) {
    const bp::GuestDebugRegs guest = manager.guest(s.index).values();
    kvm_debugregs want = s.loaded;
    for (unsigned i = 0; i < 4; ++i) want.db[i] = guest.dr[i];
    want.dr6 = guest.dr6;
    want.dr7 = guest.dr7 & ~(bp::dr7::kEnableBits | bp::dr7::kGd);
    if (std::memcmp(want.db, s.loaded.db, sizeof want.db) == 0 && want.dr6 == s.loaded.dr6 &&
        want.dr7 == s.loaded.dr7) {
      return;
    }
    cpu(s).set_debugregs(want);
    s.loaded = want;
  }

  // ---- safety net ----
  void check_untrapped(PerVcpu& s) {
    const kvm_debugregs now = cpu(s).debugregs();
    const bool address_or_control =
        std::memcmp(now.db, s.loaded.db, sizeof now.db) != 0 || now.dr7 != s.loaded.dr7;
    if (!address_or_control && now.dr6 == s.loaded.dr6) return;
    bp::GuestDebugRegs regs = manager.guest(s.index).values();
    if (address_or_control) {
      s.counters.untrapped_dr_changes.fetch_add(1, std::memory_order_relaxed);
      warn(warned_untrapped,
           fmt::format("vCPU {}: the guest changed its debug registers without drvm seeing the "
                       "MOV DR (noticed at RIP {:#x}); imported them. Use --exact for code that "
                       "is not in the image's executable segments",
                       s.index, regs_of(s).rip));
      for (unsigned i = 0; i < 4; ++i) regs.dr[i] = now.db[i];
      regs.dr7 = now.dr7;
    }
    const bool delivered = now.dr6 != s.loaded.dr6;  // KVM delivered a #DB itself (TF step)
    regs.dr6 = now.dr6;
    (void)manager.guest(s.index).load(regs);
    // Entering the #DB handler cleared DR7.GD (SDM 17.2.4), which KVM's copy never holds.
    if (delivered) manager.guest(s.index).deliver_db(now.dr6 & bp::dr6::kWritable);
    s.loaded = now;
    mirror_guest_registers(s);
    s.dirty.store(true, std::memory_order_release);
  }

  // ---- data accesses ----
  void match_access(PerVcpu& s, const AccessInfo& access, std::uint64_t candidates) {
    const bp::EffectiveSet& eff = manager.effective(s.index);
    for (std::uint64_t m = candidates; m; m &= m - 1) {
      const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
      const bp::BpAttr& attr = eff.slot_attr[slot];
      if (bp::matches(attr, access.linear, access.size, access.type)) {
        s.access_slots |= std::uint64_t{1} << slot;
        if (s.first_access) continue;
        s.first_access = access;
        if (access.size > 8) {
          // A REP string range: report the element that touched the watch.
          const std::uint64_t first = std::max(access.linear, attr.addr);
          s.first_access->linear = first;
          s.first_access->size = 1;
        }
      }
    }
  }

  // A protected page was accessed at `gpa`: which watches of this vCPU does it touch?
  void match_physical(PerVcpu& s, std::uint64_t gpa, std::uint32_t size, bp::Access type,
                      std::optional<std::uint64_t> old_value,
                      std::optional<std::uint64_t> new_value) {
    const bp::EffectiveSet& eff = manager.effective(s.index);
    const std::uint64_t page = PageGuard::page_of(gpa);
    for (std::uint64_t m = s.page_slots; m; m &= m - 1) {
      const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
      if (PageGuard::page_of(s.slots[slot].gpa) != page) continue;
      const std::uint64_t linear = (eff.slot_attr[slot].addr & ~std::uint64_t{4095}) + (gpa - page);
      if (bp::matches(eff.slot_attr[slot], linear, size, type)) {
        s.access_slots |= std::uint64_t{1} << slot;
        if (!s.first_access) s.first_access = AccessInfo{type, linear, size, old_value, new_value};
      }
    }
  }

  // The instruction that made the collected accesses completed: report them (trap-like), with the
  // guest's own single-step when drvm's step swallowed it.
  void finish_instruction(PerVcpu& s, const kvm_regs& regs, bool guest_step, Notifications& n) {
    const std::uint64_t hit = s.access_slots;
    if (hit == 0 && !guest_step) return;
    bp::DispatchResult out;
    manager.dispatch(s.index, bp::DbHit{hit, guest_step ? bp::dr6::kBs : 0}, out);
    route(s, out, regs.rip, hit ? StopKind::kWatchpoint : StopKind::kStep, s.first_access, n);
    s.access_slots = 0;
    s.first_access.reset();
  }

  // ---- instruction boundaries ----
  // Instruction breakpoints at `linear` before the instruction runs (fault-like). Honours RF.
  void check_exec(PerVcpu& s, std::uint64_t linear, const kvm_regs& regs, Notifications& n) {
    if (s.skip_exec_at == linear || (regs.rflags & x86::kRflagsRf)) return;
    const bp::EffectiveSet& eff = manager.effective(s.index);
    std::uint64_t hit = 0;
    for (std::uint64_t m = s.exec_slots; m; m &= m - 1) {
      const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
      if (eff.slot_attr[slot].addr == linear) hit |= std::uint64_t{1} << slot;
    }
    if (!hit) return;
    bp::DispatchResult out;
    manager.dispatch(s.index, bp::DbHit{hit, 0}, out);
    route(s, out, regs.rip, StopKind::kBreakpoint, std::nullopt, n);
    if (!n.guest_delivered) s.skip_exec_at = linear;  // the host let it run: report it once
  }

  // Starts one drvm step of the instruction at RIP (step over a trap, a debugger step, or an
  // instruction fetched from an unmapped page). Decodes its accesses when its page must be opened.
  void begin_step(PerVcpu& s, const kvm_regs& regs, const kvm_sregs& sregs) {
    s.guest_tf = guest_tf(s, regs);
    s.tf_after = s.guest_tf;
    s.restore_tf = false;  // the TF of this step's end decides
    if (!s.exact) {
      std::array<std::uint8_t, kMaxInstruction> bytes{};
      const std::size_t size = fetch(regs, sregs, bytes);
      if (const auto loaded = tf_loaded_by(std::span(bytes.data(), size), regs, sregs)) {
        s.tf_after = *loaded;
      }
    }
    s.step_before = regs;
    s.step_decoded = false;
    s.counters.single_steps.fetch_add(1, std::memory_order_relaxed);
    const auto gpa = linear_to_gpa(sregs, sregs.cs.base + regs.rip);
    if (!gpa) return;
    std::uint64_t page = PageGuard::page_of(*gpa);
    if (pages.wanted(page) != PageAccess::kUnmapped && !s.exact) {
      if (const auto operand = system_operand_page(regs, sregs)) {
        page = *operand;  // opened for the step; the decode reports the access
      } else {
        // A debugger's step of a REP string instruction runs one iteration, as the processor's
        // TF step does. The page engines report its accesses: the decode only serves the cut.
        if (s.debugger_step) {
          std::array<std::uint8_t, kMaxInstruction> bytes{};
          const std::size_t size = fetch(regs, sregs, bytes);
          kvm_regs cut = regs;
          const auto decoded = DecodedAccesses::decode(std::span(bytes.data(), size), regs, sregs);
          if (cut_rep(s, cut, decoded)) s.step_before = cut;
        }
        return;
      }
    }
    if (!s.exact) {
      pages.open_temporarily(page);
      s.open_page = page;
    }
    std::array<std::uint8_t, kMaxInstruction> bytes{};
    const std::size_t size = fetch(regs, sregs, bytes);
    s.step_decode = DecodedAccesses::decode(std::span(bytes.data(), size), regs, sregs);
    s.step_decoded = s.step_decode.valid();
    kvm_regs cut = regs;
    if (s.step_decoded && iterations_observed(s, regs) && cut_rep(s, cut, s.step_decode)) {
      s.step_before = cut;
    }
  }

  // The TF a POPF or IRET at the start of `bytes` loads (64-bit CPL-0 forms), read from the stack
  // without executing it.
  std::optional<bool> tf_loaded_by(std::span<const std::uint8_t> bytes, const kvm_regs& regs,
                                   const kvm_sregs& sregs) {
    std::size_t i = 0;
    while (i < bytes.size() && (bytes[i] == 0x66 || (bytes[i] & 0xf0) == 0x40)) ++i;
    if (i >= bytes.size() || (bytes[i] != 0x9d && bytes[i] != 0xcf)) return std::nullopt;
    const auto loaded = emulate_flags_instruction(bytes, regs, sregs, machine.memory());
    if (!loaded) return std::nullopt;
    return (loaded->regs.rflags & x86::kRflagsTf) != 0;
  }

  // The protected page a system instruction at RIP reads or writes (is_system_instruction): KVM
  // does that access itself, with no MMIO exit to complete, so its page is opened for the step.
  std::optional<std::uint64_t> system_operand_page(const kvm_regs& regs, const kvm_sregs& sregs) {
    std::array<std::uint8_t, kMaxInstruction> bytes{};
    const std::size_t size = fetch(regs, sregs, bytes);
    if (!is_system_instruction(bytes.data(), size, in_64bit_mode(sregs))) return std::nullopt;
    const auto decoded = DecodedAccesses::decode(std::span(bytes.data(), size), regs, sregs);
    std::array<MemoryAccess, DecodedAccesses::kMax> accesses{};
    const std::size_t count = decoded.valid() ? decoded.resolve(regs, regs, accesses) : 0;
    for (std::size_t i = 0; i < count; ++i) {
      for (std::uint64_t linear : {accesses[i].linear, accesses[i].linear + accesses[i].size - 1}) {
        const auto gpa = linear_to_gpa(sregs, linear);
        if (gpa && pages.guarded(PageGuard::page_of(*gpa))) return PageGuard::page_of(*gpa);
      }
    }
    return std::nullopt;
  }

  // Whether the decoded REP string instruction about to be stepped must run one iteration per
  // step: a data breakpoint may be hit by one of its iterations, or the guest (TF) or a debugger
  // single-steps it, which traps after each iteration. Otherwise KVM runs it in one go.
  bool iterations_observed(PerVcpu& s, const kvm_regs& regs) {
    if (!s.step_decode.is_rep_string()) return false;
    if (s.guest_tf || s.debugger_step) return true;
    kvm_regs finished = regs;
    finished.rcx &= ~s.step_decode.count_mask();
    std::array<MemoryAccess, DecodedAccesses::kMax> accesses{};
    const std::size_t count = s.step_decode.resolve(regs, finished, accesses);
    const bp::EffectiveSet& eff = manager.effective(s.index);
    for (std::uint64_t m = s.data_slots; m; m &= m - 1) {
      const bp::BpAttr& attr = eff.slot_attr[static_cast<unsigned>(std::countr_zero(m))];
      for (std::size_t i = 0; i < count; ++i) {
        if (bp::matches(attr, accesses[i].linear, accesses[i].size, accesses[i].type)) return true;
      }
    }
    return false;
  }

  // A drvm step finished (the instruction retired or faulted).
  void end_step(PerVcpu& s, const kvm_regs& after) {
    if (s.lifted_site != kNoAddress) {
      sites.replant(s.lifted_site);
      s.lifted_site = kNoAddress;
    }
    if (s.open_page != kNoAddress) {
      pages.close_again(s.open_page);
      s.open_page = kNoAddress;
    }
    s.hw_suppressed = 0;
    s.step_over = false;
    if (s.step_decoded && s.step_decode.retired(s.step_before, after)) {
      std::array<MemoryAccess, DecodedAccesses::kMax> accesses{};
      const std::size_t count = s.step_decode.resolve(s.step_before, after, accesses);
      for (std::size_t i = 0; i < count; ++i) {
        match_access(s, AccessInfo{accesses[i].type, accesses[i].linear, accesses[i].size, {}, {}},
                     s.data_slots);
      }
    }
    s.step_decoded = false;
    if (after.rip != s.step_before.rip) s.skip_exec_at = kNoAddress;
  }

  // The vCPU is at an instruction boundary drvm intercepted (trap site, hardware instruction
  // breakpoint, --exact step): report instruction breakpoints, emulate MOV DR, or set up the step
  // that runs the instruction. Called without the lock.
  ExitAction boundary(PerVcpu& s) {
    for (unsigned emulated = 0; emulated < kMaxEmulatedInARow; ++emulated) {
      Notifications n;
      kvm_regs regs = regs_of(s);
      const kvm_sregs sregs = sregs_of(s);
      const std::uint64_t linear = sregs.cs.base + regs.rip;
      if (layout_check_due(s)) {
        // The layout that made this vCPU step may be gone (the stack moved on, a table was
        // moved): back to the page engines, armed before the next entry.
        std::lock_guard lock(mutex);
        const bp::EffectiveSet& eff = manager.schedule(s.index);
        if (!s.exact_tf && (!eff.used_mask || !layout_needs_stepping(s, eff, sregs, answers()))) {
          set_stepping(s, false);
          s.armed = false;  // every slot goes back to its engine at the next entry
          s.dirty.store(true, std::memory_order_release);
          return ExitAction::kResume;
        }
      }
      {
        std::lock_guard lock(mutex);
        if (s.skip_exec_at != linear) s.skip_exec_at = kNoAddress;
        check_exec(s, linear, regs, n);
      }
      if (notify(n)) {
        s.skip_exec_at = linear;
        return stop_vcpu(s, n.stop_info);
      }
      if (n.guest_delivered) return ExitAction::kResume;  // the #DB comes before the instruction

      std::lock_guard lock(mutex);
      std::array<std::uint8_t, kMaxInstruction> bytes{};
      const std::size_t size = fetch(regs, sregs, bytes);
      const auto move = decode_control_move(bytes.data(), size, in_64bit_mode(sregs));
      const auto gpa = linear_to_gpa(sregs, linear);
      const TrapSites::Site* site = gpa ? sites.find(*gpa) : nullptr;
      const bool trapped_move = move && move->kind != ControlMove::kToCr &&
                                (s.exact || gd_trap || (site && site->mov_dr));
      if (trapped_move) {
        if (!emulate_mov_dr(s, regs, sregs, *move)) return ExitAction::kResume;
        s.skip_exec_at = kNoAddress;
        if (guest_tf(s, regs)) {
          Notifications step_n;
          guest_single_step_trap(s, step_n, regs.rip);
          return ExitAction::kResume;
        }
        if (s.debugger_step) {
          s.debugger_step = false;
          mutex.unlock();
          const ExitAction action = stop_vcpu(s, StopInfo{StopKind::kStep, regs.rip, {}, 0, {}});
          mutex.lock();
          return action;
        }
        if (s.exact) continue;  // the next instruction is a new boundary
        return ExitAction::kResume;
      }
      if (s.exact && size > 0 && bytes[0] == 0xcc) {
        // INT3: #BP delivered here, so that the frame holds the guest's TF.
        regs.rip += 1;
        set_regs_of(s, regs);
        if (deliver_in_software(s, x86::kVectorBp, std::nullopt)) return ExitAction::kResume;
        regs.rip -= 1;
        set_regs_of(s, regs);
      }
      // PUSHF, POPF and IRET are executed by drvm: KVM single-steps through RFLAGS.TF, which
      // POPF and IRET load (a step of them would run on past them) and PUSHF would store.
      kvm_regs with_tf = regs;
      with_tf.rflags = (regs.rflags & ~x86::kRflagsTf) | (guest_tf(s, regs) ? x86::kRflagsTf : 0);
      {
        auto loaded = emulate_flags_instruction(std::span(bytes.data(), size), with_tf, sregs,
                                                machine.memory());
        if (loaded) {
          // The guest's TF as it was before the instruction decides its single-step trap (SDM
          // Vol. 3, 17.3.1.4: TF loaded by POPF/IRET takes effect after the next instruction).
          const bool tf_loaded = (loaded->regs.rflags & x86::kRflagsTf) != 0;
          if (s.exact) {
            s.exact_tf = tf_loaded;
            loaded->regs.rflags &= ~x86::kRflagsTf;
          } else {
            s.tf_after = tf_loaded;
          }
          set_regs_of(s, loaded->regs);
          s.skip_exec_at = kNoAddress;
          const MemoryAccess& stack = loaded->stack;
          match_access(s, AccessInfo{stack.type, stack.linear, stack.size, {}, {}}, s.data_slots);
          Notifications done;
          finish_instruction(s, loaded->regs, (with_tf.rflags & x86::kRflagsTf) != 0, done);
          const bool debugger_step = std::exchange(s.debugger_step, false);
          mutex.unlock();
          ExitAction action = ExitAction::kResume;
          if (notify(done)) {
            action = stop_vcpu(s, done.stop_info);
          } else if (debugger_step) {
            action = stop_vcpu(s, StopInfo{StopKind::kStep, loaded->regs.rip, {}, 0, {}});
          }
          mutex.lock();
          if (action == ExitAction::kPause || done.guest_delivered || debugger_step) {
            return action;
          }
          if (s.exact) continue;  // the next instruction is a new boundary
          if (s.tf_after) {
            // The guest single-steps from here: drvm's single-step engine makes its traps (KVM's
            // own TF handling skips some after a TF it did not load itself).
            step_from_now(s);  // the next instruction is decoded first
            return ExitAction::kResume;
          }
          // IRET: the stack moved.
          if (is_system_instruction(bytes.data(), size, in_64bit_mode(sregs))) recheck_layout(s);
          return ExitAction::kResume;
        }
      }
      // Run the instruction with one step: lift our trap under it for that step.
      if (site && !site->lifted) {
        sites.lift(*gpa);
        s.lifted_site = *gpa;
      }
      if (is_system_instruction(bytes.data(), size, in_64bit_mode(sregs))) {
        s.rearm_after_step = true;  // a table may now be on a protected page (or off one)
      }
      for (std::uint64_t m = s.exec_slots; m; m &= m - 1) {
        const SlotArm& arm = s.slots[static_cast<unsigned>(std::countr_zero(m))];
        if (arm.engine == Engine::kHardware &&
            manager.effective(s.index).slot_attr[std::countr_zero(m)].addr == linear) {
          s.hw_suppressed |= static_cast<std::uint8_t>(1u << arm.hw);
        }
      }
      s.step_over = true;
      begin_step(s, regs, sregs);
      return ExitAction::kResume;
    }
    return ExitAction::kResume;
  }

  // Layout-driven stepping (not --exact) looks again every so many instructions, and right after
  // an instruction that moved a system structure.
  bool layout_check_due(PerVcpu& s) {
    constexpr unsigned kLayoutCheckInterval = 256;
    return s.exact && !options.exact && ++s.steps_since_layout_check >= kLayoutCheckInterval;
  }

  ExitAction handle_step_exit(PerVcpu& s) {
    Notifications n;
    kvm_regs after = regs_of(s);
    bool debugger_step = false;
    {
      std::lock_guard lock(mutex);
      const std::uint64_t start = s.step_before.rip;
      end_step(s, after);
      if (std::exchange(s.rearm_after_step, false)) {
        recheck_layout(s);
        s.steps_since_layout_check = ~0u - 1;  // and see whether stepping is still needed
      }
      resume_cut_rep(s, after);
      // Also when the step ended in a protected access (KVM may run past a step it owes, into
      // the next instruction: a REP string whose last iteration touched the page).
      if (after.rip == start || s.completing) retire_finished_rep(s, after);
      s.completing = false;
      finish_instruction(s, after, s.guest_tf, n);
      s.guest_tf = false;
      // KVM drops the guest's TF with the step: set it again once the step is off (before_run).
      if (!s.exact && s.tf_after && !n.guest_delivered) s.restore_tf = true;
      debugger_step = s.debugger_step;
      s.debugger_step = false;
    }
    if (notify(n)) return stop_vcpu(s, n.stop_info);
    if (debugger_step) return stop_vcpu(s, StopInfo{StopKind::kStep, after.rip, {}, 0, {}});
    if (s.exact && !n.guest_delivered) return boundary(s);
    return ExitAction::kResume;
  }

  // Makes the REP string instruction at RIP (registers `regs` before the iteration in flight or
  // about to run) stop after that iteration, so each iteration is a trap boundary as on the
  // processor (SDM Vol. 3, 17.3.1.2 and 17.3.1.4).
  bool cut_rep(PerVcpu& s, kvm_regs& regs, const DecodedAccesses& decoded) {
    const std::uint64_t mask = decoded.count_mask();
    if (s.rep_cut.active || !decoded.is_rep_string() || (regs.rcx & mask) <= 1) return false;
    s.rep_cut = RepCut{true, regs.rip, regs.rcx, decoded.length(), mask, decoded.rep_condition()};
    regs.rcx = (regs.rcx & ~mask) | 1;
    set_regs_of(s, regs);
    return true;
  }

  // The cut iteration is over: restore the remaining count and, while iterations remain, put RIP
  // back at the instruction with RF = 1 (what the processor has between iterations).
  void resume_cut_rep(PerVcpu& s, kvm_regs& regs) {
    if (!s.rep_cut.active) return;
    const RepCut cut = s.rep_cut;
    s.rep_cut.active = false;
    // KVM may leave RIP at the instruction after its final iteration (retire_finished_rep).
    const bool iterated =
        (regs.rip == cut.rip + cut.length || regs.rip == cut.rip) && (regs.rcx & cut.mask) == 0;
    if (iterated) {
      const std::uint64_t remaining = ((cut.rcx & cut.mask) - 1) & cut.mask;
      regs.rcx = (cut.rcx & ~cut.mask) | remaining;
      const bool zf = (regs.rflags & x86::kRflagsZf) != 0;
      const bool ended = (cut.condition == RepCondition::kWhileEqual && !zf) ||
                         (cut.condition == RepCondition::kWhileNotEqual && zf);
      if (remaining != 0 && !ended) {
        regs.rip = cut.rip;
        regs.rflags |= x86::kRflagsRf;
      } else {
        regs.rip = cut.rip + cut.length;
        regs.rflags &= ~x86::kRflagsRf;
      }
    } else if ((regs.rcx & cut.mask) == 1) {
      regs.rcx = cut.rcx;  // the iteration faulted: nothing was counted
    } else {
      return;
    }
    set_regs_of(s, regs);
  }

  // KVM can return from a REP string instruction whose last iteration touched a protected page
  // with RIP still at it and RCX = 0; the processor would be past it (the trap-like #DB reports
  // the next instruction), and running it again would do nothing.
  void retire_finished_rep(PerVcpu& s, kvm_regs& regs) {
    const kvm_sregs sregs = sregs_of(s);
    std::array<std::uint8_t, kMaxInstruction> bytes{};
    const std::size_t size = fetch(regs, sregs, bytes);
    const auto decoded = DecodedAccesses::decode(std::span(bytes.data(), size), regs, sregs);
    if (!decoded.valid() || !decoded.is_rep_string() || (regs.rcx & decoded.count_mask()) != 0) {
      return;
    }
    regs.rip += decoded.length();
    set_regs_of(s, regs);
  }

  std::optional<ExitAction> handle_mmio(PerVcpu& s, kvm_run& run) {
    const std::uint64_t gpa = run.mmio.phys_addr;
    const std::uint32_t len = std::min<std::uint32_t>(run.mmio.len, sizeof run.mmio.data);
    std::byte* host = machine.memory().host(gpa, len);
    if (host == nullptr) return std::nullopt;  // a device, not RAM
    // RAM that exits is a page drvm protects (or one whose memslot is being rebuilt): complete the
    // access against RAM, then see whether it touched a watch.
    std::lock_guard lock(mutex);
    s.counters.protected_accesses.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t old_value = 0, new_value = 0;
    std::memcpy(&old_value, host, len);
    if (run.mmio.is_write) {
      std::memcpy(host, run.mmio.data, len);
      std::memcpy(&new_value, run.mmio.data, len);
    } else {
      std::memcpy(run.mmio.data, host, len);
    }
    const std::uint64_t before = s.access_slots;
    if (run.mmio.is_write && table_pages.count(PageGuard::page_of(gpa)) && old_value != new_value) {
      // A paging-structure edit: translations of watches and planted breakpoints may change.
      table_generation.fetch_add(1);
      mark_all_dirty();
    }
    if (run.mmio.is_write) {
      match_physical(s, gpa, len, bp::Access::kWrite, old_value, new_value);
    } else {
      match_physical(s, gpa, len, bp::Access::kRead, std::nullopt, std::nullopt);
    }
    if (s.access_slots != before && !run.mmio.is_write) {
      // A read exits before its iteration ends, and KVM would run the next iterations before
      // returning: stop the REP after this one. (A write exits after its iteration.)
      kvm_regs regs = regs_of(s);
      const kvm_sregs sregs = sregs_of(s);
      std::array<std::uint8_t, kMaxInstruction> bytes{};
      const std::size_t size = fetch(regs, sregs, bytes);
      cut_rep(s, regs, DecodedAccesses::decode(std::span(bytes.data(), size), regs, sregs));
    }
    // During drvm's own step too, and during the guest's own (TF): after a write KVM forgets the
    // step it owes, so drvm reports it.
    const bool guest_step = !stepping(s) && (regs_of(s).rflags & x86::kRflagsTf);
    if (s.access_slots != before || s.completing || stepping(s) || guest_step) {
      // Trap-like: let KVM finish the instruction (immediate_exit), then report.
      s.completing = true;
      s.completion_entered = false;
    }
    return ExitAction::kResume;
  }

  ExitAction finish_completion(PerVcpu& s) {
    Notifications n;
    kvm_regs regs = regs_of(s);
    {
      std::lock_guard lock(mutex);
      s.completing = false;
      resume_cut_rep(s, regs);
      if (s.access_slots) retire_finished_rep(s, regs);
      // The guest's own TF trap of this instruction joins the data hit in one #DB (KVM's queued
      // one is replaced by the injection).
      finish_instruction(s, regs, (regs.rflags & x86::kRflagsTf) != 0, n);
    }
    if (notify(n)) return stop_vcpu(s, n.stop_info);
    return ExitAction::kResume;
  }

  std::optional<ExitAction> handle_emulation_failure(PerVcpu& s) {
    const kvm_regs regs = regs_of(s);
    const kvm_sregs sregs = sregs_of(s);
    bool at_site = false;
    {
      std::lock_guard lock(mutex);
      const auto gpa = linear_to_gpa(sregs, sregs.cs.base + regs.rip);
      if (!gpa) return std::nullopt;
      const TrapSites::Site* site = sites.find(*gpa);
      at_site = site && !site->lifted;
      const bool unmapped_page = pages.wanted(PageGuard::page_of(*gpa)) == PageAccess::kUnmapped;
      // Anything else (an INT3 drvm did not plant: #BP for the guest) takes the default path.
      if (!at_site && !unmapped_page) return std::nullopt;
      s.counters.trap_exits.fetch_add(1, std::memory_order_relaxed);
      check_cr3(s, sregs);
    }
    if (!s.exact) check_untrapped_locked(s);
    return boundary(s);
  }

  void check_untrapped_locked(PerVcpu& s) {
    std::lock_guard lock(mutex);
    check_untrapped(s);
  }

  void check_cr3(PerVcpu& s, const kvm_sregs& sregs) {
    if (s.armed && sregs.cr3 != s.armed_cr3 && (s.page_slots || s.exec_slots)) {
      s.dirty.store(true, std::memory_order_release);
    }
  }

  std::optional<ExitAction> handle_debug_exit(PerVcpu& s, kvm_run& run) {
    s.counters.debug_exits.fetch_add(1, std::memory_order_relaxed);
    const auto& arch = run.debug.arch;
    if (arch.exception == x86::kVectorBp) {
      // USE_SW_BP: a planted INT3 (like the emulation failure), or the guest's own.
      const kvm_regs regs = regs_of(s);
      const kvm_sregs sregs = sregs_of(s);
      bool planted = false;
      {
        std::lock_guard lock(mutex);
        const auto gpa = linear_to_gpa(sregs, sregs.cs.base + regs.rip);
        planted = gpa && sites.find(*gpa) && !sites.find(*gpa)->lifted;
      }
      if (!planted) {
        deliver_software_interrupt(cpu(s), machine.memory());
        return ExitAction::kResume;
      }
      s.counters.trap_exits.fetch_add(1, std::memory_order_relaxed);
      return boundary(s);
    }
    if (arch.dr6 & bp::dr6::kBd) return boundary(s);  // MOV DR under DR7.GD
    const std::uint64_t hw_hits = arch.dr6 & bp::dr6::kTrapBits & ~std::uint64_t{s.hw_suppressed};
    if (hw_hits) {
      // Hardware slots: map DR numbers to effective slots; instruction ones are fault-like.
      std::uint64_t data_hit = 0;
      bool exec_hit = false;
      {
        std::lock_guard lock(mutex);
        for (unsigned slot = 0; slot < bp::kMaxSlots; ++slot) {
          const SlotArm& arm = s.slots[slot];
          if (arm.engine != Engine::kHardware || !(hw_hits & (1u << arm.hw))) continue;
          if (s.exec_slots & (std::uint64_t{1} << slot)) {
            exec_hit = true;
          } else {
            data_hit |= std::uint64_t{1} << slot;
          }
        }
        s.access_slots |= data_hit;
      }
      if (data_hit) {
        const ExitAction action = finish_completion(s);
        if (action == ExitAction::kPause || !exec_hit) return action;
      }
      if (exec_hit) return boundary(s);
    }
    if ((arch.dr6 & bp::dr6::kBs) && stepping(s)) return handle_step_exit(s);
    return reflect_guest_debug_exception(s, arch);
  }

  // The guest's own #DB, which KVM hands to userspace instead of delivering it while drvm uses
  // KVM_GUESTDBG_USE_HW_BP or SINGLESTEP (VMX and SVM intercept every #DB then): its TF
  // single-step (DR6.BS, RIP past the instruction) or ICEBP/INT1 (no status bit; VMX exits with
  // RIP still at the 0xF1 byte, as the instruction is intercepted rather than executed).
  ExitAction reflect_guest_debug_exception(PerVcpu& s, const kvm_debug_exit_arch& arch) {
    Notifications n;
    kvm_regs regs = regs_of(s);
    const kvm_sregs sregs = sregs_of(s);
    {
      std::lock_guard lock(mutex);
      if (arch.dr6 & bp::dr6::kBs) {
        guest_single_step_trap(s, n, regs.rip);
      } else {
        std::array<std::uint8_t, 1> byte{};
        const auto gpa = linear_to_gpa(sregs, sregs.cs.base + regs.rip);
        if (arch.pc == sregs.cs.base + regs.rip && gpa && read_physical(*gpa, byte) == 1 &&
            byte[0] == x86::kIcebp) {
          regs.rip += 1;  // a trap: the #DB reports the next instruction
          set_regs_of(s, regs);
        }
        // ICEBP sets no status bit; like every #DB it clears B0-B3 and DR7.GD.
        inject(s, x86::kVectorDb, std::nullopt, manager.guest(s.index).deliver_db(0));
      }
    }
    if (notify(n)) return stop_vcpu(s, n.stop_info);
    return ExitAction::kResume;
  }
};

// ---------------------------------------------------------------------------------------------

ProbeSource probe_on_demand(const System& system) {
  return [&system]() -> const ProbeResult& { return probe_once(system); };
}

DebugController::DebugController(Machine& machine, ProbeSource probe, const DebugOptions& options,
                                 const BootImage* image)
    : state_(std::make_unique<State>(machine, std::move(probe), options)) {
  State& st = *state_;
  for (std::size_t i = 0; i < machine.vcpu_count(); ++i) {
    auto s = std::make_unique<PerVcpu>();
    s->runner = &machine.vcpu(i);
    s->index = static_cast<unsigned>(i);
    s->loaded = s->runner->vcpu().debugregs();
    st.vcpus.push_back(std::move(s));
  }
  // DR6's active-low bits are writable where the guest's CPUID has RTM or bus-lock detection.
  for (const kvm_cpuid_entry2& entry : machine.system().supported_cpuid()) {
    if (entry.function != 7 || entry.index != 0) continue;
    for (std::size_t i = 0; i < machine.vcpu_count(); ++i) {
      st.manager.guest(static_cast<unsigned>(i))
          .set_cpu_features((entry.ebx >> 11) & 1, (entry.ecx >> 24) & 1);
    }
  }
  const int sync = machine.system().check_extension(KVM_CAP_SYNC_REGS);
  st.sync_sregs = (sync & KVM_SYNC_X86_SREGS) != 0;
  st.sync_regs = (sync & KVM_SYNC_X86_REGS) != 0;
  st.block_irq =
      (machine.system().check_extension(KVM_CAP_SET_GUEST_DEBUG2) & KVM_GUESTDBG_BLOCKIRQ) != 0;
  if (!options.exact && image != nullptr) {
    // The image's MOV DR sites are planted without waiting for the probe: where the host traps
    // MOV DR itself (DR7.GD) they are redundant but harmless, and guestfw images carry some in
    // code most guests never run (the fault register dump).
    st.image_code = scan_image_code(*image);
    st.mov_dr_sites = std::move(st.image_code.mov_dr_sites);
  } else if (!options.exact) {
    // Without an image the host's DR7.GD trap is the only way to see the guest's MOV DR.
    std::lock_guard lock(st.mutex);
    st.answers();
  }
  machine.add_interceptor(*this, ChainPosition::kLast);
}

DebugController::~DebugController() {
  state_->machine.remove_interceptor(*this);
}

bp::Result<bp::EventId> DebugController::create_event(const bp::EventSpec& spec) {
  if (spec.binding.target == bp::kGuestTarget) return bp::Error::kBadVcpu;
  std::lock_guard lock(state_->mutex);
  auto result = state_->manager.create(spec);
  if (!result) return result;
  // The engines need the probe's answers to arm it: find them here rather than on a vCPU thread.
  if (!state_->options.exact) state_->answers();
  state_->mark_all_dirty();
  return result;
}

bp::Result<void> DebugController::destroy_event(bp::EventId id) {
  std::lock_guard lock(state_->mutex);
  const bp::EventSpec* spec = state_->manager.spec(id);
  if (spec && spec->binding.target == bp::kGuestTarget) return bp::Error::kUnknownEvent;
  auto result = state_->manager.destroy(id);
  if (result) state_->mark_all_dirty();
  return result;
}

bp::Result<void> DebugController::enable_event(bp::EventId id) {
  std::lock_guard lock(state_->mutex);
  auto result = state_->manager.enable(id);
  if (result) state_->mark_all_dirty();
  return result;
}

bp::Result<void> DebugController::disable_event(bp::EventId id) {
  std::lock_guard lock(state_->mutex);
  auto result = state_->manager.disable(id);
  if (result) state_->mark_all_dirty();
  return result;
}

bp::Result<void> DebugController::modify_event(bp::EventId id, const bp::BpAttr& attr) {
  std::lock_guard lock(state_->mutex);
  auto result = state_->manager.modify(id, attr);
  if (result) state_->mark_all_dirty();
  return result;
}

bp::Result<bp::EventReading> DebugController::read_event(bp::EventId id) {
  std::lock_guard lock(state_->mutex);
  return state_->manager.read(id);
}

bp::Result<bp::EventState> DebugController::event_state(bp::EventId id) {
  std::lock_guard lock(state_->mutex);
  return state_->manager.placed_state(id);
}

Engine DebugController::engine_of(unsigned vcpu, bp::EventId id) {
  std::lock_guard lock(state_->mutex);
  if (vcpu >= state_->vcpus.size()) return Engine::kNone;
  const PerVcpu& s = *state_->vcpus[vcpu];
  const bp::EffectiveSet& eff = state_->manager.effective(vcpu);
  for (std::uint64_t m = eff.used_mask; m; m &= m - 1) {
    const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
    if (eff.slot_event[slot] == id) {
      return s.armed_generation == eff.generation ? s.slots[slot].engine : Engine::kNone;
    }
  }
  return Engine::kNone;
}

std::vector<SlotInfo> DebugController::slots(unsigned vcpu) {
  std::lock_guard lock(state_->mutex);
  std::vector<SlotInfo> out;
  if (vcpu >= state_->vcpus.size()) return out;
  const PerVcpu& s = *state_->vcpus[vcpu];
  const bp::EffectiveSet& eff = state_->manager.effective(vcpu);
  const bp::GuestDrFile& guest = state_->manager.guest(vcpu);
  for (std::uint64_t m = eff.used_mask; m; m &= m - 1) {
    const unsigned slot = static_cast<unsigned>(std::countr_zero(m));
    SlotInfo info;
    info.slot = slot;
    info.event = eff.slot_event[slot];
    info.attr = eff.slot_attr[slot];
    // Not armed since the scheduler last moved things: pending, whatever the slot held before.
    info.engine = s.armed_generation == eff.generation ? s.slots[slot].engine : Engine::kNone;
    if (const bp::EventSpec* spec = state_->manager.spec(info.event)) {
      info.owner = spec->binding.target;
    }
    for (unsigned dr = 0; dr < bp::kX86HardwareSlots; ++dr) {
      if (guest.event(dr) == info.event) info.guest_dr = dr;
    }
    if (auto state = state_->manager.state(info.event)) info.state = state.value();
    out.push_back(info);
  }
  return out;
}

void DebugController::set_hit_callback(bp::TargetId owner, HitCallback callback) {
  std::lock_guard lock(state_->mutex);
  if (callback) {
    state_->hit_callbacks[owner] = std::move(callback);
  } else {
    state_->hit_callbacks.erase(owner);
  }
}

void DebugController::set_stop_callback(StopCallback callback) {
  std::lock_guard lock(state_->mutex);
  state_->stop_callback = std::move(callback);
}

void DebugController::resume(unsigned vcpu) {
  PerVcpu& s = *state_->vcpus.at(vcpu);
  if (s.thread.load() == std::this_thread::get_id()) {
    // From a stop callback on the vCPU's own thread: do not park at all.
    std::lock_guard lock(state_->mutex);
    s.cancel_stop = true;
    return;
  }
  // A stop returns kPause after its callback: wait until the vCPU is really parked, so this
  // resume cannot be lost. The debugger may have changed RIP: --exact decodes again.
  s.runner->pause();
  {
    std::lock_guard lock(state_->mutex);
    if (!s.debugger_step) s.prime = true;
  }
  s.runner->resume();
}

void DebugController::single_step(unsigned vcpu) {
  State& st = *state_;
  PerVcpu& s = *st.vcpus.at(vcpu);
  const bool own_thread = s.thread.load() == std::this_thread::get_id();
  if (!own_thread) s.runner->pause();
  {
    std::lock_guard lock(st.mutex);
    const kvm_regs regs = s.runner->vcpu().regs();
    const kvm_sregs sregs = s.runner->vcpu().sregs();
    s.debugger_step = true;
    s.prime = false;
    // The instruction at RIP runs even when a breakpoint is there.
    s.skip_exec_at = sregs.cs.base + regs.rip;
    st.begin_step(s, regs, sregs);
    if (own_thread) s.cancel_stop = true;
  }
  if (!own_thread) s.runner->resume();
}

bp::GuestDebugRegs DebugController::guest_debug_regs(unsigned vcpu) {
  std::lock_guard lock(state_->mutex);
  return state_->manager.guest(vcpu).values();
}

std::optional<bp::Error> DebugController::set_guest_debug_regs(unsigned vcpu,
                                                               const bp::GuestDebugRegs& regs) {
  std::lock_guard lock(state_->mutex);
  auto error = state_->manager.guest(vcpu).load(regs);
  state_->mark_all_dirty();
  return error;
}

std::size_t DebugController::read_original(unsigned vcpu, std::uint64_t linear,
                                           std::span<std::uint8_t> out) {
  const kvm_sregs sregs = state_->machine.vcpu(vcpu).vcpu().sregs();
  const PagingState paging = PagingState::from(sregs);
  std::lock_guard lock(state_->mutex);
  std::size_t done = 0;
  while (done < out.size()) {
    const std::uint64_t address = linear + done;
    const Translation t = translate(state_->machine.memory(), paging, address);
    if (!t.ok()) break;
    const std::size_t chunk = std::min<std::size_t>(out.size() - done, 4096 - (address & 4095));
    if (state_->read_physical(t.gpa, out.subspan(done, chunk)) != chunk) break;
    done += chunk;
  }
  return done;
}

std::size_t DebugController::read_original_physical(std::uint64_t gpa,
                                                    std::span<std::uint8_t> out) {
  std::lock_guard lock(state_->mutex);
  return state_->read_physical(gpa, out);
}

std::size_t DebugController::write_memory(unsigned vcpu, std::uint64_t linear,
                                          std::span<const std::uint8_t> in) {
  const kvm_sregs sregs = state_->machine.vcpu(vcpu).vcpu().sregs();
  const PagingState paging = PagingState::from(sregs);
  std::lock_guard lock(state_->mutex);
  std::size_t done = 0;
  for (; done < in.size(); ++done) {
    const Translation t = translate(state_->machine.memory(), paging, linear + done);
    if (!t.ok()) break;
    if (state_->sites.write_original(t.gpa, in[done])) continue;
    const std::byte byte{in[done]};
    if (!state_->machine.memory().write(t.gpa, std::span(&byte, 1))) break;
  }
  return done;
}

DebugCounters DebugController::counters(unsigned vcpu) {
  const Counters& c = state_->vcpus.at(vcpu)->counters;
  DebugCounters out;
  out.debug_exits = c.debug_exits.load();
  out.single_steps = c.single_steps.load();
  out.protected_accesses = c.protected_accesses.load();
  out.trap_exits = c.trap_exits.load();
  out.dr_emulations = c.dr_emulations.load();
  out.host_hits = c.host_hits.load();
  out.guest_debug_exceptions = c.guest_debug_exceptions.load();
  out.untrapped_dr_changes = c.untrapped_dr_changes.load();
  out.rearms = c.rearms.load();
  return out;
}

const ProbeResult& DebugController::probe() const {
  std::lock_guard lock(state_->mutex);
  return state_->answers();
}

const DebugOptions& DebugController::options() const {
  return state_->options;
}

void DebugController::before_run(VcpuRunner& runner) {
  State& st = *state_;
  PerVcpu& s = st.at(runner);
  if (s.thread.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
    s.thread.store(std::this_thread::get_id());
  }
  kvm_run& run = runner.vcpu().run_area();
  run.kvm_valid_regs =
      (st.sync_sregs ? KVM_SYNC_X86_SREGS : 0) | (st.sync_regs ? KVM_SYNC_X86_REGS : 0);
  // Whoever held the vCPU since the last exit (default exit handling, a debugger) may have
  // changed its registers: read them again after the next exit.
  s.regs_cached = s.sregs_cached = false;
  if (!st.sites_planted.load(std::memory_order_acquire)) st.plant_mov_dr_sites();
  if (s.mmio_pending && !s.completing && s.dirty.load(std::memory_order_acquire)) {
    // A re-arm is due while KVM still owes the rest of the instruction that made the access:
    // let it finish first, so that no access of that instruction escapes the engines.
    s.completing = true;
    s.completion_entered = false;
  }
  if (s.completing && !s.completion_entered) {
    // KVM completes the access and returns EINTR (on_interrupted()). Also during a step: after
    // a write to a protected page KVM forgets the step it owes.
    s.completion_entered = true;
    run.immediate_exit = 1;
    return;
  }
  if (s.dirty.load(std::memory_order_acquire)) {
    std::lock_guard lock(st.mutex);
    st.rearm(s, false);
  }
  if (s.exact && s.prime) {
    run.immediate_exit = 1;  // decode the instruction at RIP first: on_interrupted()
    return;
  }
  st.apply_guest_debug(s);
  if (s.restore_tf && !State::kvm_steps(s)) {
    // Left the single-step engine: the guest's TF is in RFLAGS again.
    s.restore_tf = false;
    s.tf_after = false;
    kvm_regs regs = st.regs_of(s);
    regs.rflags |= x86::kRflagsTf;
    st.set_regs_of(s, regs);
  }
}

void DebugController::on_reset(VcpuRunner& runner) {
  // INIT reset the vCPU inside KVM (an AP being started): KVM_SET_GUEST_DEBUG's breakpoints are
  // gone from the VMCB on SVM and the cached registers are stale. Apply and arm everything again.
  State& st = *state_;
  PerVcpu& s = st.at(runner);
  s.regs_cached = s.sregs_cached = false;
  s.debug_applied = false;
  s.dirty.store(true, std::memory_order_release);
}

ExitAction DebugController::on_interrupted(VcpuRunner& runner) {
  State& st = *state_;
  PerVcpu& s = st.at(runner);
  st.registers_synced(s, runner.vcpu().run_area());
  s.mmio_pending = false;
  if (s.completing && s.completion_entered) {
    return st.stepping(s) ? st.handle_step_exit(s) : st.finish_completion(s);
  }
  if (s.exact && s.prime) {
    s.prime = false;
    return st.boundary(s);
  }
  return ExitAction::kResume;
}

std::optional<ExitAction> DebugController::on_exit(VcpuRunner& runner, const VmExit& exit) {
  kvm_run& run = exit.run;
  State& st = *state_;
  PerVcpu& s = st.at(runner);
  st.registers_synced(s, run);
  s.mmio_pending = exit.kind == ExitKind::kMmio;
  // A CR3 switch moves linear watches and breakpoints: re-translate before the next entry.
  if (st.sync_sregs && s.armed && run.s.regs.sregs.cr3 != s.armed_cr3 &&
      (s.page_slots | s.exec_slots)) {
    s.dirty.store(true, std::memory_order_release);
  }
  // The stack next to a protected page: an exception frame KVM pushes there would be lost, so the
  // vCPU re-arms, and steps, from its next entry (layout_needs_stepping). Looked at every exit
  // when the registers come with it (KVM_CAP_SYNC_REGS), else at protected accesses (MMIO).
  if (s.page_slots && !s.exact && !s.layout_changed &&
      ((st.sync_regs && st.sync_sregs) || exit.kind == ExitKind::kMmio)) {
    std::lock_guard lock(st.mutex);
    if (st.frame_on_guarded_page(st.sregs_of(s), st.regs_of(s))) State::recheck_layout(s);
  }
  switch (exit.kind) {
    case ExitKind::kMmio:
      return st.handle_mmio(s, run);
    case ExitKind::kDebug:
      return st.handle_debug_exit(s, run);
    case ExitKind::kInternalError:
      if (run.internal.suberror != KVM_INTERNAL_ERROR_EMULATION) return std::nullopt;
      return st.handle_emulation_failure(s);
    case ExitKind::kIo:
    case ExitKind::kHlt:
      if (!s.exact) st.check_untrapped_locked(s);
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace drvm::vmm::debug

#include "vmm/replay/exit_log.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace drvm::vmm::replay {
namespace {

constexpr char kMagic[8] = {'d', 'r', 'v', 'm', 'e', 'x', 'i', '2'};

template <typename T>
void put(std::ostream& out, const T& value) {
  out.write(reinterpret_cast<const char*>(&value), sizeof value);
}

template <typename T>
T get(std::istream& in) {
  T value{};
  if (!in.read(reinterpret_cast<char*>(&value), sizeof value)) {
    throw std::runtime_error("the exit log ends early (a truncated recording)");
  }
  return value;
}

}  // namespace

ExitLog::ExitLog(Machine& machine)
    : machine_(machine),
      sync_regs_((machine.system().check_extension(KVM_CAP_SYNC_REGS) & KVM_SYNC_X86_REGS) != 0) {
  machine_.add_interceptor(*this, ChainPosition::kFirst);
}

ExitLog::~ExitLog() {
  machine_.remove_interceptor(*this);
}

void ExitLog::set_problem_handler(std::function<void(bool, const std::string&)> handler) {
  on_problem_ = std::move(handler);
}

void ExitLog::set_live_problem_handler(std::function<void(const std::string&)> handler) {
  on_live_problem_ = std::move(handler);
}

void ExitLog::replay_from(std::uint64_t position) {
  pending_read_.reset();
  replaying_ = true;
  position_.store(std::min<std::uint64_t>(position, records_.size()), std::memory_order_release);
}

void ExitLog::record() {
  replaying_ = false;
}

std::size_t ExitLog::bytes() const {
  return records_.capacity() * sizeof(Record) + data_.capacity();
}

void ExitLog::write(std::ostream& out) const {
  out.write(kMagic, sizeof kMagic);
  put<std::uint64_t>(out, records_.size());
  put<std::uint64_t>(out, data_.size());
  for (const Record& r : records_) {
    put(out, r.address);
    put(out, r.rip);
    put(out, r.data_offset);
    put(out, r.count);
    put(out, r.size);
    put<std::uint8_t>(out, static_cast<std::uint8_t>((r.mmio ? 1 : 0) | (r.write ? 2 : 0)));
  }
  out.write(reinterpret_cast<const char*>(data_.data()),
            static_cast<std::streamsize>(data_.size()));
}

void ExitLog::read(std::istream& in) {
  char magic[sizeof kMagic] = {};
  if (!in.read(magic, sizeof magic) || std::memcmp(magic, kMagic, sizeof kMagic) != 0) {
    throw std::runtime_error("no exit log where the recording should have one");
  }
  const auto count = get<std::uint64_t>(in);
  const auto data_size = get<std::uint64_t>(in);
  constexpr std::uint64_t kLimit = std::uint64_t{1} << 32;
  if (count > kLimit || data_size > kLimit) throw std::runtime_error("the exit log is too large");
  std::vector<Record> records;
  records.reserve(static_cast<std::size_t>(count));
  for (std::uint64_t i = 0; i < count; ++i) {
    Record r;
    r.address = get<std::uint64_t>(in);
    r.rip = get<std::uint64_t>(in);
    r.data_offset = get<std::uint64_t>(in);
    r.count = get<std::uint32_t>(in);
    r.size = get<std::uint8_t>(in);
    const auto flags = get<std::uint8_t>(in);
    r.mmio = (flags & 1) != 0;
    r.write = (flags & 2) != 0;
    if (r.data_offset > data_size || std::uint64_t{r.size} * r.count > data_size - r.data_offset) {
      throw std::runtime_error(fmt::format("exit {} of the log points past its data", i));
    }
    records.push_back(r);
  }
  std::vector<std::uint8_t> data(static_cast<std::size_t>(data_size));
  if (!in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size()))) {
    throw std::runtime_error("the exit log ends early (a truncated recording)");
  }
  records_ = std::move(records);
  data_ = std::move(data);
  position_.store(0, std::memory_order_release);
}

std::optional<ExitAction> ExitLog::on_exit(VcpuRunner& vcpu, const VmExit& exit) {
  if (vcpu.index() != 0) return std::nullopt;
  Record got;
  std::span<std::uint8_t> bytes;
  if (exit.kind == ExitKind::kIo) {
    got.address = exit.io.port;
    got.size = exit.io.size;
    got.count = exit.io.count;
    got.write = exit.io.write;
    bytes = std::span(exit.io.data, std::size_t{exit.io.size} * exit.io.count);
  } else if (exit.kind == ExitKind::kMmio) {
    // Guest RAM behind a protected page is the debug engines' business, not a device.
    if (machine_.memory().contains(exit.mmio.address, exit.mmio.size)) return std::nullopt;
    got.address = exit.mmio.address;
    got.size = static_cast<std::uint8_t>(exit.mmio.size);
    got.mmio = true;
    got.write = exit.mmio.write;
    bytes = std::span(exit.mmio.data, exit.mmio.size);
  } else {
    return std::nullopt;
  }
  got.rip = (exit.run.kvm_valid_regs & KVM_SYNC_X86_REGS) != 0 ? exit.run.s.regs.regs.rip
                                                               : vcpu.vcpu().regs().rip;
  if (replaying_) {
    // A quiet replay: the devices never see a replayed exit.
    if (const auto problem = follow(got, bytes)) {
      if (on_problem_) on_problem_(landmarks() >= records_.size(), *problem);
      return ExitAction::kPause;
    }
    return ExitAction::kResume;
  }
  if (landmarks() < records_.size()) {
    // The live run follows the log (a recording, or the present after a quiet replay): reads
    // come from it, writes reach the devices too.
    if (const auto problem = follow(got, bytes)) {
      if (on_live_problem_) on_live_problem_(*problem);
      return ExitAction::kPause;
    }
    if (got.write) return std::nullopt;
    return ExitAction::kResume;
  }
  if (exhausted()) return std::nullopt;  // given up: the devices handle it, nothing is kept
  if (limit_ != 0 && (records_.size() & 1023) == 0 && this->bytes() > limit_) {
    exhausted_.store(true, std::memory_order_release);
    return std::nullopt;
  }
  got.data_offset = data_.size();
  if (got.write) {
    data_.insert(data_.end(), bytes.begin(), bytes.end());
  } else {
    data_.resize(data_.size() + bytes.size());  // filled in before the next entry
    pending_read_ = records_.size();
    pending_bytes_ = bytes;
  }
  records_.push_back(got);
  position_.store(records_.size(), std::memory_order_release);
  return std::nullopt;  // the device handles it
}

std::optional<std::string> ExitLog::follow(const Record& got, std::span<std::uint8_t> bytes) {
  const std::uint64_t at = landmarks();
  if (at >= records_.size()) {
    return fmt::format("the replay reached the end of the {} recorded exits", at);
  }
  const Record& want = records_[at];
  const auto what = [](const Record& r, std::span<const std::uint8_t> data) {
    std::string text = fmt::format("{} {} {:#x} size {} at rip {:#x}", r.mmio ? "mmio" : "port",
                                   r.write ? "write" : "read", r.address, r.size, r.rip);
    if (r.write) {
      text += fmt::format(" of {:02x}",
                          fmt::join(data.first(std::min<std::size_t>(data.size(), 8)), ""));
    }
    return text;
  };
  const std::span<const std::uint8_t> recorded(
      data_.data() + want.data_offset,
      std::min<std::size_t>(data_.size() - want.data_offset, std::size_t{want.size} * want.count));
  bool same = got.address == want.address && got.size == want.size && got.count == want.count &&
              got.mmio == want.mmio && got.write == want.write && got.rip == want.rip;
  if (same && got.write) same = std::equal(bytes.begin(), bytes.end(), recorded.begin());
  if (!same) {
    return fmt::format("exit {} was {}, the recording has {}", at, what(got, bytes),
                       what(want, recorded));
  }
  if (!got.write) std::memcpy(bytes.data(), recorded.data(), bytes.size());
  position_.store(at + 1, std::memory_order_release);
  return std::nullopt;
}

void ExitLog::before_run(VcpuRunner& vcpu) {
  if (vcpu.index() != 0) return;
  if (sync_regs_) vcpu.vcpu().run_area().kvm_valid_regs |= KVM_SYNC_X86_REGS;
  if (!pending_read_) return;
  const Record& read = records_[*pending_read_];
  std::memcpy(data_.data() + read.data_offset, pending_bytes_.data(), pending_bytes_.size());
  pending_read_.reset();
}

}  // namespace drvm::vmm::replay

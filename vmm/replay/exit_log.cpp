#include "vmm/replay/exit_log.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>

namespace drvm::vmm::replay {

ExitLog::ExitLog(Machine& machine) : machine_(machine) {
  machine_.add_interceptor(*this, ChainPosition::kFirst);
}

ExitLog::~ExitLog() {
  machine_.remove_interceptor(*this);
}

void ExitLog::set_problem_handler(std::function<void(bool, const std::string&)> handler) {
  on_problem_ = std::move(handler);
}

void ExitLog::replay_from(std::uint64_t position) {
  pending_read_.reset();
  replaying_ = true;
  position_.store(std::min<std::uint64_t>(position, records_.size()), std::memory_order_release);
}

void ExitLog::record() {
  replaying_ = false;
  // Anything after the position was recorded by a run that has been replaced.
  const std::uint64_t at = landmarks();
  if (at < records_.size()) {
    data_.resize(records_[at].data_offset);
    records_.resize(at);
  }
}

std::size_t ExitLog::bytes() const {
  return records_.capacity() * sizeof(Record) + data_.capacity();
}

ExitAction ExitLog::fail(bool end_of_log, const std::string& why) {
  if (on_problem_) on_problem_(end_of_log, why);
  return ExitAction::kPause;
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
  got.rip = vcpu.vcpu().regs().rip;
  if (replaying_) return replay(vcpu, got, bytes);
  got.data_offset = static_cast<std::uint32_t>(data_.size());
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

std::optional<ExitAction> ExitLog::replay(VcpuRunner& /*vcpu*/, const Record& got,
                                          std::span<std::uint8_t> bytes) {
  const std::uint64_t at = landmarks();
  if (at >= records_.size()) {
    return fail(true, fmt::format("the replay reached the end of the {} recorded exits", at));
  }
  const Record& want = records_[at];
  const auto what = [](const Record& r, std::span<const std::uint8_t> data) {
    std::string text = fmt::format("{} {} {:#x} size {} at rip {:#x}", r.mmio ? "mmio" : "port",
                                   r.write ? "write" : "read", r.address, r.size, r.rip);
    if (r.write)
      text += fmt::format(" of {:02x}",
                          fmt::join(data.first(std::min<std::size_t>(data.size(), 8)), ""));
    return text;
  };
  bool same = got.address == want.address && got.size == want.size && got.count == want.count &&
              got.mmio == want.mmio && got.write == want.write && got.rip == want.rip;
  if (same && got.write) {
    same = std::equal(bytes.begin(), bytes.end(), data_.begin() + want.data_offset);
  }
  if (!same) {
    const std::span<const std::uint8_t> recorded(
        data_.data() + want.data_offset,
        std::min<std::size_t>(data_.size() - want.data_offset,
                              std::size_t{want.size} * want.count));
    return fail(false, fmt::format("exit {} was {}, the recording has {}", at, what(got, bytes),
                                   what(want, recorded)));
  }
  if (!got.write) {
    std::memcpy(bytes.data(), data_.data() + want.data_offset, bytes.size());
  }
  position_.store(at + 1, std::memory_order_release);
  return ExitAction::kResume;  // claimed: the devices never see a replayed exit
}

void ExitLog::before_run(VcpuRunner& vcpu) {
  if (vcpu.index() != 0 || !pending_read_) return;
  const Record& read = records_[*pending_read_];
  std::memcpy(data_.data() + read.data_offset, pending_bytes_.data(), pending_bytes_.size());
  pending_read_.reset();
}

}  // namespace drvm::vmm::replay

#include "gdbstub/command_handler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "gdbstub/hex.hpp"
#include "gdbstub/packet.hpp"
#include "gdbstub/target_description.hpp"

namespace drvm::gdbstub {
namespace {

// errno-style codes for the "Enn" replies the stub produces itself.
constexpr int kErrNoSuchThread = 0x03;  // ESRCH
constexpr int kErrTooBig = 0x07;        // E2BIG
constexpr int kErrFault = 0x0e;         // EFAULT
constexpr int kErrInvalid = 0x16;       // EINVAL

// Room for the frame ("$", "#cs") and a reply's leading letter.
constexpr std::size_t kReplyOverhead = 8;
constexpr int kThreadsPerListReply = 64;

std::string error_reply(int code) {
  return fmt::format("E{:02x}", code & 0xff);
}

CommandOutcome reply(std::string payload) {
  CommandOutcome outcome;
  outcome.replies.push_back(std::move(payload));
  return outcome;
}

CommandOutcome error(int code) {
  return reply(error_reply(code));
}

CommandOutcome unsupported() {
  return reply("");
}

std::pair<std::string_view, std::string_view> split_once(std::string_view text, char separator) {
  const auto at = text.find(separator);
  if (at == std::string_view::npos) return {text, {}};
  return {text.substr(0, at), text.substr(at + 1)};
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// "ADDR,LENGTH" as used by m, M, X and Z.
std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_address_length(std::string_view text) {
  const auto [address_text, length_text] = split_once(text, ',');
  const auto address = parse_hex_number(address_text);
  const auto length = parse_hex_number(length_text);
  if (!address || !length) return std::nullopt;
  return std::pair{*address, *length};
}

// A thread-id: "-1" (all), "0" (any), "TID" or "pPID.TID" (multiprocess form); values 0..N.
std::optional<ThreadId> parse_thread_id(std::string_view text) {
  if (starts_with(text, "p")) {
    const auto dot = text.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    text = text.substr(dot + 1);
  }
  if (text == "-1") return -1;
  const auto value = parse_hex_number(text);
  if (!value || *value > 0x7fffffff) return std::nullopt;
  return static_cast<ThreadId>(*value);
}

}  // namespace

CommandHandler::CommandHandler(DebugTarget& target, std::size_t max_packet_size, Logger log)
    : target_(target), max_packet_size_(max_packet_size), log_(std::move(log)) {}

CommandOutcome CommandHandler::handle(std::string_view payload, const StopEvent& last_stop) {
  last_stop_ = last_stop;
  if (payload.empty()) return unsupported();
  const std::string_view args = payload.substr(1);
  switch (payload[0]) {
    case '?': {
      stop_reported();
      // replaylog marks the event of running out of history; `?` (asked on connecting) states
      // where the target is, so a new gdb does not report that event again.
      StopEvent current = last_stop_;
      current.history_start = false;
      return reply(format_stop_reply(current, features_));
    }
    case 'q':
    case 'Q':
      return query(payload);
    case 'v':
      if (payload == "vCont?") return reply("vCont;c;C;s;S");
      if (starts_with(payload, "vCont;")) return vcont(payload.substr(5));
      return unsupported();
    case 'H':
      return set_thread(args);
    case 'T':
      return thread_alive(args);
    case 'g':
      return read_registers();
    case 'G':
      return write_registers(args);
    case 'p':
      return read_register(args);
    case 'P':
      return write_register(args);
    case 'm':
      return read_memory(args);
    case 'M':
      return write_memory_hex(args);
    case 'X':
      return write_memory_binary(args);
    case 'Z':
      return breakpoint(args, true);
    case 'z':
      return breakpoint(args, false);
    case 'c':
      return legacy_resume(args, false, false);
    case 's':
      return legacy_resume(args, true, false);
    case 'C':
      return legacy_resume(args, false, true);
    case 'S':
      return legacy_resume(args, true, true);
    case 'b':
      // bc and bs take no arguments; any other b packet is unknown.
      if (payload == "bc") return reverse(ThreadAction::kContinue);
      if (payload == "bs") return reverse(ThreadAction::kStep);
      return unsupported();
    case 'D': {
      target_.detach();
      CommandOutcome outcome = reply("OK");
      outcome.next = CommandOutcome::Next::kDetach;
      return outcome;
    }
    case 'k': {
      target_.kill();
      CommandOutcome outcome;
      outcome.next = CommandOutcome::Next::kKill;
      return outcome;
    }
    default:
      return unsupported();
  }
}

CommandOutcome CommandHandler::query(std::string_view payload) {
  if (starts_with(payload, "qSupported")) return query_supported(payload);
  if (payload == "QStartNoAckMode") {
    CommandOutcome outcome = reply("OK");
    outcome.start_no_ack_mode = true;
    return outcome;
  }
  if (starts_with(payload, "qXfer:features:read:")) {
    return read_features(payload.substr(std::string_view("qXfer:features:read:").size()));
  }
  if (starts_with(payload, "qRcmd,")) return monitor(payload.substr(6));
  if (payload == "qC") return reply(fmt::format("QC{:x}", last_stop_.thread));
  if (payload == "qfThreadInfo") return thread_list(true);
  if (payload == "qsThreadInfo") return thread_list(false);
  if (payload == "qAttached" || starts_with(payload, "qAttached:")) return reply("1");
  if (starts_with(payload, "qThreadExtraInfo,")) {
    const auto thread = parse_thread_id(payload.substr(17));
    if (!thread || !valid_thread(*thread)) return error(kErrNoSuchThread);
    return reply(encode_hex_text(fmt::format("vCPU {}", *thread - 1)));
  }
  return unsupported();
}

CommandOutcome CommandHandler::query_supported(std::string_view payload) {
  // gdb lists its own features after ':'; only those it announces may appear in stop replies.
  std::string_view features = split_once(payload, ':').second;
  features_ = {};
  while (!features.empty()) {
    auto [feature, rest] = split_once(features, ';');
    if (feature == "swbreak+") features_.swbreak = true;
    if (feature == "hwbreak+") features_.hwbreak = true;
    features = rest;
  }
  return reply(fmt::format(
      "PacketSize={:x};qXfer:features:read+;swbreak+;hwbreak+;vContSupported+;QStartNoAckMode+{}",
      max_packet_size_, target_.can_reverse() ? ";ReverseContinue+;ReverseStep+" : ""));
}

CommandOutcome CommandHandler::read_features(std::string_view args) {
  const auto [annex, range] = split_once(args, ':');
  const auto offset_length = parse_address_length(range);
  if (!offset_length) return error(kErrInvalid);
  const auto contents = target_description_annex(annex);
  if (!contents) return reply("E00");
  const auto [offset, length] = *offset_length;
  if (offset > contents->size()) return error(kErrInvalid);
  // Escaping can double each byte, so send at most half a packet of raw data.
  const std::size_t budget = (max_packet_size_ - kReplyOverhead) / 2;
  const std::size_t count = static_cast<std::size_t>(
      std::min<std::uint64_t>({length, budget, contents->size() - offset}));
  const bool last = offset + count >= contents->size();
  std::string out(last ? "l" : "m");
  const auto chunk = contents->substr(static_cast<std::size_t>(offset), count);
  append_escaped_binary(
      out, std::span(reinterpret_cast<const std::uint8_t*>(chunk.data()), chunk.size()));
  return reply(std::move(out));
}

CommandOutcome CommandHandler::monitor(std::string_view hex_command) {
  const auto bytes = decode_hex_bytes(hex_command);
  if (!bytes) return error(kErrInvalid);
  const std::string command(bytes->begin(), bytes->end());
  CommandOutcome outcome;
  append_console_output(outcome, target_.monitor_command(command));
  outcome.replies.push_back("OK");
  return outcome;
}

void CommandHandler::append_console_output(CommandOutcome& outcome, std::string_view text) const {
  // O packets carry hex text: each byte takes two characters.
  const std::size_t chunk = (max_packet_size_ - kReplyOverhead) / 2;
  for (std::size_t at = 0; at < text.size(); at += chunk) {
    outcome.replies.push_back("O" + encode_hex_text(text.substr(at, chunk)));
  }
}

CommandOutcome CommandHandler::thread_list(bool first) {
  if (first) next_thread_in_list_ = 1;
  const int count = target_.thread_count();
  if (next_thread_in_list_ > count) return reply("l");
  std::string out = "m";
  const int end = std::min(count, next_thread_in_list_ + kThreadsPerListReply - 1);
  for (int thread = next_thread_in_list_; thread <= end; ++thread) {
    if (thread != next_thread_in_list_) out.push_back(',');
    out += fmt::format("{:x}", thread);
  }
  next_thread_in_list_ = end + 1;
  return reply(std::move(out));
}

CommandOutcome CommandHandler::set_thread(std::string_view args) {
  if (args.empty()) return error(kErrInvalid);
  const auto thread = parse_thread_id(args.substr(1));
  if (!thread) return error(kErrInvalid);
  if (*thread > 0 && !valid_thread(*thread)) return error(kErrNoSuchThread);
  // -1 (all) and 0 (any) both mean the thread that stopped.
  const ThreadId selection = std::max(*thread, 0);
  if (args[0] == 'g') {
    general_thread_ = selection;
  } else if (args[0] == 'c') {
    continue_thread_ = selection;
  } else {
    return error(kErrInvalid);
  }
  return reply("OK");
}

CommandOutcome CommandHandler::thread_alive(std::string_view args) {
  const auto thread = parse_thread_id(args);
  if (!thread || !valid_thread(*thread)) return error(kErrNoSuchThread);
  return reply("OK");
}

CommandOutcome CommandHandler::read_registers() {
  Registers registers;
  const Status status = target_.read_registers(general_thread(), registers);
  if (!status.ok()) return status_reply(status, "read registers");
  return reply(serialize_registers(registers));
}

CommandOutcome CommandHandler::write_registers(std::string_view hex) {
  // The whole register file or nothing: a short G would leave the registers half written.
  const auto bytes = decode_hex_bytes(hex);
  if (!bytes || bytes->size() != register_file_size()) return error(kErrInvalid);
  Registers registers;
  Status status = target_.read_registers(general_thread(), registers);
  if (!status.ok()) return status_reply(status, "read registers");
  store_register_bytes(registers, 0, *bytes);
  status = target_.write_registers(general_thread(), registers);
  if (!status.ok()) return status_reply(status, "write registers");
  return reply("OK");
}

CommandOutcome CommandHandler::read_register(std::string_view args) {
  const auto number = parse_hex_number(args);
  const auto layout = register_layout();
  if (!number || *number >= layout.size()) return error(kErrInvalid);
  Registers registers;
  const Status status = target_.read_registers(general_thread(), registers);
  if (!status.ok()) return status_reply(status, "read registers");
  const RegisterInfo& info = layout[static_cast<std::size_t>(*number)];
  const auto* base = reinterpret_cast<const std::uint8_t*>(&registers);
  return reply(encode_hex_bytes(std::span(base + info.offset, info.size)));
}

CommandOutcome CommandHandler::write_register(std::string_view args) {
  const auto [number_text, value_text] = split_once(args, '=');
  const auto number = parse_hex_number(number_text);
  const auto layout = register_layout();
  if (!number || *number >= layout.size()) return error(kErrInvalid);
  const auto bytes = decode_hex_bytes(value_text);
  const std::size_t index = static_cast<std::size_t>(*number);
  if (!bytes || bytes->size() != layout[index].size) return error(kErrInvalid);
  std::size_t offset_in_file = 0;
  for (std::size_t i = 0; i < index; ++i) offset_in_file += layout[i].size;
  Registers registers;
  Status status = target_.read_registers(general_thread(), registers);
  if (!status.ok()) return status_reply(status, "read registers");
  store_register_bytes(registers, offset_in_file, *bytes);
  status = target_.write_registers(general_thread(), registers);
  if (!status.ok()) return status_reply(status, "write registers");
  return reply("OK");
}

CommandOutcome CommandHandler::read_memory(std::string_view args) {
  const auto range = parse_address_length(args);
  if (!range) return error(kErrInvalid);
  // gdb accepts a shorter reply, so a huge request is simply clamped to one packet.
  const std::size_t limit = (max_packet_size_ - kReplyOverhead) / 2;
  const std::size_t length =
      static_cast<std::size_t>(std::min<std::uint64_t>(range->second, limit));
  std::vector<std::uint8_t> buffer(length);
  const std::size_t read =
      std::min(length, target_.read_memory(general_thread(), range->first, buffer));
  if (read == 0 && length > 0) return error(kErrFault);
  return reply(encode_hex_bytes(std::span(buffer.data(), read)));
}

CommandOutcome CommandHandler::write_memory_hex(std::string_view args) {
  const auto [range_text, hex] = split_once(args, ':');
  const auto range = parse_address_length(range_text);
  if (!range) return error(kErrInvalid);
  if (range->second != hex.size() / 2) return error(kErrInvalid);
  const auto bytes = decode_hex_bytes(hex);
  if (!bytes) return error(kErrInvalid);
  if (target_.write_memory(general_thread(), range->first, *bytes) < bytes->size()) {
    return error(kErrFault);
  }
  return reply("OK");
}

CommandOutcome CommandHandler::write_memory_binary(std::string_view args) {
  const auto colon = args.find(':');
  if (colon == std::string_view::npos) return error(kErrInvalid);
  const auto range = parse_address_length(args.substr(0, colon));
  const std::string_view data = args.substr(colon + 1);
  if (!range || range->second != data.size()) return error(kErrInvalid);
  if (data.empty()) return reply("OK");
  const std::span bytes(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  if (target_.write_memory(general_thread(), range->first, bytes) < bytes.size()) {
    return error(kErrFault);
  }
  return reply("OK");
}

CommandOutcome CommandHandler::breakpoint(std::string_view args, bool insert) {
  // "TYPE,ADDR,KIND[;condition...]"; gdb sends no conditions since none are announced.
  const auto [type_text, rest] = split_once(split_once(args, ';').first, ',');
  const auto type = parse_hex_number(type_text);
  if (!type || *type > static_cast<std::uint64_t>(BreakpointKind::kAccess)) return unsupported();
  const auto range = parse_address_length(rest);
  if (!range) return error(kErrInvalid);
  const Breakpoint breakpoint{static_cast<BreakpointKind>(*type), range->first, range->second};
  const Status status =
      insert ? target_.insert_breakpoint(breakpoint) : target_.remove_breakpoint(breakpoint);
  return status_reply(status, fmt::format("{} Z{} at {:#x} length {}", insert ? "insert" : "remove",
                                          *type, breakpoint.address, breakpoint.length));
}

CommandOutcome CommandHandler::legacy_resume(std::string_view args, bool step, bool with_signal) {
  // "c[ADDR]", "s[ADDR]", "Csig[;ADDR]", "Ssig[;ADDR]": the signal is ignored (a guest has none).
  std::string_view address_text = args;
  if (with_signal) {
    const auto [signal_text, address_part] = split_once(args, ';');
    if (!parse_hex_number(signal_text)) return error(kErrInvalid);
    address_text = address_part;
  }
  const ThreadId thread = continue_thread();
  if (!valid_thread(thread)) return error(kErrNoSuchThread);
  if (!address_text.empty()) {
    const auto address = parse_hex_number(address_text);
    if (!address) return error(kErrInvalid);
    Registers registers;
    Status status = target_.read_registers(thread, registers);
    if (status.ok()) {
      registers.rip = *address;
      status = target_.write_registers(thread, registers);
    }
    if (!status.ok()) return status_reply(status, "set rip to resume address");
  }
  CommandOutcome outcome;
  outcome.next = CommandOutcome::Next::kResume;
  // A plain step moves only the selected thread; a continue runs them all.
  outcome.resume.actions.assign(static_cast<std::size_t>(target_.thread_count()),
                                step ? ThreadAction::kStayStopped : ThreadAction::kContinue);
  if (step) outcome.resume.actions[static_cast<std::size_t>(thread) - 1] = ThreadAction::kStep;
  return outcome;
}

CommandOutcome CommandHandler::vcont(std::string_view args) {
  // ";ACTION[:TID]" repeated; for each thread the leftmost matching action applies.
  const int count = target_.thread_count();
  std::vector<ThreadAction> actions(static_cast<std::size_t>(std::max(count, 0)),
                                    ThreadAction::kStayStopped);
  std::vector<bool> decided(actions.size(), false);
  while (!args.empty()) {
    if (args[0] != ';') return error(kErrInvalid);
    args.remove_prefix(1);
    auto [item, rest] = split_once(args, ';');
    args = rest.empty() ? std::string_view{} : args.substr(item.size());
    auto [action_text, thread_text] = split_once(item, ':');
    if (action_text.empty()) return error(kErrInvalid);
    ThreadAction action;
    switch (action_text[0]) {
      case 'c':
      case 'C':
        action = ThreadAction::kContinue;
        break;
      case 's':
      case 'S':
        action = ThreadAction::kStep;
        break;
      default:
        return error(kErrInvalid);
    }
    const bool has_signal = action_text[0] == 'C' || action_text[0] == 'S';
    if (has_signal ? !parse_hex_number(action_text.substr(1)) : action_text.size() != 1) {
      return error(kErrInvalid);
    }
    ThreadId target_thread = -1;
    if (!thread_text.empty()) {
      const auto parsed = parse_thread_id(thread_text);
      if (!parsed) return error(kErrInvalid);
      target_thread = *parsed;
      if (target_thread > 0 && !valid_thread(target_thread)) return error(kErrNoSuchThread);
    }
    for (std::size_t i = 0; i < actions.size(); ++i) {
      const bool matches = target_thread <= 0 || static_cast<std::size_t>(target_thread) == i + 1;
      if (matches && !decided[i]) {
        actions[i] = action;
        decided[i] = true;
      }
    }
  }
  if (std::none_of(actions.begin(), actions.end(),
                   [](ThreadAction a) { return a != ThreadAction::kStayStopped; })) {
    return error(kErrInvalid);
  }
  CommandOutcome outcome;
  outcome.next = CommandOutcome::Next::kResume;
  outcome.resume.actions = std::move(actions);
  return outcome;
}

CommandOutcome CommandHandler::reverse(ThreadAction action) {
  const ThreadId thread = continue_thread();
  if (!valid_thread(thread)) return error(kErrNoSuchThread);
  CommandOutcome outcome;
  outcome.next = CommandOutcome::Next::kReverse;
  outcome.reverse_thread = thread;
  outcome.reverse_action = action;
  return outcome;
}

CommandOutcome CommandHandler::reverse_refused(const Status& status, ThreadAction action) {
  const std::string_view what =
      action == ThreadAction::kStep ? "reverse step (bs)" : "reverse continue (bc)";
  log_(fmt::format("{} refused: {}", what, status.message()));
  CommandOutcome outcome;
  std::string text = status.message();
  if (!text.empty() && text.back() != '\n') text.push_back('\n');
  append_console_output(outcome, text);
  outcome.replies.push_back(error_reply(status.code()));
  return outcome;
}

CommandOutcome CommandHandler::status_reply(const Status& status, std::string_view what) {
  if (status.ok()) return reply("OK");
  log_(fmt::format("{} failed: {}", what, status.message()));
  return error(status.code());
}

ThreadId CommandHandler::general_thread() const {
  return general_thread_ > 0 ? general_thread_ : last_stop_.thread;
}

ThreadId CommandHandler::continue_thread() const {
  return continue_thread_ > 0 ? continue_thread_ : last_stop_.thread;
}

bool CommandHandler::valid_thread(ThreadId thread) const {
  return thread >= 1 && thread <= target_.thread_count();
}

}  // namespace drvm::gdbstub

#include "bpcore/event_spec.hpp"

#include <cctype>
#include <charconv>

namespace drvm::bp {
namespace {

void append(std::string& out, std::string_view text) {
  out += text;
}
void append(std::string& out, std::uint64_t number) {
  out += std::to_string(number);
}

// Joins text and numbers into one message (bpcore depends on the standard library only).
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::string out;
  (append(out, parts), ...);
  return out;
}

constexpr std::string_view kGrammar = "mem:ADDR_OR_SYMBOL[+OFF][/LEN][:r|w|rw|x][,OPTION...]";

// Decimal, or hexadecimal with 0x. nullopt for anything else (including overflow).
std::optional<std::uint64_t> parse_number(std::string_view text) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    base = 16;
  }
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

bool is_symbol_char(char ch, bool first) {
  const auto c = static_cast<unsigned char>(ch);
  return std::isalpha(c) || ch == '_' || ch == '.' || ch == '$' || (!first && std::isdigit(c));
}

bool is_symbol(std::string_view text) {
  if (text.empty() || !is_symbol_char(text[0], true)) return false;
  for (const char ch : text.substr(1)) {
    if (!is_symbol_char(ch, false)) return false;
  }
  return true;
}

BpType parse_type(std::string_view text) {
  if (text == "r") return BpType::kRead;
  if (text == "w") return BpType::kWrite;
  if (text == "rw") return BpType::kReadWrite;
  if (text == "x") return BpType::kExecute;
  throw SpecError(
      concat("access type '", text,
             "' is not one of r, w, rw, x; end the spec with :r, :w, :rw or :x (after /LEN)"));
}

std::uint32_t parse_length(std::string_view text) {
  const std::optional<std::uint64_t> value = parse_number(text);
  if (!value || (*value != 1 && *value != 2 && *value != 4 && *value != 8)) {
    throw SpecError(concat("length '", text,
                           "' is not 1, 2, 4 or 8 bytes; watch at most 8 aligned bytes per event "
                           "(/1, /2, /4 or /8) and add more events for a larger object"));
  }
  return static_cast<std::uint32_t>(*value);
}

void parse_location(std::string_view text, EventRequest& request) {
  if (text.empty()) {
    throw SpecError(concat("no address or symbol after 'mem:'; write ", kGrammar));
  }
  if (std::isdigit(static_cast<unsigned char>(text[0]))) {
    const std::optional<std::uint64_t> address = parse_number(text);
    if (!address) {
      throw SpecError(concat("address '", text,
                             "' is not a number; write it in decimal or as 0x-prefixed hex"));
    }
    request.address = *address;
    return;
  }
  if (!is_symbol(text)) {
    throw SpecError(concat("'", text,
                           "' is neither an address nor a symbol name; symbols use letters, "
                           "digits, '_', '.' and '$', addresses are decimal or 0x-prefixed hex"));
  }
  request.symbol = std::string(text);
}

std::uint64_t parse_option_number(std::string_view name, std::string_view value,
                                  std::uint64_t minimum, std::string_view example) {
  const std::optional<std::uint64_t> number = parse_number(value);
  if (!number || *number < minimum) {
    throw SpecError(concat("option ", name, "='", value, "' needs a number of at least ", minimum,
                           "; for example ", example));
  }
  return *number;
}

void parse_option(std::string_view option, EventRequest& request, unsigned& seen) {
  enum : unsigned { kPeriod = 1, kPinned = 2, kExclusive = 4, kVcpu = 8 };
  const std::size_t equals = option.find('=');
  const std::string_view name = option.substr(0, equals);
  const std::string_view value =
      equals == std::string_view::npos ? std::string_view() : option.substr(equals + 1);
  unsigned bit = 0;
  if (name == "period" && equals != std::string_view::npos) {
    bit = kPeriod;
    request.period = parse_option_number(name, value, 1, "period=100");
  } else if (name == "vcpu" && equals != std::string_view::npos) {
    bit = kVcpu;
    const std::uint64_t vcpu = parse_option_number(name, value, 0, "vcpu=0");
    if (vcpu > 0xffff) {
      throw SpecError(
          concat("option vcpu=", value, " is not a vCPU index; give vcpu=0 .. vcpu=N-1"));
    }
    request.vcpu = static_cast<std::uint32_t>(vcpu);
  } else if (option == "pinned") {
    bit = kPinned;
    request.pinned = true;
  } else if (option == "exclusive") {
    bit = kExclusive;
    request.exclusive = true;
  } else if (option.empty()) {
    throw SpecError("empty option between commas; remove the extra ','");
  } else {
    throw SpecError(concat("unknown option '", option,
                           "'; the options are period=N, pinned, exclusive and vcpu=N"));
  }
  if ((seen & bit) != 0) {
    throw SpecError(concat("option '", name, "' is given twice; keep one"));
  }
  seen |= bit;
}

}  // namespace

std::string_view type_name(BpType type) {
  switch (type) {
    case BpType::kRead:
      return "r";
    case BpType::kWrite:
      return "w";
    case BpType::kReadWrite:
      return "rw";
    case BpType::kExecute:
      return "x";
  }
  return "?";
}

EventRequest parse_event_spec(std::string_view spec) {
  EventRequest request;
  request.text = std::string(spec);
  constexpr std::string_view kPrefix = "mem:";
  if (!spec.starts_with(kPrefix)) {
    const std::string_view kind = spec.substr(0, spec.find(':'));
    throw SpecError(concat(
        "'", kind, "' is not an event type drvm knows; only memory events exist: ", kGrammar));
  }
  const std::string_view body = spec.substr(kPrefix.size());
  const std::size_t comma = body.find(',');
  std::string_view head = body.substr(0, comma);

  if (const std::size_t colon = head.find(':'); colon != std::string_view::npos) {
    request.type = parse_type(head.substr(colon + 1));
    head = head.substr(0, colon);
  }
  if (const std::size_t slash = head.find('/'); slash != std::string_view::npos) {
    request.length = parse_length(head.substr(slash + 1));
    head = head.substr(0, slash);
  }
  if (const std::size_t plus = head.find('+'); plus != std::string_view::npos) {
    const std::string_view offset = head.substr(plus + 1);
    const std::optional<std::uint64_t> value = parse_number(offset);
    if (!value) {
      throw SpecError(
          concat("offset '", offset,
                 "' is not a number; write +N or +0xN right after the address or symbol"));
    }
    request.offset = *value;
    head = head.substr(0, plus);
  }
  parse_location(head, request);

  if (request.type == BpType::kExecute) {
    if (request.length.value_or(1) != 1) {
      throw SpecError(concat("an execute (:x) event watches one instruction start, not ",
                             *request.length, " bytes; drop /", *request.length));
    }
    request.length = 1;
  }

  if (comma != std::string_view::npos) {
    std::string_view options = body.substr(comma + 1);
    unsigned seen = 0;
    for (;;) {
      const std::size_t next = options.find(',');
      parse_option(options.substr(0, next), request, seen);
      if (next == std::string_view::npos) break;
      options.remove_prefix(next + 1);
    }
  }
  return request;
}

}  // namespace drvm::bp

#include "gdbstub/target_description.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>
#include <type_traits>

#include "gdbstub/hex.hpp"

namespace drvm::gdbstub {
namespace {

static_assert(std::is_standard_layout_v<Registers>, "offsetof needs a standard-layout struct");
static_assert(sizeof(Registers::st) == 80, "st0..st7 must be packed 10-byte registers");

#define DRVM_REG(field)                                          \
  RegisterInfo {                                                 \
#field, sizeof(Registers::field), offsetof(Registers, field) \
  }
#define DRVM_ST(i)                                \
  RegisterInfo {                                  \
    "st" #i, 10, offsetof(Registers, st) + (i)*10 \
  }

// The order here is the order of the <reg> elements across the feature files below.
constexpr std::array kLayout = {
    DRVM_REG(rax),     DRVM_REG(rbx),     DRVM_REG(rcx),       DRVM_REG(rdx),   DRVM_REG(rsi),
    DRVM_REG(rdi),     DRVM_REG(rbp),     DRVM_REG(rsp),       DRVM_REG(r8),    DRVM_REG(r9),
    DRVM_REG(r10),     DRVM_REG(r11),     DRVM_REG(r12),       DRVM_REG(r13),   DRVM_REG(r14),
    DRVM_REG(r15),     DRVM_REG(rip),     DRVM_REG(eflags),    DRVM_REG(cs),    DRVM_REG(ss),
    DRVM_REG(ds),      DRVM_REG(es),      DRVM_REG(fs),        DRVM_REG(gs),    DRVM_ST(0),
    DRVM_ST(1),        DRVM_ST(2),        DRVM_ST(3),          DRVM_ST(4),      DRVM_ST(5),
    DRVM_ST(6),        DRVM_ST(7),        DRVM_REG(fctrl),     DRVM_REG(fstat), DRVM_REG(ftag),
    DRVM_REG(fiseg),   DRVM_REG(fioff),   DRVM_REG(foseg),     DRVM_REG(fooff), DRVM_REG(fop),
    DRVM_REG(fs_base), DRVM_REG(gs_base), DRVM_REG(k_gs_base), DRVM_REG(cr0),   DRVM_REG(cr2),
    DRVM_REG(cr3),     DRVM_REG(cr4),     DRVM_REG(cr8),       DRVM_REG(efer),  DRVM_REG(dr0),
    DRVM_REG(dr1),     DRVM_REG(dr2),     DRVM_REG(dr3),       DRVM_REG(dr6),   DRVM_REG(dr7),
};

#undef DRVM_REG
#undef DRVM_ST

constexpr std::size_t kFileSize =
    std::accumulate(kLayout.begin(), kLayout.end(), std::size_t{0},
                    [](std::size_t total, const RegisterInfo& info) { return total + info.size; });

constexpr std::string_view kTargetXml = R"(<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
  <architecture>i386:x86-64</architecture>
  <xi:include href="64bit-core.xml"/>
  <xi:include href="64bit-segments.xml"/>
  <xi:include href="drvm-system.xml"/>
  <xi:include href="drvm-debugregs.xml"/>
</target>
)";

// gdb checks that this feature holds exactly these 40 registers (general, segment, x87).
constexpr std::string_view kCoreXml = R"(<?xml version="1.0"?>
<!DOCTYPE feature SYSTEM "gdb-target.dtd">
<feature name="org.gnu.gdb.i386.core">
  <flags id="i386_eflags" size="4">
    <field name="CF" start="0" end="0"/>
    <field name="" start="1" end="1"/>
    <field name="PF" start="2" end="2"/>
    <field name="AF" start="4" end="4"/>
    <field name="ZF" start="6" end="6"/>
    <field name="SF" start="7" end="7"/>
    <field name="TF" start="8" end="8"/>
    <field name="IF" start="9" end="9"/>
    <field name="DF" start="10" end="10"/>
    <field name="OF" start="11" end="11"/>
    <field name="NT" start="14" end="14"/>
    <field name="RF" start="16" end="16"/>
    <field name="VM" start="17" end="17"/>
    <field name="AC" start="18" end="18"/>
    <field name="VIF" start="19" end="19"/>
    <field name="VIP" start="20" end="20"/>
    <field name="ID" start="21" end="21"/>
  </flags>
  <reg name="rax" bitsize="64" type="int64" regnum="0"/>
  <reg name="rbx" bitsize="64" type="int64"/>
  <reg name="rcx" bitsize="64" type="int64"/>
  <reg name="rdx" bitsize="64" type="int64"/>
  <reg name="rsi" bitsize="64" type="int64"/>
  <reg name="rdi" bitsize="64" type="int64"/>
  <reg name="rbp" bitsize="64" type="data_ptr"/>
  <reg name="rsp" bitsize="64" type="data_ptr"/>
  <reg name="r8" bitsize="64" type="int64"/>
  <reg name="r9" bitsize="64" type="int64"/>
  <reg name="r10" bitsize="64" type="int64"/>
  <reg name="r11" bitsize="64" type="int64"/>
  <reg name="r12" bitsize="64" type="int64"/>
  <reg name="r13" bitsize="64" type="int64"/>
  <reg name="r14" bitsize="64" type="int64"/>
  <reg name="r15" bitsize="64" type="int64"/>
  <reg name="rip" bitsize="64" type="code_ptr"/>
  <reg name="eflags" bitsize="32" type="i386_eflags"/>
  <reg name="cs" bitsize="32" type="int32"/>
  <reg name="ss" bitsize="32" type="int32"/>
  <reg name="ds" bitsize="32" type="int32"/>
  <reg name="es" bitsize="32" type="int32"/>
  <reg name="fs" bitsize="32" type="int32"/>
  <reg name="gs" bitsize="32" type="int32"/>
  <reg name="st0" bitsize="80" type="i387_ext"/>
  <reg name="st1" bitsize="80" type="i387_ext"/>
  <reg name="st2" bitsize="80" type="i387_ext"/>
  <reg name="st3" bitsize="80" type="i387_ext"/>
  <reg name="st4" bitsize="80" type="i387_ext"/>
  <reg name="st5" bitsize="80" type="i387_ext"/>
  <reg name="st6" bitsize="80" type="i387_ext"/>
  <reg name="st7" bitsize="80" type="i387_ext"/>
  <reg name="fctrl" bitsize="32" type="int" group="float"/>
  <reg name="fstat" bitsize="32" type="int" group="float"/>
  <reg name="ftag" bitsize="32" type="int" group="float"/>
  <reg name="fiseg" bitsize="32" type="int" group="float"/>
  <reg name="fioff" bitsize="32" type="int" group="float"/>
  <reg name="foseg" bitsize="32" type="int" group="float"/>
  <reg name="fooff" bitsize="32" type="int" group="float"/>
  <reg name="fop" bitsize="32" type="int" group="float"/>
</feature>
)";

constexpr std::string_view kSegmentsXml = R"(<?xml version="1.0"?>
<!DOCTYPE feature SYSTEM "gdb-target.dtd">
<feature name="org.gnu.gdb.i386.segments">
  <reg name="fs_base" bitsize="64" type="int64" regnum="40" group="system"/>
  <reg name="gs_base" bitsize="64" type="int64" group="system"/>
  <reg name="k_gs_base" bitsize="64" type="int64" group="system"/>
</feature>
)";

constexpr std::string_view kSystemXml = R"(<?xml version="1.0"?>
<!DOCTYPE feature SYSTEM "gdb-target.dtd">
<feature name="org.drvm.system">
  <flags id="drvm_cr0" size="8">
    <field name="PE" start="0" end="0"/>
    <field name="MP" start="1" end="1"/>
    <field name="EM" start="2" end="2"/>
    <field name="TS" start="3" end="3"/>
    <field name="ET" start="4" end="4"/>
    <field name="NE" start="5" end="5"/>
    <field name="WP" start="16" end="16"/>
    <field name="AM" start="18" end="18"/>
    <field name="NW" start="29" end="29"/>
    <field name="CD" start="30" end="30"/>
    <field name="PG" start="31" end="31"/>
  </flags>
  <flags id="drvm_cr4" size="8">
    <field name="VME" start="0" end="0"/>
    <field name="PVI" start="1" end="1"/>
    <field name="TSD" start="2" end="2"/>
    <field name="DE" start="3" end="3"/>
    <field name="PSE" start="4" end="4"/>
    <field name="PAE" start="5" end="5"/>
    <field name="MCE" start="6" end="6"/>
    <field name="PGE" start="7" end="7"/>
    <field name="PCE" start="8" end="8"/>
    <field name="OSFXSR" start="9" end="9"/>
    <field name="OSXMMEXCPT" start="10" end="10"/>
    <field name="UMIP" start="11" end="11"/>
    <field name="LA57" start="12" end="12"/>
    <field name="FSGSBASE" start="16" end="16"/>
    <field name="PCIDE" start="17" end="17"/>
    <field name="OSXSAVE" start="18" end="18"/>
    <field name="SMEP" start="20" end="20"/>
    <field name="SMAP" start="21" end="21"/>
    <field name="PKE" start="22" end="22"/>
  </flags>
  <flags id="drvm_efer" size="8">
    <field name="SCE" start="0" end="0"/>
    <field name="LME" start="8" end="8"/>
    <field name="LMA" start="10" end="10"/>
    <field name="NXE" start="11" end="11"/>
    <field name="SVME" start="12" end="12"/>
    <field name="FFXSR" start="14" end="14"/>
  </flags>
  <reg name="cr0" bitsize="64" type="drvm_cr0" group="system" regnum="43"/>
  <reg name="cr2" bitsize="64" type="data_ptr" group="system"/>
  <reg name="cr3" bitsize="64" type="int64" group="system"/>
  <reg name="cr4" bitsize="64" type="drvm_cr4" group="system"/>
  <reg name="cr8" bitsize="64" type="int64" group="system"/>
  <reg name="efer" bitsize="64" type="drvm_efer" group="system"/>
</feature>
)";

// The guest's own debug registers (its virtual DR file), which no other stub exposes. DR6's BLD
// (bit 11) and RTM (bit 16) are active low (SDM Vol. 3, 17.2.3: cleared when the condition is
// signalled). A gdb flags field shows a one-bit boolean only when it is 1, so those two are enum
// fields instead, always shown: BLD=yes when a bus lock was detected, BLD=no otherwise.
constexpr std::string_view kDebugRegsXml = R"(<?xml version="1.0"?>
<!DOCTYPE feature SYSTEM "gdb-target.dtd">
<feature name="org.drvm.debugregs">
  <enum id="drvm_dr6_active_low" size="8">
    <evalue name="yes" value="0"/>
    <evalue name="no" value="1"/>
  </enum>
  <flags id="drvm_dr6" size="8">
    <field name="B0" start="0" end="0"/>
    <field name="B1" start="1" end="1"/>
    <field name="B2" start="2" end="2"/>
    <field name="B3" start="3" end="3"/>
    <field name="BLD" start="11" end="11" type="drvm_dr6_active_low"/>
    <field name="BD" start="13" end="13"/>
    <field name="BS" start="14" end="14"/>
    <field name="BT" start="15" end="15"/>
    <field name="RTM" start="16" end="16" type="drvm_dr6_active_low"/>
  </flags>
  <flags id="drvm_dr7" size="8">
    <field name="L0" start="0" end="0"/>
    <field name="G0" start="1" end="1"/>
    <field name="L1" start="2" end="2"/>
    <field name="G1" start="3" end="3"/>
    <field name="L2" start="4" end="4"/>
    <field name="G2" start="5" end="5"/>
    <field name="L3" start="6" end="6"/>
    <field name="G3" start="7" end="7"/>
    <field name="LE" start="8" end="8"/>
    <field name="GE" start="9" end="9"/>
    <field name="RTM" start="11" end="11"/>
    <field name="GD" start="13" end="13"/>
    <field name="RW0" start="16" end="17"/>
    <field name="LEN0" start="18" end="19"/>
    <field name="RW1" start="20" end="21"/>
    <field name="LEN1" start="22" end="23"/>
    <field name="RW2" start="24" end="25"/>
    <field name="LEN2" start="26" end="27"/>
    <field name="RW3" start="28" end="29"/>
    <field name="LEN3" start="30" end="31"/>
  </flags>
  <reg name="dr0" bitsize="64" type="data_ptr" group="system" regnum="49"/>
  <reg name="dr1" bitsize="64" type="data_ptr" group="system"/>
  <reg name="dr2" bitsize="64" type="data_ptr" group="system"/>
  <reg name="dr3" bitsize="64" type="data_ptr" group="system"/>
  <reg name="dr6" bitsize="64" type="drvm_dr6" group="system"/>
  <reg name="dr7" bitsize="64" type="drvm_dr7" group="system"/>
</feature>
)";

struct Annex {
  std::string_view name;
  std::string_view contents;
};

constexpr std::array kAnnexes = {
    Annex{"target.xml", kTargetXml},
    Annex{"64bit-core.xml", kCoreXml},
    Annex{"64bit-segments.xml", kSegmentsXml},
    Annex{"drvm-system.xml", kSystemXml},
    Annex{"drvm-debugregs.xml", kDebugRegsXml},
};

}  // namespace

std::span<const RegisterInfo> register_layout() {
  return kLayout;
}

std::size_t register_file_size() {
  return kFileSize;
}

std::optional<std::string_view> target_description_annex(std::string_view annex) {
  for (const Annex& entry : kAnnexes) {
    if (entry.name == annex) return entry.contents;
  }
  return std::nullopt;
}

std::string serialize_registers(const Registers& registers) {
  const auto* base = reinterpret_cast<const std::uint8_t*>(&registers);
  std::string out;
  out.reserve(kFileSize * 2);
  for (const RegisterInfo& info : kLayout) {
    append_hex_bytes(out, std::span(base + info.offset, info.size));
  }
  return out;
}

void store_register_bytes(Registers& registers, std::size_t offset_in_file,
                          std::span<const std::uint8_t> bytes) {
  auto* base = reinterpret_cast<std::uint8_t*>(&registers);
  std::size_t file_position = 0;
  for (const RegisterInfo& info : kLayout) {
    const std::size_t end = file_position + info.size;
    const std::size_t begin = std::max(file_position, offset_in_file);
    const std::size_t stop = std::min(end, offset_in_file + bytes.size());
    if (begin < stop) {
      std::memcpy(base + info.offset + (begin - file_position),
                  bytes.data() + (begin - offset_in_file), stop - begin);
    }
    file_position = end;
  }
}

}  // namespace drvm::gdbstub

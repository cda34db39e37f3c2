// What drtest.elf must print: every case in the order it runs, which of them QEMU TCG cannot run
// (docs/drtest.md, "Known to differ"), and the summary. Shared by the QEMU and the drvm tests so
// both are held to one list.
#pragma once

#include <string>
#include <vector>

namespace drvm::test {

struct DrtestCase {
  std::string name;
  // Empty when QEMU TCG implements what the case checks; otherwise the SKIP reason the image prints
  // there (given drtest.vmm=qemu-tcg).
  std::string qemu_tcg_skip_reason;
};

const std::vector<DrtestCase>& drtest_cases();

// The command line that tells drtest.elf it runs under QEMU TCG.
inline constexpr const char* kDrtestQemuTcgCmdline = "drtest.vmm=qemu-tcg";

enum class DrtestVmm { kExact, kQemuTcg };
// Every line drtest.elf prints, summary included: all PASS for an exact VMM (drvm); under QEMU TCG
// the known-to-differ cases are SKIP lines. With several CPUs (drvm --cpus, QEMU -smp) the case
// lines and the summary come once per CPU, each run under a "drtest: cpu N (APIC ID N)" line, then
// a count line per CPU and "drtest: every CPU passed" (guestfw/images/drtest_cpus.c).
std::string drtest_expected_output(DrtestVmm vmm, unsigned cpus = 1);

// "PASS name" / "FAIL name: ..." / "SKIP name: ..." -> {"FAIL", "name"} for each case line.
struct DrtestOutcome {
  std::string verdict;
  std::string name;
};
std::vector<DrtestOutcome> drtest_outcomes(const std::string& serial);

}  // namespace drvm::test

#include "drtest_expectations.hpp"

#include <fmt/format.h>

#include <sstream>

namespace drvm::test {
namespace {

// Why QEMU TCG (7.2) cannot run a case; docs/drtest.md explains each against QEMU's code.
constexpr const char* kImplemented = "";
constexpr const char* kNoLenMasking =
    "QEMU TCG does not implement the LENn masking of unaligned breakpoint addresses";
constexpr const char* kNoUnalignedStoreRange =
    "QEMU TCG does not implement exact ranges for unaligned stores to a watched page";
constexpr const char* kNoMultipleDataHits =
    "QEMU TCG does not implement reporting several data breakpoints met by one instruction";
constexpr const char* kStaleDataHits =
    "QEMU TCG does not implement clearing the hit state of data breakpoints met by earlier "
    "instructions";
constexpr const char* kNoMergedStepAndData =
    "QEMU TCG does not implement reporting a single step and a data breakpoint in one #DB";
constexpr const char* kNoGeneralDetect = "QEMU TCG does not implement general detect";
constexpr const char* kRepLastIterationRip =
    "QEMU TCG does not implement completing a REP string instruction before a trap in its last "
    "iteration";
constexpr const char* kRepNoRf =
    "QEMU TCG does not implement pushing RF for traps inside REP string instructions";

}  // namespace

const std::vector<DrtestCase>& drtest_cases() {
  // In the order drtest.elf runs them (guestfw/CMakeLists.txt lists its files in this order).
  static const std::vector<DrtestCase> cases = {
      {"dr0_to_dr3_read_back_exact_64bit_values", kImplemented},
      {"dr6_write_zero_reads_fixed_bits", kImplemented},
      {"dr6_status_bits_read_back", kImplemented},
      {"dr7_write_zero_reads_bit10", kImplemented},
      {"dr7_control_bits_read_back", kImplemented},
      {"dr4_aliases_dr6_when_cr4_de_clear", kImplemented},
      {"dr5_aliases_dr7_when_cr4_de_clear", kImplemented},
      {"dr4_dr5_raise_ud_when_cr4_de_set", kImplemented},
      {"dr6_upper_half_write_raises_gp", kImplemented},
      {"dr7_upper_half_write_raises_gp", kImplemented},
      {"write_watch_length_1", kImplemented},
      {"write_watch_length_2", kImplemented},
      {"write_watch_length_4", kImplemented},
      {"write_watch_length_8", kImplemented},
      {"read_write_watch_length_1", kImplemented},
      {"read_write_watch_length_2", kImplemented},
      {"read_write_watch_length_4", kImplemented},
      {"read_write_watch_length_8", kImplemented},
      {"write_watch_traps_after_the_store", kImplemented},
      {"write_watch_ignores_loads", kImplemented},
      {"write_watch_same_value_store_triggers", kImplemented},
      {"read_write_watch_triggers_on_store", kImplemented},
      {"write_watch_read_modify_write_hits_once", kImplemented},
      {"read_write_watch_read_modify_write_hits_once", kImplemented},
      {"unaligned_breakpoint_address_is_masked", kNoLenMasking},
      {"wide_store_overlapping_byte_watch_triggers", kImplemented},
      {"unaligned_store_crossing_range_start_triggers", kImplemented},
      {"unaligned_store_crossing_range_end_triggers", kImplemented},
      {"unaligned_stores_beside_watch_do_not_trigger", kNoUnalignedStoreRange},
      {"store_straddling_page_boundary_triggers_watch_on_second_page", kImplemented},
      {"load_straddling_page_boundary_triggers_watch_on_second_page", kImplemented},
      {"read_write_watch_ignores_instruction_fetch", kImplemented},
      {"one_store_hitting_two_slots_reports_both", kNoMultipleDataHits},
      {"two_slots_on_same_address_report_by_type", kNoMultipleDataHits},
      {"four_armed_slots_each_reported_alone", kStaleDataHits},
      {"local_enable_arms_each_slot", kImplemented},
      {"global_enable_arms_each_slot", kImplemented},
      {"disabled_slots_never_fire", kImplemented},
      {"enable_bits_arm_only_their_own_slot", kImplemented},
      {"dr6_bits_other_than_b0_b3_survive_a_hit", kImplemented},
      {"write_watch_counts_100_stores_exactly", kImplemented},
      {"instruction_breakpoint_faults_before_execution", kImplemented},
      {"instruction_breakpoint_refaults_until_rf_is_set", kImplemented},
      {"instruction_breakpoint_counts_50_iterations_exactly", kImplemented},
      {"instruction_breakpoint_in_each_slot", kImplemented},
      {"instruction_breakpoint_in_two_slots_reports_both", kImplemented},
      {"instruction_breakpoint_inside_an_instruction_never_fires", kImplemented},
      {"instruction_fault_precedes_data_trap_of_same_instruction", kImplemented},
      {"data_trap_then_instruction_fault_on_next_instruction", kImplemented},
      {"single_step_traps_after_each_instruction", kImplemented},
      {"single_step_enabled_by_iret", kImplemented},
      {"single_step_and_data_breakpoint_reported_together", kNoMergedStepAndData},
      {"int3_raises_bp_and_leaves_dr6_alone", kImplemented},
      {"general_detect_faults_on_mov_to_dr", kNoGeneralDetect},
      {"general_detect_faults_on_mov_from_dr", kNoGeneralDetect},
      {"write_watch_hit_inside_exception_handler", kImplemented},
      {"instruction_breakpoint_hit_inside_exception_handler", kImplemented},
      {"write_watch_on_stack_slot_written_by_push", kImplemented},
      {"write_watch_on_stack_slot_written_by_call", kImplemented},
      {"rep_movsb_write_watch_traps_after_the_iteration", kImplemented},
      {"rep_movsb_read_watch_on_source_traps_after_the_iteration", kImplemented},
      {"rep_movsb_write_watch_on_last_byte_traps_after_the_instruction", kRepLastIterationRip},
      {"rep_stosq_write_watch_traps_after_the_iteration", kImplemented},
      {"rep_string_trap_before_last_iteration_pushes_rf", kRepNoRf},
      // drtest_layouts.c: regression cases from the differential fuzzer.
      {"single_step_trap_after_a_store_beside_a_watch", kImplemented},
      // Passes under QEMU TCG without general detect (nothing faults there).
      {"single_step_trap_clears_gd", kImplemented},
      {"exceptions_delivered_with_a_watch_on_the_idt_page", kImplemented},
      {"rf_cleared_after_pushf", kImplemented},
      {"read_write_watch_on_the_live_pml4_page", kImplemented},
  };
  return cases;
}

std::string drtest_expected_output(DrtestVmm vmm, unsigned cpus) {
  std::string one_cpu;
  unsigned passed = 0, skipped = 0;
  for (const DrtestCase& test : drtest_cases()) {
    if (vmm == DrtestVmm::kQemuTcg && !test.qemu_tcg_skip_reason.empty()) {
      one_cpu += fmt::format("SKIP {}: {}\n", test.name, test.qemu_tcg_skip_reason);
      ++skipped;
    } else {
      one_cpu += fmt::format("PASS {}\n", test.name);
      ++passed;
    }
  }
  one_cpu += fmt::format("summary: {} passed, 0 failed, {} skipped\n", passed, skipped);
  if (cpus == 1) return one_cpu;

  // APIC ID = CPU index under drvm and QEMU.
  std::string output = fmt::format("drtest: {} CPUs, the cases run on each in turn\n", cpus);
  for (unsigned cpu = 0; cpu < cpus; ++cpu)
    output += fmt::format("drtest: cpu {} (APIC ID {})\n", cpu, cpu) + one_cpu;
  for (unsigned cpu = 0; cpu < cpus; ++cpu)
    output +=
        fmt::format("drtest: cpu {}: {} passed, 0 failed, {} skipped\n", cpu, passed, skipped);
  return output + "drtest: every CPU passed\n";
}

std::vector<DrtestOutcome> drtest_outcomes(const std::string& serial) {
  std::vector<DrtestOutcome> outcomes;
  std::istringstream lines(serial);
  std::string line;
  while (std::getline(lines, line)) {
    const auto space = line.find(' ');
    if (space == std::string::npos) continue;
    const std::string verdict = line.substr(0, space);
    if (verdict != "PASS" && verdict != "FAIL" && verdict != "SKIP") continue;
    const auto end = line.find(':', space);
    outcomes.push_back(
        {verdict,
         line.substr(space + 1, end == std::string::npos ? std::string::npos : end - space - 1)});
  }
  return outcomes;
}

}  // namespace drvm::test

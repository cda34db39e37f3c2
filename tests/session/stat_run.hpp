// `drvm run` with host events and their --stat --json written to a file, the way `drvm test`
// calls it, with the stat parsed: for the session tests that check counts.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "harness/property_tree_json.hpp"
#include "run_drvm.hpp"

namespace drvm::test {

struct Stat {
  DrvmResult run;
  boost::property_tree::ptree json;
  std::map<std::string, boost::property_tree::ptree> events;  // by spec
};

// Runs `drvm ARGS --event SPEC... --stat --json --stat-output FILE EXTRA...`. A run that writes no
// stat is a test failure (with drvm's status and stderr), and an empty Stat.
inline Stat run_with_stat(std::vector<std::string> args, const std::vector<std::string>& specs,
                          const std::vector<std::string>& extra) {
  const std::string stat_file = temp_path("stat.json");
  for (const std::string& spec : specs) args.insert(args.end(), {"--event", spec});
  args.insert(args.end(), {"--stat", "--json", "--stat-output", stat_file});
  args.insert(args.end(), extra.begin(), extra.end());
  Stat stat;
  stat.run = run_drvm(args);
  const std::string text = slurp(stat_file);
  ::unlink(stat_file.c_str());
  if (text.empty()) {
    ADD_FAILURE() << "no stat written; status " << stat.run.status << "\n" << stat.run.err;
    return stat;
  }
  std::istringstream in(text);
  boost::property_tree::read_json(in, stat.json);
  for (const auto& [key, event] : stat.json.get_child("events")) {
    stat.events[event.template get<std::string>("spec")] = event;
  }
  return stat;
}

}  // namespace drvm::test

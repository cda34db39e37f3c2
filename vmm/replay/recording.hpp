// A recording of a single-vCPU run (`drvm run --recording FILE`): what the run booted (the image
// and modules with their sizes and checksums, the memory size, the command line), every input the
// guest read from outside (the exit log) and how the run ended. `drvm replay FILE` boots the same
// files and feeds the guest the same inputs, so the run repeats exactly on another machine (a CI
// failure on a developer's desk), under gdb forwards and backwards too.
//
// The file: a text header of `key value` lines (strings as LENGTH:BYTES), the line `exits`, then
// the exit log's bytes (ExitLog::write).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "vmm/replay/exit_log.hpp"

namespace drvm::vmm::replay {

// A recording that cannot be written or read (the message names the file and the cause).
class RecordingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RecordedFile {
  std::string path;  // as given to drvm run (relative to its working directory)
  std::uint64_t size = 0;
  std::uint64_t hash = 0;  // FNV-1a, 64 bits
};

struct Recording {
  RecordedFile image;
  std::uint64_t memory = 0;
  std::string cmdline;
  std::vector<std::string> module_specs;  // --initrd, as given ("FILE[ ARGS]")
  std::vector<RecordedFile> modules;      // their files
  int status = 0;                         // the run's exit status
  std::string ended;  // how it ended ("exit port", "halted", "triple fault", ...)
};

// The size and checksum of the file at `path` (throws RecordingError when unreadable).
RecordedFile describe_file(const std::string& path);
// The file part of an --initrd spec ("FILE ARGS" -> FILE).
std::string module_file(const std::string& spec);

// Writes `recording` and `log` to `path` (throws RecordingError, with the cause).
void write_recording(const std::string& path, const Recording& recording, const ExitLog& log);
// Reads a recording's header, and its exit log into `log` when given (throws RecordingError
// for a file that is not a readable recording).
Recording read_recording(const std::string& path, ExitLog* log);
// Why the files a recording names differ from the ones at their paths now (nullopt: the same).
std::optional<std::string> check_recorded_files(const Recording& recording);

}  // namespace drvm::vmm::replay

# harness.property_tree_json_quiet: Boost.PropertyTree's JSON parser compiles without Boost.Bind's
# "global placeholders" deprecation message, and nothing includes the parser except through
# harness/property_tree_json.hpp (which includes what the parser means instead of silencing it).
# Run as: cmake -DCXX=... -DSOURCE_DIR=... -DWORK_DIR=... -P property_tree_json_quiet.cmake
file(GLOB_RECURSE sources RELATIVE ${SOURCE_DIR}
     ${SOURCE_DIR}/bpcore/*.[ch]pp ${SOURCE_DIR}/cli/*.[ch]pp ${SOURCE_DIR}/cmdline/*.[ch]pp
     ${SOURCE_DIR}/gdbstub/*.[ch]pp ${SOURCE_DIR}/harness/*.[ch]pp ${SOURCE_DIR}/vmm/*.[ch]pp
     ${SOURCE_DIR}/tests/*.[ch]pp ${SOURCE_DIR}/bench/*.[ch]pp)
foreach(source IN LISTS sources)
  file(STRINGS ${SOURCE_DIR}/${source} direct REGEX "#include <boost/(property_tree/json_parser|bind)\\.hpp>")
  if(direct AND NOT source STREQUAL "harness/property_tree_json.hpp")
    message(FATAL_ERROR "${source} includes ${direct} directly; include \"harness/property_tree_json.hpp\"")
  endif()
endforeach()

file(MAKE_DIRECTORY ${WORK_DIR})
file(WRITE ${WORK_DIR}/json_quiet.cpp [=[
#include <sstream>
#include "harness/property_tree_json.hpp"
int main() {
  std::istringstream in("{\"a\": [1, 2]}");
  boost::property_tree::ptree tree;
  boost::property_tree::read_json(in, tree);
  return tree.get_child("a").size() == 2 ? 0 : 1;
}
]=])
execute_process(COMMAND ${CXX} -std=c++20 -Wall -Wextra -fsyntax-only -I${SOURCE_DIR}
                        ${WORK_DIR}/json_quiet.cpp
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "harness/property_tree_json.hpp does not compile:\n${out}")
endif()
if(out MATCHES "pragma message|placeholders|deprecated")
  message(FATAL_ERROR "Boost's deprecation message is back:\n${out}")
endif()
message(STATUS "property_tree_json: quiet")

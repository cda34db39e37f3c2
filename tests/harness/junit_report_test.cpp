#include "harness/junit_report.hpp"

#include <gtest/gtest.h>

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <sstream>

#include "report_fixture.hpp"

namespace drvm::harness {
namespace {

namespace pt = boost::property_tree;

pt::ptree parse_xml(const std::string& xml) {
  std::istringstream in(xml);
  pt::ptree tree;
  pt::read_xml(in, tree);
  return tree;
}

std::string attribute(const pt::ptree& node, const std::string& name) {
  const auto value = node.get_optional<std::string>("<xmlattr>." + name);
  EXPECT_TRUE(value) << "missing attribute " << name;
  return value.value_or("");
}

std::vector<const pt::ptree*> children(const pt::ptree& node, const std::string& name) {
  std::vector<const pt::ptree*> out;
  for (const auto& [key, child] : node) {
    if (key == name) out.push_back(&child);
  }
  return out;
}

// XML 1.0 allows no C0 control character other than tab, newline and carriage return.
bool only_legal_xml_characters(const std::string& xml) {
  for (const unsigned char ch : xml) {
    if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') return false;
  }
  return true;
}

TEST(JunitReport, HasTheSchemasRequiredStructure) {
  testing::ReportFixture fixture;
  fixture.add(0, "hello", true).run.child.out = "hello\r\n";
  auto& halted = fixture.add(0, "halt <1>", false);
  halted.verdict.serial_diff = "--- a\n+++ b\n";
  halted.run.child.err = "drvm: guest halted\nRIP=0x1000\n";
  fixture.add(1, "crash", false, true);

  const std::string xml = junit_xml(fixture.results, {"ci-host", "2026-11-23T10:00:00"});
  ASSERT_TRUE(only_legal_xml_characters(xml));
  const pt::ptree tree = parse_xml(xml);

  const pt::ptree& root = tree.get_child("testsuites");
  EXPECT_EQ(attribute(root, "tests"), "3");
  EXPECT_EQ(attribute(root, "failures"), "1");
  EXPECT_EQ(attribute(root, "errors"), "1");
  EXPECT_EQ(attribute(root, "time"), "0.750");

  const auto suites = children(root, "testsuite");
  ASSERT_EQ(suites.size(), 2u);
  const pt::ptree& boot = *suites[0];
  EXPECT_EQ(attribute(boot, "name"), "boot");
  EXPECT_EQ(attribute(boot, "tests"), "2");
  EXPECT_EQ(attribute(boot, "failures"), "1");
  EXPECT_EQ(attribute(boot, "errors"), "0");
  EXPECT_EQ(attribute(boot, "skipped"), "0");
  EXPECT_EQ(attribute(boot, "time"), "0.500");
  EXPECT_EQ(attribute(boot, "timestamp"), "2026-11-23T10:00:00");
  EXPECT_EQ(attribute(boot, "hostname"), "ci-host");
  EXPECT_EQ(attribute(boot, "id"), "0");
  EXPECT_EQ(attribute(boot, "package"), "boot");
  EXPECT_EQ(children(boot, "properties").size(), 1u);
  EXPECT_EQ(children(boot, "system-out").size(), 1u);
  EXPECT_EQ(children(boot, "system-err").size(), 1u);
  EXPECT_EQ(attribute(*suites[1], "name"), "dr & co");
  EXPECT_EQ(attribute(*suites[1], "errors"), "1");

  const auto cases = children(boot, "testcase");
  ASSERT_EQ(cases.size(), 2u);
  EXPECT_EQ(attribute(*cases[0], "classname"), "boot");
  EXPECT_EQ(attribute(*cases[0], "name"), "hello");
  EXPECT_EQ(attribute(*cases[0], "time"), "0.250");
  EXPECT_TRUE(children(*cases[0], "failure").empty());
  EXPECT_EQ(cases[0]->get<std::string>("system-out"), "hello\r\n");

  EXPECT_EQ(attribute(*cases[1], "name"), "halt <1>");
  const auto failures = children(*cases[1], "failure");
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(attribute(*failures[0], "message"), "expected exit value 0, got halt (status 6)");
  EXPECT_EQ(attribute(*failures[0], "type"), "drvm.failure");
  const std::string text = failures[0]->data();
  EXPECT_NE(text.find("second\n"), std::string::npos) << text;
  EXPECT_NE(text.find("--- a\n+++ b\n"), std::string::npos) << text;
  EXPECT_NE(text.find("command: /bin/drvm run x.elf"), std::string::npos) << text;
  EXPECT_EQ(cases[1]->get<std::string>("system-err"), "drvm: guest halted\nRIP=0x1000\n");

  const auto crash = children(*suites[1], "testcase");
  ASSERT_EQ(crash.size(), 1u);
  ASSERT_EQ(children(*crash[0], "error").size(), 1u);
  EXPECT_EQ(attribute(*children(*crash[0], "error")[0], "type"), "drvm.error");
}

TEST(JunitReport, ArbitraryGuestBytesStayWellFormed) {
  testing::ReportFixture fixture;
  std::string garbage;
  for (int byte = 0; byte < 256; ++byte) garbage += static_cast<char>(byte);
  garbage += "]]></system-out><x>&amp;";
  auto& result = fixture.add(0, std::string("bad\x01name\xff"), false);
  result.run.child.out = garbage;
  result.run.child.err = garbage;
  result.verdict.reasons = {garbage};

  const std::string xml = junit_xml(fixture.results, current_junit_context());
  ASSERT_TRUE(only_legal_xml_characters(xml));
  const pt::ptree tree = parse_xml(xml);
  const pt::ptree& testcase = tree.get_child("testsuites.testsuite.testcase");
  EXPECT_EQ(attribute(testcase, "name"), "bad\\x01name\\xff");
  const std::string out = testcase.get<std::string>("system-out");
  EXPECT_NE(out.find("\\x00\\x01"), std::string::npos);
  EXPECT_NE(out.find("\t\n\\x0b"), std::string::npos);
  EXPECT_NE(out.find(" !\"#$%&'()*+"), std::string::npos);
  EXPECT_NE(out.find("\\x80\\x81"), std::string::npos);  // lone continuation bytes
  EXPECT_NE(out.find("]]></system-out><x>&amp;"), std::string::npos);
  EXPECT_FALSE(current_junit_context().hostname.empty());
}

}  // namespace
}  // namespace drvm::harness

// Registries and journals edited by hand, or damaged, read through the real
// herd binary: a field of the wrong type, missing keys, a huge value,
// invalid UTF-8, a NUL byte, nesting too deep, a document that is not an
// object, and journal lines of every such kind. herd never crashes (every
// command exits with a code, not a signal), names the file (and the entry
// and field when the JSON parses) and says what to do, never rewrites the
// damaged file on a read, and every other task stays readable and
// writable. (Links in place of workspace files: workspace_safety_test.cc.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "agents/testing_util_for_test.h"
#include "registry/file_names.h"
#include "store/file_names.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;

struct Damage {
  const char* name;
  // Rewrites the registry's text; `agent_id` is its one agent.
  std::function<std::string(const json& registry, const std::string& agent_id)> edit;
  // The field a decoding error names, or "" when the bytes do not parse.
  const char* field;
};

// A registry that is well formed but holds values no one would write: read
// as it is.
struct Oddity {
  const char* name;
  std::function<std::string(const json& registry)> edit;
};

std::string WithAgentField(json registry, const char* key, json value) {
  registry["agents"][0][key] = std::move(value);
  return registry.dump();
}

const Damage kDamages[] = {
    {"WrongType", [](const json& r, const std::string&) { return WithAgentField(r, "status", 5); },
     "\"status\""},
    {"WrongTypeOfList",
     [](const json& r, const std::string&) {
       json edited = r;
       edited["agents"] = "none";
       return edited.dump();
     },
     "agents"},
    {"InvalidUtf8",
     [](const json& r, const std::string&) {
       std::string text = r.dump();
       return text.insert(text.find("\"worker\"") + 1, "\xff\xfe");
     },
     ""},
    {"NulByte",
     [](const json& r, const std::string&) {
       std::string text = r.dump();
       return text.insert(text.find("\"worker\"") + 1, std::string(1, '\0'));
     },
     ""},
    {"NestedTooDeep",
     [](const json&, const std::string&) {
       return std::string(200000, '[') + std::string(200000, ']');
     },
     ""},
    {"NotAnObject", [](const json&, const std::string&) { return std::string("[1, 2]"); }, ""},
    {"Truncated",
     [](const json& r, const std::string&) {
       std::string text = r.dump();
       return text.substr(0, text.size() / 2);
     },
     ""},
};

class HandEditedFilesTest : public HerdTest, public ::testing::WithParamInterface<Damage> {
 protected:
  // Exits with a code, never by a signal or at the deadline.
  static void ExpectExitedNormally(const CommandResult& result) {
    EXPECT_GE(result.exit_code, 0) << result.Describe();
    EXPECT_EQ(result.term_signal, 0) << result.Describe();
    EXPECT_FALSE(result.timed_out) << result.Describe();
  }
};

TEST_P(HandEditedFilesTest, TheFileIsNamedNothingCrashesAndOtherTasksAreUntouched) {
  std::string damaged_task = CreateTask({}, "damaged by hand");
  std::string agent_id = DeployAgent(damaged_task, {"true"});
  WaitForAgentToEnd(damaged_task, agent_id);
  std::string other_task = CreateTask({}, "left alone");
  std::string other_agent = DeployAgent(other_task, {"true"});
  WaitForAgentToEnd(other_task, other_agent);
  json other_before = TaskRegistry(other_task);

  std::string path = TaskRegistryPath(damaged_task);
  std::string original = ReadFile(path);
  std::string edited = GetParam().edit(TaskRegistry(damaged_task), agent_id);
  WriteFile(path, edited);
  // No backup to fall back on: the damage itself is what herd must report.
  std::remove(store::BackupFileName(path).c_str());

  CommandResult status = Herd({"status", damaged_task});
  ExpectExitedNormally(status);
  EXPECT_EQ(status.exit_code, 1) << status.Describe();
  EXPECT_THAT(status.err, HasSubstr(path));
  if (*GetParam().field != '\0') {
    EXPECT_THAT(status.err, HasSubstr(GetParam().field)) << status.Describe();
  } else {
    EXPECT_THAT(status.err, HasSubstr("fix it by hand")) << status.Describe();
  }

  // A change to the damaged task is refused the same way, and changes nothing.
  CommandResult deploy = Herd(DeployArgs(damaged_task, "worker", {"true"}));
  ExpectExitedNormally(deploy);
  EXPECT_NE(deploy.exit_code, 0) << deploy.Describe();
  EXPECT_THAT(deploy.err, HasSubstr(path));

  for (std::vector<std::string> args :
       {std::vector<std::string>{"task", "list"}, {"status"}, {"doctor", "--json"}}) {
    CommandResult result = Herd(args);
    ExpectExitedNormally(result);
  }
  EXPECT_EQ(ReadFile(path), edited) << "a read or a refused change rewrote the damaged file";
  WriteFile(path, original);  // for the test's own clean-up, which reads it

  // The other task reads and changes as before.
  CommandResult other = Herd({"status", other_task});
  EXPECT_EQ(other.exit_code, 0) << other.Describe();
  EXPECT_THAT(other.out, HasSubstr(other_agent));
  DeployAgent(other_task, {"true"});
  json other_after = TaskRegistry(other_task);
  ASSERT_EQ(other_after.at("agents").size(), 2u);
  EXPECT_EQ(other_after["agents"][0], other_before["agents"][0]);
}

INSTANTIATE_TEST_SUITE_P(Damages, HandEditedFilesTest, ::testing::ValuesIn(kDamages),
                         [](const auto& info) { return std::string(info.param.name); });

const Oddity kOddities[] = {
    {"HugeDescription",
     [](const json& r) {
       json edited = r;
       edited["description"] = std::string(16 << 20, 'x');
       return edited.dump();
     }},
    {"EscapedNulAndControlCharacters",
     [](const json& r) {
       json edited = r;
       edited["description"] = std::string("a\0b\x01c\x1b[2Jd", 9);
       return edited.dump();
     }},
    {"MissingOptionalKeys",
     [](const json& r) {
       json edited = r;
       for (const char* key : {"description", "created_at", "priority"}) edited.erase(key);
       edited["agents"][0].erase("last_update");
       edited["agents"][0].erase("progress");
       return edited.dump();
     }},
};

class OddValuesTest : public HerdTest, public ::testing::WithParamInterface<Oddity> {};

TEST_P(OddValuesTest, AreReadAsTheyAreAndTheTaskStillChanges) {
  std::string task_id = CreateTask();
  std::string agent_id = DeployAgent(task_id, {"true"});
  WaitForAgentToEnd(task_id, agent_id);
  WriteFile(TaskRegistryPath(task_id), GetParam().edit(TaskRegistry(task_id)));

  CommandResult status = Herd({"status", task_id});
  EXPECT_EQ(status.exit_code, 0) << status.Describe().substr(0, 2000);
  EXPECT_THAT(status.out, HasSubstr(agent_id));
  EXPECT_EQ(status.out.find('\x1b'), std::string::npos)
      << "a control character reached the terminal";
  CommandResult listed = Herd({"task", "list", "--json"});
  EXPECT_EQ(listed.exit_code, 0) << listed.Describe().substr(0, 2000);
  EXPECT_FALSE(listed.Json().is_discarded());

  std::string second = DeployAgent(task_id, {"true"});
  json after = TaskRegistry(task_id);
  ASSERT_EQ(after.at("agents").size(), 2u);
  EXPECT_EQ(after["agents"][0].value("id", ""), agent_id);
  EXPECT_EQ(after["agents"][1].value("id", ""), second);
}

INSTANTIATE_TEST_SUITE_P(Oddities, OddValuesTest, ::testing::ValuesIn(kOddities),
                         [](const auto& info) { return std::string(info.param.name); });

// Journal lines edited by hand or cut short: every good line is still read
// and the bad ones are skipped, whatever they hold.
TEST_F(HerdTest, DamagedJournalLinesAreSkippedAndTheGoodOnesRead) {
  std::string task_id = CreateTask();
  std::string agent_id = DeployAgent(task_id, {"sleep", "300"});
  HerdJson({"progress", task_id, agent_id, "--status", "working", "--message", "first step",
            "--progress", "10"});
  std::string journal = TaskDirectory(task_id) + "/" +
                        registry::AgentFileName(agent_id, registry::AgentFile::kProgressJournal);
  std::string bad = std::string("{\"message\": \"bad \xff\xfe utf-8\"}\n") +
                    "{\"message\": \"a NUL " + std::string(1, '\0') + " inside\"}\n" +
                    "{\"timestamp\": 5, \"status\": [], \"message\": {}, \"progress\": \"x\"}\n" +
                    "[1, 2, 3]\n" + std::string(4 << 20, '{') + "\n" + "not json at all\n";
  WriteFile(journal, ReadFile(journal) + bad);
  HerdJson({"progress", task_id, agent_id, "--status", "working", "--message", "second step",
            "--progress", "20"});

  CommandResult status = Herd({"status", task_id, "--json"});
  EXPECT_EQ(status.exit_code, 0) << status.Describe();
  EXPECT_EQ(status.term_signal, 0);
  EXPECT_THAT(status.out, HasSubstr("first step"));
  EXPECT_THAT(status.out, HasSubstr("second step"));
  EXPECT_FALSE(status.Json().is_discarded()) << status.out.substr(0, 2000);
  HerdJson({"kill", task_id, agent_id, "--grace", "1"});
}

}  // namespace
}  // namespace herd::test_util

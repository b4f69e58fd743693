// Tests for task and agent ids: what the generators produce, and that
// nothing that could escape the workspace or confuse tools (`/`, `..`, `.`,
// `:`) is accepted as an id, while free-text agent types are made safe.
#include "registry/ids.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

namespace herd::registry {
namespace {

TEST(RegistryIdsTaskIdTest, NewTaskIdHasTheReferenceFormAndIsValid) {
  std::string id = NewTaskId();
  EXPECT_TRUE(std::regex_match(id, std::regex("TASK-[0-9]{8}-[0-9]{6}-[0-9a-f]{8}"))) << id;
  EXPECT_TRUE(ValidateTaskId(id).ok());
}

TEST(RegistryIdsTaskIdTest, NewTaskIdsDiffer) {
  // 32 random bits per second: two collisions among 1000 ids are
  // practically impossible (p ~ 1e-8), one is merely unlikely.
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(NewTaskId());
  EXPECT_GE(ids.size(), 999u);
}

TEST(RegistryIdsIdValidationTest, PathsAndSeparatorsAreRejected) {
  for (const char* id :
       {"", ".", "..", "../x", "../../etc", "a/b", "/abs", "a.b", "a:b", "a.b:c", "-leading-dash",
        "_leading_underscore", "a b", "a\nb", "a\\b", "tâche", "x/../y", "TASK-1.json"}) {
    EXPECT_TRUE(ValidateTaskId(id).Is(Status::Code::kInvalidArgument)) << id;
    EXPECT_TRUE(ValidateAgentId(id).Is(Status::Code::kInvalidArgument)) << id;
  }
}

TEST(RegistryIdsIdValidationTest, LettersDigitsDashesAndUnderscoresAreAccepted) {
  for (const char* id : {"TASK-20261127-034936-0123abcd", "worker-034936-abc123", "a", "9", "a_b-c",
                         "MixedCase_1"}) {
    EXPECT_TRUE(ValidateTaskId(id).ok()) << id;
    EXPECT_TRUE(ValidateAgentId(id).ok()) << id;
  }
}

TEST(RegistryIdsIdValidationTest, IdsLongerThan128CharactersAreRejected) {
  EXPECT_TRUE(ValidateAgentId(std::string(128, 'a')).ok());
  EXPECT_FALSE(ValidateAgentId(std::string(129, 'a')).ok());
}

TEST(RegistryIdsIdValidationTest, MessageQuotesTheIdAndSaysWhatIsAllowed) {
  Status status = ValidateTaskId("a.b:c");
  EXPECT_THAT(status.message(), ::testing::HasSubstr("\"a.b:c\""));
  EXPECT_THAT(status.message(), ::testing::HasSubstr("letters, digits"));
}

TEST(RegistryIdsAgentTypeTest, SafePrefixDropsEverythingButLettersDigitsAndUnderscores) {
  EXPECT_EQ(SafeTypePrefix("../../x"), "x");
  EXPECT_EQ(SafeTypePrefix("a.b:c"), "a-b-c");
  EXPECT_EQ(SafeTypePrefix("Code Reviewer"), "code-reviewer");
  EXPECT_EQ(SafeTypePrefix("test_runner"), "test_runner");
  EXPECT_EQ(SafeTypePrefix("..."), "agent");
  EXPECT_EQ(SafeTypePrefix(std::string(100, 'z')).size(), 40u);
}

TEST(RegistryIdsAgentTypeTest, NewAgentIdFromUnsafeTypesIsAValidId) {
  const std::pair<const char*, const char*> cases[] = {
      {"../../x", "x-[0-9]{6}-[0-9a-f]{6}"},
      {"a.b:c", "a-b-c-[0-9]{6}-[0-9a-f]{6}"},
      {"/etc/passwd", "etc-passwd-[0-9]{6}-[0-9a-f]{6}"},
      {"tester", "tester-[0-9]{6}-[0-9a-f]{6}"},
  };
  for (const auto& [type, pattern] : cases) {
    std::string id = NewAgentId(type);
    EXPECT_TRUE(std::regex_match(id, std::regex(pattern))) << type << " -> " << id;
    EXPECT_EQ(id.find_first_of("./:"), std::string::npos) << id;
    EXPECT_TRUE(ValidateAgentId(id).ok()) << id;
  }
}

TEST(RegistryIdsAgentTypeTest, NewAgentIdsDiffer) {
  // 24 random bits per second: a rare collision is expected (admission
  // refuses a taken id), two among 100 ids are not (p ~ 1e-7).
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.insert(NewAgentId("worker"));
  EXPECT_GE(ids.size(), 99u);
}

TEST(RegistryIdsAgentTypeTest, TypesWithoutLettersOrWithControlCharactersAreRejected) {
  for (const char* type : {"", "...", "../..", "::", "a\nb", "tab\there", "bell\a"}) {
    EXPECT_TRUE(ValidateAgentType(type).Is(Status::Code::kInvalidArgument)) << type;
  }
  EXPECT_FALSE(ValidateAgentType(std::string(129, 'a')).ok());
}

TEST(RegistryIdsAgentTypeTest, FreeTextTypesAreAccepted) {
  for (const char* type : {"../../x", "a.b:c", "code reviewer", "tester", "QA/Lead"}) {
    EXPECT_TRUE(ValidateAgentType(type).ok()) << type;
  }
}

}  // namespace
}  // namespace herd::registry

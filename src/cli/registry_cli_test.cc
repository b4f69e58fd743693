// The registry setting on the command line: HERD_REGISTRY / --registry
// select PostgreSQL, `herd registry migrate` creates its schema, and every
// command that still needs the workspace's files refuses by name instead of
// using them. A real server (the ctest fixture PgServer).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "agents/testing_util_for_test.h"
#include "registry/pg_testing_for_test.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;

class RegistryCliTest : public HerdTest {
 protected:
  void SetUp() override {
    HerdTest::SetUp();
    if (!database_.available()) {
      GTEST_SKIP() << "no PostgreSQL server: run under ctest (the PgServer fixture)";
    }
  }
  RunOptions WithRegistry(const std::string& setting) {
    RunOptions options;
    options.environment.push_back({"HERD_REGISTRY", setting});
    return options;
  }
  registry::pg_test::TestDatabase database_;
};

TEST_F(RegistryCliTest, MigrateCreatesTheSchemaOnceAndSaysSo) {
  CommandResult first = Herd({"registry", "migrate"}, WithRegistry(database_.conninfo()));
  ASSERT_EQ(first.exit_code, 0) << first.Describe();
  EXPECT_THAT(first.out, HasSubstr("schema migrated from version 0 to 2"));
  CommandResult second =
      Herd({"registry", "migrate", "--json"}, WithRegistry(database_.conninfo()));
  ASSERT_EQ(second.exit_code, 0) << second.Describe();
  EXPECT_EQ(second.Json()["schema_version_before"], 2);
}

TEST_F(RegistryCliTest, ACommandThatNeedsTheWorkspaceRefusesByNameAndTouchesNoFile) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"task", "list"}, {"task", "create", "a task"}, {"serve"}}) {
    CommandResult result = Herd(args, WithRegistry(database_.conninfo()));
    EXPECT_EQ(result.exit_code, 1) << result.Describe();
    EXPECT_THAT(result.err, HasSubstr("herd " + args[0]));
    EXPECT_THAT(result.err, HasSubstr("does not work with the PostgreSQL registry yet"));
  }
  EXPECT_FALSE(std::filesystem::exists(workspace())) << "no local files used";
  // --registry works as the variable does.
  CommandResult flag = Herd({"task", "list", "--registry", database_.conninfo()});
  EXPECT_EQ(flag.exit_code, 1) << flag.Describe();
  EXPECT_THAT(flag.err, HasSubstr("herd task list"));
}

TEST_F(RegistryCliTest, ASettingThatIsNeitherIsAUsageError) {
  CommandResult result = Herd({"task", "list"}, WithRegistry("postgresq://typo/herd"));
  EXPECT_EQ(result.exit_code, 2) << result.Describe();
  EXPECT_THAT(result.err, HasSubstr("HERD_REGISTRY"));
}

}  // namespace
}  // namespace herd::test_util

// Parameters declared once (parameters.h) and the request tables built on
// them (requests.h): the schema and help each table yields, every kind of
// refusal CheckArguments gives, and requests filled from arguments with the
// struct's defaults where none is given.
#include "orchestrator/requests.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>

#include "agents/backend.h"

namespace herd {
namespace {

using ::testing::HasSubstr;

// A table with one parameter of each kind.
const ParameterList& Sample() {
  static const ParameterList parameters = {
      {.name = "id",
       .type = ParameterType::kString,
       .description = "the id",
       .required = true,
       .cli = "id"},
      {.name = "count",
       .type = ParameterType::kInteger,
       .description = "how many",
       .default_value = 3,
       .minimum = 1,
       .maximum = 10,
       .cli = "--count"},
      {.name = "price",
       .type = ParameterType::kNumber,
       .description = "what it costs",
       .minimum = 0,
       .exclusive_minimum = true,
       .cli = "--price"},
      {.name = "color",
       .type = ParameterType::kString,
       .description = "its color",
       .default_value = "red",
       .values = {"red", "green"},
       .max_length = 5},
      {.name = "flag", .type = ParameterType::kBoolean, .description = "on or off"},
      {.name = "words", .type = ParameterType::kStringList, .description = "some words"},
      {.name = "data", .type = ParameterType::kObject, .description = "details"},
  };
  return parameters;
}

std::string Refusal(const json& arguments, ArgumentNames names = ArgumentNames::kJson) {
  Result<CheckedArguments> checked = CheckArguments(Sample(), arguments, names);
  return checked.ok() ? "accepted" : checked.status().message();
}

// ---- schema and help -------------------------------------------------------------

TEST(ParametersTest, InputSchemaStatesEveryRowAndTheRequiredOnes) {
  json schema = InputSchema(Sample());
  EXPECT_EQ(schema["type"], "object");
  EXPECT_EQ(schema["required"], json({"id"}));
  const json& properties = schema["properties"];
  EXPECT_EQ(properties.size(), Sample().size());
  EXPECT_EQ(properties["count"], json({{"type", "integer"},
                                       {"description", "how many (default 3)"},
                                       {"default", 3},
                                       {"minimum", 1},
                                       {"maximum", 10}}));
  EXPECT_EQ(properties["price"]["exclusiveMinimum"], 0);
  EXPECT_FALSE(properties["price"].contains("minimum"));
  EXPECT_EQ(properties["color"]["enum"], json({"red", "green"}));
  EXPECT_EQ(properties["color"]["maxLength"], 5);
  EXPECT_EQ(properties["color"]["description"], "its color (at most 5 bytes; default red)");
  EXPECT_EQ(properties["flag"]["type"], "boolean");
  EXPECT_EQ(properties["words"]["items"], json({{"type", "string"}}));
  EXPECT_EQ(properties["data"]["type"], "object");
}

TEST(ParametersTest, NoRequiredListWhenNothingIsRequired) {
  EXPECT_FALSE(InputSchema(HealthRequest::Parameters()).contains("required"));
}

TEST(ParametersTest, HelpTextAddsValuesRangeAndDefault) {
  const ParameterList& sample = Sample();
  EXPECT_EQ(HelpText(sample[0]), "the id");
  EXPECT_EQ(HelpText(sample[1]), "how many (1-10; default 3)");
  EXPECT_EQ(HelpText(sample[2]), "what it costs (more than 0)");
  EXPECT_EQ(HelpText(sample[3]), "its color (red or green; at most 5 bytes; default red)");
  EXPECT_EQ(HelpText(sample[6]), "details (a JSON object)");
}

// ---- checks ----------------------------------------------------------------------

TEST(ParametersTest, MissingRequiredArgumentIsNamed) {
  EXPECT_EQ(Refusal(json::object()), "missing required argument \"id\": the id");
  EXPECT_EQ(Refusal(nullptr), "missing required argument \"id\": the id");
  // null is absent, as MCP clients send it for "not given".
  EXPECT_EQ(Refusal({{"id", nullptr}}), "missing required argument \"id\": the id");
}

TEST(ParametersTest, WrongTypeSaysWhatIsExpectedAndWhatCame) {
  EXPECT_EQ(Refusal({{"id", 42}}), "argument \"id\" must be a string, not 42");
  EXPECT_EQ(Refusal({{"id", "x"}, {"count", "5"}}),
            "argument \"count\" must be an integer in 1-10, not \"5\"");
  EXPECT_EQ(Refusal({{"id", "x"}, {"count", 2.5}}),
            "argument \"count\" must be an integer in 1-10, not 2.5");
  EXPECT_EQ(Refusal({{"id", "x"}, {"flag", "yes"}}),
            "argument \"flag\" must be true or false, not \"yes\"");
  EXPECT_EQ(Refusal({{"id", "x"}, {"words", {"a", 1}}}),
            "argument \"words\" must be a list of strings, not [\"a\",1]");
  EXPECT_EQ(Refusal({{"id", "x"}, {"data", json::array()}}),
            "argument \"data\" must be an object, not []");
}

TEST(ParametersTest, OutOfRangeSaysTheRange) {
  EXPECT_EQ(Refusal({{"id", "x"}, {"count", 11}}),
            "argument \"count\" must be an integer in 1-10, not 11");
  EXPECT_EQ(Refusal({{"id", "x"}, {"count", 0}}),
            "argument \"count\" must be an integer in 1-10, not 0");
  EXPECT_EQ(Refusal({{"id", "x"}, {"count", 18446744073709551615ULL}}),
            "argument \"count\" must be an integer in 1-10, not 18446744073709551615");
  EXPECT_EQ(Refusal({{"id", "x"}, {"count", 1e300}}),
            "argument \"count\" must be an integer in 1-10, not 1e+300");
  EXPECT_EQ(Refusal({{"id", "x"}, {"price", 0}}),
            "argument \"price\" must be a number more than 0, not 0");
  EXPECT_EQ(Refusal({{"id", "x"}, {"price", -0.5}}),
            "argument \"price\" must be a number more than 0, not -0.5");
}

TEST(ParametersTest, ValueNotAmongTheValuesListsThem) {
  EXPECT_EQ(Refusal({{"id", "x"}, {"color", "blue"}}),
            "argument \"color\" must be one of red, green, not \"blue\"");
}

TEST(ParametersTest, CommandLineNamesTheOptionAsTyped) {
  EXPECT_EQ(Refusal({{"id", "x"}, {"count", 11}}, ArgumentNames::kCommandLine),
            "--count must be an integer in 1-10, not 11");
  // A parameter the command line does not spell keeps its JSON name.
  EXPECT_EQ(Refusal({{"id", "x"}, {"color", "blue"}}, ArgumentNames::kCommandLine),
            "argument \"color\" must be one of red, green, not \"blue\"");
}

TEST(ParametersTest, ValidArgumentsAreKeptAndOthersIgnored) {
  Result<CheckedArguments> checked =
      CheckArguments(Sample(), {{"id", "x"}, {"count", 4.0}, {"price", 0.01}, {"extra", true}});
  ASSERT_TRUE(checked.ok()) << checked.status().message();
  // 4.0 is the integer 4; an undeclared argument is dropped.
  EXPECT_EQ(checked->values(), json({{"id", "x"}, {"count", 4}, {"price", 0.01}}));
  int count = 0;
  checked->Get("count", &count);
  EXPECT_EQ(count, 4);
  std::string color = "unchanged";
  checked->Get("color", &color);
  EXPECT_EQ(color, "unchanged");  // absent: the struct's default stays
}

TEST(ParametersTest, ReadingAnUndeclaredOrMistypedParameterIsAProgrammingError) {
  Result<CheckedArguments> checked = CheckArguments(Sample(), {{"id", "x"}});
  ASSERT_TRUE(checked.ok());
  std::string text;
  int number = 0;
  EXPECT_THROW(checked->Get("nope", &text), std::logic_error);
  EXPECT_THROW(checked->Get("id", &number), std::logic_error);
}

// ---- the request tables -----------------------------------------------------------

struct Table {
  const char* request;
  const ParameterList& parameters;
};

std::vector<Table> AllTables() {
  return {{"CreateTaskRequest", CreateTaskRequest::Parameters()},
          {"LimitsUpdate", LimitsUpdate::Parameters()},
          {"OutputRequest", OutputRequest::Parameters()},
          {"StatusRequest", StatusRequest::Parameters()},
          {"DeployAgentRequest", DeployAgentRequest::Parameters()},
          {"SpawnRequest", SpawnRequest::Parameters()},
          {"KillRequest", KillRequest::Parameters()},
          {"ProgressReport", ProgressReport::Parameters()},
          {"FindingReport", FindingReport::Parameters()},
          {"HealthRequest", HealthRequest::Parameters()}};
}

TEST(RequestsTest, EveryTableHasUniqueNamesSpellingsAndDescriptions) {
  for (const Table& table : AllTables()) {
    std::set<std::string> names, spellings;
    for (const ParameterSpec& parameter : table.parameters) {
      EXPECT_TRUE(names.insert(parameter.name).second) << table.request << " " << parameter.name;
      if (parameter.cli != nullptr) {
        EXPECT_TRUE(spellings.insert(parameter.cli).second)
            << table.request << " " << parameter.cli;
      }
      EXPECT_GT(parameter.description.size(), 3u) << table.request << " " << parameter.name;
      EXPECT_TRUE(parameter.values.empty() || parameter.type == ParameterType::kString)
          << table.request << " " << parameter.name;
    }
  }
}

// A valid value for `parameter`.
json SampleValue(const ParameterSpec& parameter) {
  switch (parameter.type) {
    case ParameterType::kString:
      return parameter.values.empty() ? json("x") : json(parameter.values.back());
    case ParameterType::kInteger:
    case ParameterType::kNumber: return parameter.maximum.value_or(1);
    case ParameterType::kBoolean: return true;
    case ParameterType::kStringList: return json({"a"});
    case ParameterType::kObject: return json::object();
    case ParameterType::kObjectList: return json::array();
  }
  return nullptr;
}

json EveryArgument(const ParameterList& parameters) {
  json arguments = json::object();
  for (const ParameterSpec& parameter : parameters) {
    arguments[parameter.name] = SampleValue(parameter);
  }
  return arguments;
}

// FromArguments reads every row it declares (a misspelt name would throw).
TEST(RequestsTest, EveryRequestAcceptsEachOfItsParameters) {
  EXPECT_TRUE(
      CreateTaskRequest::FromArguments(EveryArgument(CreateTaskRequest::Parameters())).ok());
  EXPECT_TRUE(LimitsUpdate::FromArguments(EveryArgument(LimitsUpdate::Parameters())).ok());
  EXPECT_TRUE(OutputRequest::FromArguments(EveryArgument(OutputRequest::Parameters())).ok());
  EXPECT_TRUE(StatusRequest::FromArguments(EveryArgument(StatusRequest::Parameters())).ok());
  EXPECT_TRUE(
      DeployAgentRequest::FromArguments(EveryArgument(DeployAgentRequest::Parameters())).ok());
  EXPECT_TRUE(SpawnRequest::FromArguments(EveryArgument(SpawnRequest::Parameters())).ok());
  EXPECT_TRUE(KillRequest::FromArguments(EveryArgument(KillRequest::Parameters())).ok());
  EXPECT_TRUE(ProgressReport::FromArguments(EveryArgument(ProgressReport::Parameters())).ok());
  EXPECT_TRUE(FindingReport::FromArguments(EveryArgument(FindingReport::Parameters())).ok());
  EXPECT_TRUE(HealthRequest::FromArguments(EveryArgument(HealthRequest::Parameters())).ok());
}

const ParameterSpec& Row(const ParameterList& parameters, const std::string& name) {
  for (const ParameterSpec& parameter : parameters) {
    if (parameter.name == name) return parameter;
  }
  throw std::runtime_error("no parameter " + name);
}

// The rows refer to the constants; these would catch a copied number.
TEST(RequestsTest, RowsShowTheConstantsTheyDocument) {
  const ParameterSpec& grace = Row(KillRequest::Parameters(), "grace_seconds");
  EXPECT_EQ(grace.maximum, agents::kMaxKillGraceSeconds);
  EXPECT_EQ(grace.default_value, std::chrono::duration<double>(agents::kDefaultKillGrace).count());
  EXPECT_EQ(Row(FindingReport::Parameters(), "severity").values, registry::FindingSeverities());
  EXPECT_EQ(Row(DeployAgentRequest::Parameters(), "backend").values, agents::BackendNames());
  EXPECT_EQ(Row(SpawnRequest::Parameters(), "backend").values, agents::BackendNames());
  EXPECT_EQ(Row(OutputRequest::Parameters(), "filter").max_length, OutputRequest::kMaxFilterBytes);
  EXPECT_EQ(Row(OutputRequest::Parameters(), "max_bytes").maximum, OutputRequest::kLargestMaxBytes);
  EXPECT_EQ(Row(ProgressReport::Parameters(), "message").max_length,
            registry::kMaxReportMessageBytes);
  const registry::Limits limits;
  EXPECT_EQ(Row(CreateTaskRequest::Parameters(), "max_agents").default_value, limits.max_agents);
  EXPECT_EQ(Row(CreateTaskRequest::Parameters(), "max_concurrent").default_value,
            limits.max_concurrent);
  EXPECT_EQ(Row(CreateTaskRequest::Parameters(), "max_depth").default_value, limits.max_depth);
  // An update shows no default: what is not given stays as it is.
  EXPECT_TRUE(Row(LimitsUpdate::Parameters(), "max_agents").default_value.is_null());
}

TEST(RequestsTest, AbsentArgumentsLeaveTheStructsDefaults) {
  Result<KillRequest> kill = KillRequest::FromArguments({{"task_id", "T"}, {"agent_id", "a"}});
  ASSERT_TRUE(kill.ok()) << kill.status().message();
  EXPECT_EQ(kill->grace, agents::kDefaultKillGrace);
  EXPECT_EQ(kill->reason, "Manual termination");
  Result<ProgressReport> report = ProgressReport::FromArguments(
      {{"task_id", "T"}, {"agent_id", "a"}, {"status", "working"}, {"message", "m"}});
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->progress, 0);
  Result<CreateTaskRequest> task = CreateTaskRequest::FromArguments({{"description", "d"}});
  ASSERT_TRUE(task.ok());
  EXPECT_EQ(task->priority, "P2");
  EXPECT_FALSE(task->max_agents.has_value());  // the environment's, at creation
  EXPECT_TRUE(task->context.empty());
}

TEST(RequestsTest, GivenArgumentsFillTheStruct) {
  Result<KillRequest> kill =
      KillRequest::FromArguments({{"task_id", "T"}, {"agent_id", "a"}, {"grace_seconds", 1.5}});
  ASSERT_TRUE(kill.ok());
  EXPECT_EQ(kill->grace, std::chrono::milliseconds(1500));

  Result<CreateTaskRequest> task = CreateTaskRequest::FromArguments(
      {{"description", "d"},
       {"max_agents", 7},
       {"max_cost_usd", 2.5},
       {"agent_timeout_seconds", 60},
       {"success_criteria", {"tests pass"}},
       {"conversation_history", {{{"role", "user"}, {"content", "hi"}}}}});
  ASSERT_TRUE(task.ok()) << task.status().message();
  EXPECT_EQ(task->max_agents, 7);
  EXPECT_EQ(task->budget.max_cost_usd, 2.5);
  EXPECT_EQ(task->timeouts.wall_clock_seconds, 60);
  EXPECT_EQ(task->context["success_criteria"], json({"tests pass"}));
  EXPECT_EQ(task->context["conversation_history"][0]["role"], "user");

  Result<OutputRequest> output = OutputRequest::FromArguments(
      {{"task_id", "T"}, {"agent_id", "a"}, {"tail", 5}, {"aggressive_truncate", true}});
  ASSERT_TRUE(output.ok());
  EXPECT_EQ(output->tail, 5u);
  EXPECT_EQ(output->response_format, "compact");
  EXPECT_FALSE(output->max_bytes.has_value());

  Result<SpawnRequest> spawn = SpawnRequest::FromArguments({{"task_id", "T"},
                                                            {"parent_agent_id", "p"},
                                                            {"child_agent_type", "c"},
                                                            {"child_prompt", "go"},
                                                            {"model", "m"}});
  ASSERT_TRUE(spawn.ok());
  EXPECT_EQ(spawn->parent, "p");
  EXPECT_FALSE(spawn->backend_given);
  EXPECT_TRUE(spawn->model_given);
}

TEST(RequestsTest, RefusalsNameTheArgumentAndTheAllowedValues) {
  Result<KillRequest> kill =
      KillRequest::FromArguments({{"task_id", "T"}, {"agent_id", "a"}, {"grace_seconds", 601}});
  ASSERT_FALSE(kill.ok());
  EXPECT_EQ(kill.status().message(),
            "argument \"grace_seconds\" must be a number in 0-600, not 601");
  Result<CreateTaskRequest> task =
      CreateTaskRequest::FromArguments({{"description", "d"}, {"priority", "P9"}});
  ASSERT_FALSE(task.ok());
  EXPECT_THAT(task.status().message(), HasSubstr("one of P0, P1, P2, P3, P4, not \"P9\""));
  Result<FindingReport> finding = FindingReport::FromArguments(
      {{"task_id", "T"}, {"agent_id", "a"}, {"finding_type", "issue"}, {"message", "m"}});
  ASSERT_FALSE(finding.ok());
  EXPECT_THAT(finding.status().message(), HasSubstr("missing required argument \"severity\""));
}

}  // namespace
}  // namespace herd

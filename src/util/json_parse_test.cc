#include "util/json_parse.h"

#include <gtest/gtest.h>

#include <string>

namespace herd {
namespace {

using nlohmann::json;

std::string NestedArrays(int depth, const std::string& inside = "1") {
  return std::string(static_cast<size_t>(depth), '[') + inside +
         std::string(static_cast<size_t>(depth), ']');
}

TEST(ParseJsonTest, ParsesOrdinaryDocuments) {
  JsonParseFailure failure = JsonParseFailure::kSyntax;
  Result<json> parsed = ParseJson(R"({"a":[1,2,{"b":"c"}],"d":null,"e":1.5})", 64, &failure);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(failure, JsonParseFailure::kNone);
  EXPECT_EQ((*parsed)["a"][2]["b"], "c");
  EXPECT_EQ((*parsed)["e"], 1.5);
}

TEST(ParseJsonTest, NestingUpToTheLimitParses) {
  Result<json> parsed = ParseJson(NestedArrays(64), 64);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const json* inner = &*parsed;
  for (int level = 0; level < 64; ++level) inner = &(*inner)[0];
  EXPECT_EQ(*inner, 1);
}

TEST(ParseJsonTest, OneLevelPastTheLimitIsRefused) {
  JsonParseFailure failure = JsonParseFailure::kNone;
  Result<json> parsed = ParseJson(NestedArrays(65), 64, &failure);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(failure, JsonParseFailure::kTooDeep);
  EXPECT_NE(parsed.status().message().find("deeper than 64 levels"), std::string::npos)
      << parsed.status().message();
}

TEST(ParseJsonTest, ObjectsCountAsLevelsToo) {
  std::string text;
  for (int level = 0; level < 10; ++level) text += "{\"k\":";
  text += "[]";
  for (int level = 0; level < 10; ++level) text += "}";
  EXPECT_TRUE(ParseJson(text, 11).ok());
  JsonParseFailure failure = JsonParseFailure::kNone;
  EXPECT_FALSE(ParseJson(text, 10, &failure).ok());
  EXPECT_EQ(failure, JsonParseFailure::kTooDeep);
}

TEST(ParseJsonTest, HundredThousandLevelsAreAnErrorNotACrash) {
  JsonParseFailure failure = JsonParseFailure::kNone;
  Result<json> parsed = ParseJson(NestedArrays(100000), 64, &failure);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(failure, JsonParseFailure::kTooDeep);
  // Unterminated too: the check stops at the first level past the limit.
  EXPECT_FALSE(ParseJson(std::string(1000000, '['), 64, &failure).ok());
  EXPECT_EQ(failure, JsonParseFailure::kTooDeep);
}

TEST(ParseJsonTest, BracketsInsideStringsAreNotNesting) {
  std::string text = "[\"" + std::string(1000, '[') + "\"]";
  Result<json> parsed = ParseJson(text, 1);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ((*parsed)[0].get<std::string>().size(), 1000u);
}

TEST(ParseJsonTest, NumberBeyondADoubleIsItsOwnFailure) {
  for (const char* number : {"1e400", "-1e400"}) {
    JsonParseFailure failure = JsonParseFailure::kNone;
    Result<json> parsed = ParseJson(std::string(R"({"id":7,"x":)") + number + "}", 64, &failure);
    ASSERT_FALSE(parsed.ok()) << number;
    EXPECT_EQ(failure, JsonParseFailure::kNumberOutOfRange) << number;
    EXPECT_NE(parsed.status().message().find(number), std::string::npos)
        << parsed.status().message();
  }
  // Large but representable numbers parse.
  EXPECT_TRUE(
      ParseJson("[1e308, 99999999999999999999999999999999, 18446744073709551616]", 64).ok());
}

TEST(ParseJsonTest, SyntaxErrorsAndInvalidUtf8AreSyntaxFailures) {
  for (std::string text : {std::string("{not json"), std::string("[1,2"), std::string(""),
                           std::string("[\"\xff\"]"), std::string("[1] [2]")}) {
    JsonParseFailure failure = JsonParseFailure::kNone;
    Result<json> parsed = ParseJson(text, 64, &failure);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(failure, JsonParseFailure::kSyntax) << text;
    EXPECT_FALSE(parsed.status().message().empty());
  }
}

TEST(ParseJsonTest, SyntaxErrorMessagesStayShort) {
  std::string text = "[\"" + std::string(1 << 20, 'x') + "\xff\"]";
  Result<json> parsed = ParseJson(text, 64);
  ASSERT_FALSE(parsed.ok());
  EXPECT_LT(parsed.status().message().size(), 300u);
}

TEST(FindTopLevelScalarTest, FindsStringAndIntegerIds) {
  EXPECT_EQ(FindTopLevelScalar(R"({"jsonrpc":"2.0","id":7,"method":"x"})", "id"), json(7));
  EXPECT_EQ(FindTopLevelScalar(R"(  { "id" : "a \"quoted\" id" } )", "id"),
            json("a \"quoted\" id"));
  EXPECT_EQ(FindTopLevelScalar(R"({"id":-12})", "id"), json(-12));
  EXPECT_EQ(FindTopLevelScalar(R"({"id":null})", "id"), json(nullptr));
}

TEST(FindTopLevelScalarTest, IgnoresNestedMembersAndLookalikesInStrings) {
  EXPECT_EQ(FindTopLevelScalar(R"({"params":{"id":1},"x":"\"id\":2","id":3})", "id"), json(3));
  EXPECT_EQ(FindTopLevelScalar(R"({"params":{"id":1}})", "id"), std::nullopt);
  EXPECT_EQ(FindTopLevelScalar(R"({"a":["id",{"id":1}],"b":"id"})", "id"), std::nullopt);
  EXPECT_EQ(FindTopLevelScalar(R"({"a":"id","id":5})", "id"), json(5));
}

TEST(FindTopLevelScalarTest, WorksWhereTheDocumentDoesNotParse) {
  std::string deep = R"({"jsonrpc":"2.0","id":"deep","params":)" + NestedArrays(200000) + "}";
  EXPECT_EQ(FindTopLevelScalar(deep, "id"), json("deep"));
  std::string id_after = R"({"params":)" + NestedArrays(1000) + R"(,"id":9})";
  EXPECT_EQ(FindTopLevelScalar(id_after, "id"), json(9));
  EXPECT_EQ(FindTopLevelScalar(R"({"id":7,"params":{"tail":1e400}})", "id"), json(7));
  EXPECT_EQ(FindTopLevelScalar(R"({"params":{"tail":1e400},"id":"late"})", "id"), json("late"));
  EXPECT_EQ(FindTopLevelScalar(R"({"id":8,"params":[[[)", "id"), json(8));
}

TEST(FindTopLevelScalarTest, NothingForContainersBadValuesOrNonObjects) {
  EXPECT_EQ(FindTopLevelScalar(R"({"id":{"a":1}})", "id"), std::nullopt);
  EXPECT_EQ(FindTopLevelScalar(R"({"id":[1]})", "id"), std::nullopt);
  EXPECT_EQ(FindTopLevelScalar(R"({"id":1e400})", "id"), std::nullopt);
  EXPECT_EQ(FindTopLevelScalar(R"({"id":"unterminated)", "id"), std::nullopt);
  EXPECT_EQ(FindTopLevelScalar(R"([{"id":1}])", "id"), std::nullopt);
  EXPECT_EQ(FindTopLevelScalar("", "id"), std::nullopt);
  EXPECT_EQ(FindTopLevelScalar(R"({"id")", "id"), std::nullopt);
}

TEST(FindTopLevelScalarTest, LastDuplicateWinsAsInTheParser) {
  EXPECT_EQ(FindTopLevelScalar(R"({"id":1,"id":2})", "id"), json(2));
  EXPECT_EQ(ParseJson(R"({"id":1,"id":2})", 64)->at("id"), json(2));
}

}  // namespace
}  // namespace herd

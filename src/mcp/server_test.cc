// `herd serve`'s JSON-RPC handling through ServeOn: lines in, lines out,
// on descriptors (memfds), one session per call. The handshake, listing,
// every protocol error (-32700 parse, -32600 invalid request, -32601
// unknown method, -32602 invalid params, -32002 unknown resource), the
// depth limit, notifications that get no reply, tool failures that are tool
// results rather than protocol errors, and resources. Resource
// subscriptions run in a live session (LiveSession: pipes, the server on a
// thread) so a test can commit a change and then wait for its
// notification. One test runs the real binary to check that its stdout
// carries JSON-RPC lines only, even while an agent it deployed prints.
#include "mcp/server.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agents/testing_util_for_test.h"
#include "orchestrator/orchestrator.h"
#include "registry/pg_testing_for_test.h"
#include "util/json_parse.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;

// The bytes of a memfd holding `text`, rewound for reading.
int MemfdWith(const std::string& text) {
  int fd = memfd_create("herd-server-test", MFD_CLOEXEC);
  if (fd < 0) throw std::runtime_error("memfd_create failed");
  size_t written = 0;
  while (written < text.size()) {
    ssize_t result = write(fd, text.data() + written, text.size() - written);
    if (result <= 0) throw std::runtime_error("cannot write the memfd");
    written += static_cast<size_t>(result);
  }
  lseek(fd, 0, SEEK_SET);
  return fd;
}

std::string ReadAll(int fd) {
  lseek(fd, 0, SEEK_SET);
  std::string text;
  char buffer[65536];
  for (ssize_t got; (got = read(fd, buffer, sizeof buffer)) > 0;) {
    text.append(buffer, static_cast<size_t>(got));
  }
  return text;
}

json Request(const json& id, const std::string& method, const json& params = json::object()) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
}

json Notification(const std::string& method, const json& params = json::object()) {
  return {{"jsonrpc", "2.0"}, {"method", method}, {"params", params}};
}

json Initialize(const json& id = 0, const std::string& version = "2025-06-18") {
  return Request(id, "initialize",
                 {{"protocolVersion", version},
                  {"capabilities", json::object()},
                  {"clientInfo", {{"name", "server_test"}, {"version", "1"}}}});
}

json CallTool(const json& id, const std::string& name, const json& arguments) {
  return Request(id, "tools/call", {{"name", name}, {"arguments", arguments}});
}

// Every output line must be one JSON-RPC 2.0 message.
std::vector<json> ParseReplies(const std::string& output) {
  std::vector<json> replies;
  size_t begin = 0;
  for (size_t end = output.find('\n'); end != std::string::npos;
       begin = end + 1, end = output.find('\n', begin)) {
    std::string line = output.substr(begin, end - begin);
    json message = json::parse(line, nullptr, false);
    EXPECT_FALSE(message.is_discarded()) << "not JSON: " << line;
    if (message.is_discarded()) continue;
    EXPECT_EQ(message.value("jsonrpc", ""), "2.0") << line;
    replies.push_back(std::move(message));
  }
  EXPECT_EQ(begin, output.size()) << "output does not end with a whole line: " << output;
  return replies;
}

// A session the test talks to while it runs: ServeOn on a thread of its
// own, fed through one pipe and read through another, so that the test can
// act between messages. Every message read is kept, in order.
class LiveSession {
 public:
  using Match = std::function<bool(const json&)>;

  explicit LiveSession(const std::string& workspace) {
    if (pipe2(input_, O_CLOEXEC) != 0 || pipe2(output_, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe2 failed");
    }
    server_ = std::thread([this, workspace] {
      exit_code_ = mcp::ServeOn(workspace, input_[0], output_[1]);
      close(output_[1]);  // the reader sees EOF
    });
  }
  ~LiveSession() {
    Finish();
    close(input_[0]);
    close(output_[0]);
  }

  void Write(const json& message) {
    std::string line = message.dump() + "\n";
    for (size_t written = 0; written < line.size();) {
      ssize_t result = write(input_[1], line.data() + written, line.size() - written);
      if (result <= 0) throw std::runtime_error("cannot write to the server");
      written += static_cast<size_t>(result);
    }
  }

  // Reads until a message `wanted` accepts and returns it; a failure (and
  // null) if none comes within the generous deadline.
  json ReadUntil(const Match& wanted, const std::string& what) {
    const Clock::time_point deadline = DeadlineIn();
    while (std::optional<json> message = Next(deadline)) {
      received_.push_back(*message);
      if (wanted(*message)) return *message;
    }
    ADD_FAILURE() << "no " << what << " within " << kGenerousDeadline.count() << " s";
    return nullptr;
  }

  // Sends a request and returns its reply.
  json Call(const json& id, const std::string& method, const json& params = json::object()) {
    Write(Request(id, method, params));
    return ReadUntil(
        [&](const json& message) { return message.contains("id") && message["id"] == id; },
        "reply to " + method);
  }

  size_t Count(const Match& match) const {
    return static_cast<size_t>(std::count_if(received_.begin(), received_.end(), match));
  }

  // Closes the server's input (EOF) and waits for ServeOn to return.
  int Finish() {
    if (input_[1] >= 0) {
      close(input_[1]);
      input_[1] = -1;
    }
    if (server_.joinable()) server_.join();
    return exit_code_;
  }

 private:
  // The next line as JSON, or nullopt at the deadline or EOF.
  std::optional<json> Next(Clock::time_point deadline) {
    for (;;) {
      size_t end = pending_.find('\n');
      if (end != std::string::npos) {
        json message = json::parse(pending_.substr(0, end), nullptr, false);
        pending_.erase(0, end + 1);
        EXPECT_FALSE(message.is_discarded()) << "a line that is not JSON";
        return message;
      }
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return std::nullopt;
      pollfd readable = {output_[0], POLLIN, 0};
      if (poll(&readable, 1, static_cast<int>(left)) <= 0) continue;
      char buffer[65536];
      ssize_t got = read(output_[0], buffer, sizeof buffer);
      if (got <= 0) return std::nullopt;
      pending_.append(buffer, static_cast<size_t>(got));
    }
  }

  int input_[2] = {-1, -1};
  int output_[2] = {-1, -1};
  std::thread server_;
  int exit_code_ = -1;
  std::string pending_;
  std::vector<json> received_;
};

LiveSession::Match UpdatedFor(const std::string& uri) {
  return [uri](const json& message) {
    return !message.contains("id") &&
           message.value("method", "") == "notifications/resources/updated" &&
           message["params"] == json{{"uri", uri}};
  };
}

class ServerTest : public HerdTest {
 protected:
  // One session: `lines` as the client's input, then EOF. Returns the
  // replies in the order written.
  std::vector<json> Session(const std::vector<std::string>& lines) {
    std::string input;
    for (const std::string& line : lines) input += line + "\n";
    int input_fd = MemfdWith(input);
    int output_fd = MemfdWith("");
    EXPECT_EQ(mcp::ServeOn(workspace(), input_fd, output_fd), 0);
    std::string output = ReadAll(output_fd);
    close(input_fd);
    close(output_fd);
    return ParseReplies(output);
  }

  std::vector<json> Session(const std::vector<json>& messages) {
    std::vector<std::string> lines;
    for (const json& message : messages) lines.push_back(message.dump());
    return Session(lines);
  }

  // The reply with `id` (tool calls are answered by workers, so replies
  // need not come in request order).
  static json ReplyTo(const std::vector<json>& replies, const json& id) {
    for (const json& reply : replies) {
      if (reply.contains("id") && reply["id"] == id && !reply.contains("method")) return reply;
    }
    ADD_FAILURE() << "no reply to id " << id.dump();
    return json::object();
  }

  static int ErrorCode(const json& reply) {
    EXPECT_TRUE(reply.contains("error")) << reply.dump();
    return reply.contains("error") ? reply["error"].value("code", 0) : 0;
  }

  // A task made in-process, for the resources.
  std::string MakeTask() {
    Orchestrator orchestrator{registry::Workspace(workspace()), registry::RegistryStores()};
    CreateTaskRequest request;
    request.description = "a task made by a server test";
    Result<json> task = orchestrator.CreateTask(request);
    EXPECT_TRUE(task.ok()) << task.status().ToString();
    return task.ok() ? task->value("task_id", "") : "";
  }

  // One committed change to `task` that no report makes: its limits.
  void Commit(const std::string& task) {
    LimitsUpdate update;
    update.task_id = task;
    update.max_agents = 30 + commits_++;
    Result<json> changed = orchestrator().UpdateLimits(update);
    ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  }

  // Returns once every change committed before the call has been notified:
  // two commits to `fence` (subscribed as its status in `session`), each
  // waited for. The second one's notification comes from a later pass of
  // the watcher than every change before the first.
  void Settle(LiveSession& session, const std::string& fence) {
    for (int i = 0; i < 2; ++i) {
      Commit(fence);
      session.ReadUntil(UpdatedFor(StatusUri(fence)), "notification for the fence task");
    }
  }

  static std::string StatusUri(const std::string& task) { return "task://" + task + "/status"; }
  static std::string TimelineUri(const std::string& task) {
    return "task://" + task + "/progress-timeline";
  }

  // Made on first use: the workspace exists from SetUp on.
  const Orchestrator& orchestrator() {
    if (!orchestrator_) {
      orchestrator_ = std::make_unique<Orchestrator>(registry::Workspace(workspace()),
                                                     registry::RegistryStores());
    }
    return *orchestrator_;
  }

 private:
  std::unique_ptr<Orchestrator> orchestrator_;
  int commits_ = 0;
};

TEST_F(ServerTest, InitializeNegotiatesTheProtocolVersion) {
  std::vector<json> replies = Session(std::vector<json>{Initialize(1, "2025-06-18")});
  ASSERT_EQ(replies.size(), 1u);
  const json& result = replies[0]["result"];
  EXPECT_EQ(replies[0]["id"], 1);
  EXPECT_EQ(result.value("protocolVersion", ""), "2025-06-18");
  EXPECT_EQ(result["serverInfo"].value("name", ""), "herd");
  EXPECT_TRUE(result["capabilities"].contains("tools")) << result.dump(2);
  EXPECT_TRUE(result["capabilities"].contains("resources")) << result.dump(2);
  EXPECT_THAT(result.value("instructions", ""), HasSubstr("create_real_task"));

  // An unknown version gets the newest; a second initialize is refused.
  replies = Session(std::vector<json>{Initialize(1, "1999-01-01"), Initialize(2)});
  EXPECT_EQ(ReplyTo(replies, 1)["result"].value("protocolVersion", ""), mcp::kProtocolVersions[0]);
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 2)), -32600);
  // initialize needs its version.
  replies = Session(std::vector<json>{Request(3, "initialize")});
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 3)), -32602);
}

TEST_F(ServerTest, RequestsBeforeInitializeAreRefusedButPingIsAnswered) {
  std::vector<json> replies =
      Session(std::vector<json>{Request(1, "tools/list"), Request(2, "ping")});
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 1)), -32600);
  EXPECT_THAT(ReplyTo(replies, 1)["error"].value("message", ""), HasSubstr("initialize"));
  EXPECT_EQ(ReplyTo(replies, 2)["result"], json::object());
}

TEST_F(ServerTest, ToolsListNamesEveryToolWithItsSchemas) {
  std::vector<json> replies = Session(std::vector<json>{Initialize(), Request(1, "tools/list")});
  json tools = ReplyTo(replies, 1)["result"]["tools"];
  std::set<std::string> names;
  for (const json& tool : tools) {
    names.insert(tool.value("name", ""));
    EXPECT_TRUE(tool.contains("inputSchema")) << tool.dump();
    EXPECT_TRUE(tool.contains("outputSchema")) << tool.dump();
  }
  EXPECT_EQ(names,
            (std::set<std::string>{"create_real_task", "deploy_headless_agent",
                                   "get_real_task_status", "get_agent_output", "kill_real_agent",
                                   "stop_task", "update_agent_progress", "report_agent_finding",
                                   "spawn_child_agent", "get_health_status", "wait_for_agents",
                                   "get_agent_diff", "merge_agent_work", "send_agent_message"}));
  // herd returns everything at once: a cursor is refused.
  replies = Session(std::vector<json>{Initialize(), Request(2, "tools/list", {{"cursor", "x"}})});
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 2)), -32602);
}

TEST_F(ServerTest, UnknownMethodIsMethodNotFound) {
  std::vector<json> replies =
      Session(std::vector<json>{Initialize(), Request("abc", "no/such/method")});
  json reply = ReplyTo(replies, "abc");
  EXPECT_EQ(ErrorCode(reply), -32601);
  EXPECT_THAT(reply["error"].value("message", ""), HasSubstr("no/such/method"));
}

TEST_F(ServerTest, MalformedJsonIsAParseErrorAndServingGoesOn) {
  std::vector<json> replies = Session(
      std::vector<std::string>{"{not json", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"",
                               "\"\xff\xfe\"", Request(9, "ping").dump()});
  ASSERT_EQ(replies.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ErrorCode(replies[i]), -32700) << replies[i].dump();
    EXPECT_TRUE(replies[i]["id"].is_null()) << replies[i].dump();
  }
  EXPECT_EQ(ReplyTo(replies, 9)["result"], json::object());
}

TEST_F(ServerTest, InvalidRequestsAreRefused) {
  std::vector<json> replies = Session(std::vector<std::string>{
      Initialize().dump(),
      R"({"jsonrpc":"1.0","id":1,"method":"ping"})",
      R"({"id":2,"method":"ping"})",
      R"({"jsonrpc":"2.0","id":3,"method":42})",
      R"({"jsonrpc":"2.0","id":{"an":"object"},"method":"ping"})",
      R"(42)",
      R"({"jsonrpc":"2.0","id":6,"method":"tools/list","params":[1]})",
  });
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 1)), -32600);
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 2)), -32600);
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 3)), -32600);
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 6)), -32602);
  int null_id_invalid = 0;
  for (const json& reply : replies) {
    if (reply["id"].is_null() && ErrorCode(reply) == -32600) ++null_id_invalid;
  }
  EXPECT_EQ(null_id_invalid, 2);  // the object id and the bare number
  EXPECT_EQ(replies.size(), 7u);
}

TEST_F(ServerTest, ARequestNestedTooDeepIsRefusedWithItsId) {
  std::string deep(kMaxMessageDepth, '[');
  deep += std::string(kMaxMessageDepth, ']');
  // Inside params.arguments.background_context: 4 levels more than `deep`.
  std::string line =
      R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"create_real_task",)"
      R"("arguments":{"description":"too deep","background_context":)" +
      deep + "}}}";
  std::string shallow(kMaxMessageDepth - 3, '[');
  shallow += std::string(kMaxMessageDepth - 3, ']');
  std::string fits = R"({"jsonrpc":"2.0","id":8,"method":"ping","params":{"x":)" + shallow + "}}";

  std::vector<json> replies = Session(std::vector<std::string>{Initialize().dump(), line, fits});

  json refused = ReplyTo(replies, 7);
  EXPECT_EQ(ErrorCode(refused), -32600);
  EXPECT_THAT(refused["error"].value("message", ""), HasSubstr("flatter"));
  EXPECT_EQ(ReplyTo(replies, 8)["result"], json::object());
  EXPECT_FALSE(std::filesystem::exists(workspace())) << "the refused call created a task";
}

TEST_F(ServerTest, NotificationsGetNoReply) {
  std::vector<json> replies = Session(std::vector<json>{
      Initialize(),
      Notification("notifications/initialized"),
      Notification("notifications/cancelled", {{"requestId", 99}}),
      Notification("notifications/no-such-thing"),
      Notification("tools/list"),
      Request(1, "ping"),
  });
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0]["id"], 0);
  EXPECT_EQ(replies[1]["id"], 1);
}

TEST_F(ServerTest, ToolFailuresAreToolResultsNotProtocolErrors) {
  std::vector<json> replies = Session(std::vector<json>{
      Initialize(),
      CallTool(1, "create_real_task", json::object()),
      CallTool(2, "get_real_task_status", {{"task_id", 42}}),
      CallTool(3, "no_such_tool", json::object()),
      Request(4, "tools/call", {{"arguments", json::object()}}),
  });
  for (int id : {1, 2}) {
    json reply = ReplyTo(replies, id);
    ASSERT_TRUE(reply.contains("result")) << reply.dump();
    json result = reply["result"];
    EXPECT_TRUE(result.value("isError", false)) << reply.dump();
    EXPECT_EQ(result["structuredContent"].value("success", true), false);
    EXPECT_FALSE(result["structuredContent"].value("error", "").empty());
    // The text copy says the same.
    EXPECT_EQ(json::parse(result["content"][0].value("text", "")), result["structuredContent"]);
  }
  EXPECT_THAT(ReplyTo(replies, 1)["result"]["structuredContent"].value("error", ""),
              HasSubstr("\"description\""));
  // A tool that does not exist, or no tool name, is the request's error.
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 3)), -32602);
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 4)), -32602);
}

TEST_F(ServerTest, ToolCallsSucceedWithStructuredContentAndProgress) {
  std::vector<json> replies = Session(std::vector<json>{
      Initialize(),
      Request(1, "tools/call",
              {{"name", "create_real_task"},
               {"arguments", {{"description", "made through the server"}}},
               {"_meta", {{"progressToken", "token-1"}}}}),
  });
  json reply = ReplyTo(replies, 1);
  const json& result = reply["result"];
  EXPECT_FALSE(result.value("isError", true)) << reply.dump();
  EXPECT_TRUE(result["structuredContent"].value("success", false));
  EXPECT_THAT(result["structuredContent"].value("task_id", ""), ::testing::StartsWith("TASK-"));
  bool progress_seen = false;
  for (const json& message : replies) {
    if (message.value("method", "") == "notifications/progress") {
      EXPECT_EQ(message["params"].value("progressToken", ""), "token-1");
      progress_seen = true;
    }
  }
  EXPECT_TRUE(progress_seen);
}

TEST_F(ServerTest, ResourcesListAndRead) {
  std::string task = MakeTask();
  std::vector<json> replies = Session(std::vector<json>{
      Initialize(),
      Request(1, "resources/list"),
      Request(2, "resources/templates/list"),
      Request(3, "resources/read", {{"uri", "tasks://list"}}),
      Request(4, "resources/read", {{"uri", "task://" + task + "/status"}}),
      Request(5, "resources/read", {{"uri", "task://" + task + "/progress-timeline"}}),
      Request(6, "resources/read", {{"uri", "task://TASK-20260101-000000-00000000/status"}}),
      Request(7, "resources/read", {{"uri", "nothing://here"}}),
      Request(8, "resources/read"),
  });

  std::set<std::string> uris;
  json resources = ReplyTo(replies, 1)["result"]["resources"];
  for (const json& resource : resources) {
    uris.insert(resource.value("uri", ""));
  }
  EXPECT_EQ(uris, (std::set<std::string>{"tasks://list", "task://" + task + "/status"}));
  EXPECT_EQ(ReplyTo(replies, 2)["result"]["resourceTemplates"].size(), 2u);

  auto contents = [&](int id) {
    json content = ReplyTo(replies, id)["result"]["contents"][0];
    EXPECT_EQ(content.value("mimeType", ""), "application/json");
    return json::parse(content.value("text", "null"));
  };
  EXPECT_EQ(contents(3)["tasks"][0].value("task_id", ""), task);
  EXPECT_EQ(contents(4).value("task_id", ""), task);
  EXPECT_EQ(contents(5)["timeline"], json::array());
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 6)), -32002);
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 7)), -32002);
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 8)), -32602);
}

TEST_F(ServerTest, EveryRequestReadBeforeEofIsAnswered) {
  std::vector<json> messages{Initialize()};
  for (int id = 1; id <= 20; ++id) {
    messages.push_back(CallTool(id, "get_health_status", json::object()));
  }
  std::vector<json> replies = Session(messages);
  for (int id = 1; id <= 20; ++id) {
    EXPECT_TRUE(ReplyTo(replies, id)["result"]["structuredContent"].value("success", false)) << id;
  }
}

// The client has gone (EOF) while a wait blocks: the wait returns at once
// with what it has seen, and is answered. Without that it would block for
// its 600 s timeout.
TEST_F(ServerTest, AWaitBlockingAtEofIsAnsweredWithWhatItSaw) {
  std::string task = CreateTask();
  std::string agent = DeployAgent(task, {"sleep", "300"});
  std::vector<json> replies = Session(std::vector<json>{
      Initialize(),
      CallTool(1, "wait_for_agents", {{"task_id", task}, {"timeout_seconds", 600}}),
  });
  json result = ReplyTo(replies, 1)["result"]["structuredContent"];
  EXPECT_EQ(result.value("success", false), true) << result.dump();
  EXPECT_EQ(result["stopped"], true) << result.dump();
  EXPECT_EQ(result["condition_met"], false);
  EXPECT_EQ(result["still_active"], json::array({agent}));
}

TEST_F(ServerTest, AWaitInsideABatchIsRefused) {
  json batch =
      json::array({CallTool(1, "wait_for_agents", {{"task_id", "TASK-20260101-000000-00000000"}}),
                   Request(2, "ping")});
  int input_fd = MemfdWith(Initialize(0, "2025-03-26").dump() + "\n" + batch.dump() + "\n");
  int output_fd = MemfdWith("");
  mcp::ServeOn(workspace(), input_fd, output_fd);
  std::string output = ReadAll(output_fd);
  close(input_fd);
  close(output_fd);
  // The batch's replies are the second line, one array.
  std::string second = output.substr(output.find('\n') + 1);
  json replies = json::parse(second, nullptr, false);
  ASSERT_TRUE(replies.is_array() && replies.size() == 2) << output;
  EXPECT_EQ(replies[0]["result"]["isError"], true) << replies.dump();
  EXPECT_THAT(replies[0]["result"]["structuredContent"].value("error", ""),
              HasSubstr("cannot run inside a batch"));
  EXPECT_EQ(replies[1]["result"], json::object());
}

TEST_F(ServerTest, ALastLineWithoutItsNewlineIsAnswered) {
  std::string input = Initialize().dump() + "\r\n" + Request(1, "ping").dump();
  int input_fd = MemfdWith(input);
  int output_fd = MemfdWith("");
  mcp::ServeOn(workspace(), input_fd, output_fd);
  std::vector<json> replies = ParseReplies(ReadAll(output_fd));
  close(input_fd);
  close(output_fd);
  EXPECT_EQ(ReplyTo(replies, 1)["result"], json::object());
}

// The real `herd serve`: its stdout carries JSON-RPC lines only, even while
// an agent it started writes to its own stdout and stderr.
TEST_F(ServerTest, StdoutOfHerdServeCarriesOnlyJsonRpcLines) {
  std::string task = CreateTask();
  std::vector<std::string> lines = {
      Initialize().dump(),
      Notification("notifications/initialized").dump(),
      CallTool(
          1, "deploy_headless_agent",
          {{"task_id", task},
           {"agent_type", "printer"},
           {"prompt", "print"},
           {"backend", "command"},
           {"command", {"sh", "-c", "echo agent-stdout-marker; echo agent-stderr-marker >&2"}}})
          .dump(),
      CallTool(2, "get_health_status", json::object()).dump(),
      "{not json",
  };
  std::vector<std::string> args = {"-c", "printf '%s\\n' \"$@\" | \"$0\" serve", HerdBinary()};
  args.insert(args.end(), lines.begin(), lines.end());

  CommandResult served = CommandProcess("sh", args).Wait();

  ASSERT_EQ(served.exit_code, 0) << served.Describe();
  std::vector<json> replies = ParseReplies(served.out);
  EXPECT_EQ(replies.size(), 4u) << served.out;
  EXPECT_FALSE(ReplyTo(replies, 1)["result"].value("isError", true)) << served.out;
  EXPECT_THAT(served.out, ::testing::Not(HasSubstr("marker")));
  std::string agent = ReplyTo(replies, 1)["result"]["structuredContent"].value("agent_id", "");
  WaitForAgentToEnd(task, agent);
  EXPECT_THAT(ReadFile(LogPath(task, agent)), HasSubstr("agent-stdout-marker"));
}

// --- resources/subscribe -----------------------------------------------------

TEST_F(ServerTest, ASubscribedStatusIsNotifiedOncePerCommittedChange) {
  std::string task = MakeTask();
  std::string fence = MakeTask();
  LiveSession session(workspace());
  json initialized = session.Call(0, "initialize", Initialize()["params"]);
  EXPECT_EQ(initialized["result"]["capabilities"]["resources"]["subscribe"], true);
  EXPECT_EQ(session.Call(1, "resources/subscribe", {{"uri", StatusUri(task)}})["result"],
            json::object());
  EXPECT_EQ(session.Call(2, "resources/subscribe", {{"uri", StatusUri(fence)}})["result"],
            json::object());
  // Subscribing twice is one subscription.
  EXPECT_EQ(session.Call(3, "resources/subscribe", {{"uri", StatusUri(task)}})["result"],
            json::object());

  Commit(task);
  session.ReadUntil(UpdatedFor(StatusUri(task)), "notification after the change");
  Settle(session, fence);
  EXPECT_EQ(session.Count(UpdatedFor(StatusUri(task))), 1u);

  Commit(task);
  Commit(task);
  Settle(session, fence);
  // Two commits: one notification each, or one for both when one wake saw both.
  size_t notified = session.Count(UpdatedFor(StatusUri(task)));
  EXPECT_TRUE(notified == 2u || notified == 3u) << notified;
  EXPECT_EQ(session.Finish(), 0);
}

TEST_F(ServerTest, UnsubscribeStopsTheNotifications) {
  std::string task = MakeTask();
  std::string fence = MakeTask();
  LiveSession session(workspace());
  session.Call(0, "initialize", Initialize()["params"]);
  session.Call(1, "resources/subscribe", {{"uri", StatusUri(task)}});
  session.Call(2, "resources/subscribe", {{"uri", StatusUri(fence)}});
  Commit(task);
  session.ReadUntil(UpdatedFor(StatusUri(task)), "notification before unsubscribing");

  EXPECT_EQ(session.Call(3, "resources/unsubscribe", {{"uri", StatusUri(task)}})["result"],
            json::object());
  Commit(task);
  Settle(session, fence);
  EXPECT_EQ(session.Count(UpdatedFor(StatusUri(task))), 1u);
  // Unsubscribing from what is not subscribed changes nothing.
  EXPECT_EQ(session.Call(4, "resources/unsubscribe", {{"uri", StatusUri(task)}})["result"],
            json::object());
  EXPECT_EQ(session.Finish(), 0);
}

TEST_F(ServerTest, TheProgressTimelineIsNotifiedByReportsOnly) {
  std::string task = CreateTask();
  std::string agent = DeployAgent(task, {"sleep", "300"});
  std::string fence = MakeTask();
  LiveSession session(workspace());
  session.Call(0, "initialize", Initialize()["params"]);
  session.Call(1, "resources/subscribe", {{"uri", TimelineUri(task)}});
  session.Call(2, "resources/subscribe", {{"uri", StatusUri(fence)}});

  Commit(task);  // the status changes, the timeline does not
  Settle(session, fence);
  EXPECT_EQ(session.Count(UpdatedFor(TimelineUri(task))), 0u);

  Result<json> reported = orchestrator().ReportProgress({task, agent, "working", "halfway", 50});
  ASSERT_TRUE(reported.ok()) << reported.status().ToString();
  session.ReadUntil(UpdatedFor(TimelineUri(task)), "notification after the report");
  Settle(session, fence);
  EXPECT_EQ(session.Count(UpdatedFor(TimelineUri(task))), 1u);
  EXPECT_EQ(session.Finish(), 0);
}

TEST_F(ServerTest, SubscribingToWhatCannotBeWatchedIsAnError) {
  std::string task = MakeTask();
  std::vector<json> replies = Session(std::vector<json>{
      Initialize(),
      Request(1, "resources/subscribe", {{"uri", "task://TASK-20260101-000000-00000000/status"}}),
      Request(2, "resources/subscribe", {{"uri", "tasks://list"}}),
      Request(3, "resources/subscribe", {{"uri", "task://" + task + "/nonsense"}}),
      Request(4, "resources/subscribe", {{"uri", "task://../status"}}),
      Request(5, "resources/subscribe"),
      Request(6, "resources/unsubscribe", {{"uri", 7}}),
      Request(7, "resources/subscribe", {{"uri", TimelineUri(task)}}),
  });
  json unknown = ReplyTo(replies, 1);
  EXPECT_EQ(ErrorCode(unknown), -32002);
  EXPECT_EQ(unknown["error"]["data"],
            json({{"uri", "task://TASK-20260101-000000-00000000/status"}}));
  EXPECT_THAT(unknown["error"].value("message", ""), HasSubstr("read tasks://list"));
  for (int id : {2, 3}) {
    json reply = ReplyTo(replies, id);
    EXPECT_EQ(ErrorCode(reply), -32602) << id;
    EXPECT_THAT(reply["error"].value("message", ""), HasSubstr("task://{task_id}/status")) << id;
  }
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 4)), -32602);
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 5)), -32602);
  EXPECT_EQ(ErrorCode(ReplyTo(replies, 6)), -32602);
  EXPECT_EQ(ReplyTo(replies, 7)["result"], json::object());
}

// 64 subscriptions are served; the 65th is refused with what to do. The
// session then ends at EOF with all of them active.
TEST_F(ServerTest, ASessionHasAtMost64Subscriptions) {
  std::vector<json> messages{Initialize()};
  int id = 0;
  for (int i = 0; i < 33; ++i) {
    std::string task = MakeTask();
    messages.push_back(Request(++id, "resources/subscribe", {{"uri", StatusUri(task)}}));
    messages.push_back(Request(++id, "resources/subscribe", {{"uri", TimelineUri(task)}}));
  }
  std::vector<json> replies = Session(messages);
  for (int answered = 1; answered <= 64; ++answered) {
    EXPECT_EQ(ReplyTo(replies, answered)["result"], json::object()) << answered;
  }
  json refused = ReplyTo(replies, 65);
  EXPECT_EQ(ErrorCode(refused), -32602);
  EXPECT_THAT(refused["error"].value("message", ""), HasSubstr("resources/unsubscribe"));
}

// --- resources/subscribe under the PostgreSQL registry ---------------------

// HERD_REGISTRY is set for the test's process: the session (ServeOn selects
// the registry from it) and every herd command the test runs use a
// database of the test's own.
class PgSubscriptionTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    if (!database_.available()) {
      GTEST_SKIP() << "no PostgreSQL server: run under ctest (the PgServer fixture)";
    }
    registry_setting_.Set("HERD_REGISTRY", database_.conninfo());
  }

  // A commit that no report makes, by another process: `herd task limits`.
  void CommitElsewhere(const std::string& task) {
    HerdJson({"task", "limits", task, "--max-agents", std::to_string(30 + commits_++)});
  }

  // Settle's fence, committed by other processes.
  void SettleElsewhere(LiveSession& session, const std::string& fence) {
    for (int i = 0; i < 2; ++i) {
      CommitElsewhere(fence);
      session.ReadUntil(UpdatedFor(StatusUri(fence)), "notification for the fence task");
    }
  }

  registry::pg_test::TestDatabase database_;
  ScopedEnvironment registry_setting_;
  int commits_ = 0;
};

// Woken by LISTEN/NOTIFY: a status is notified of other processes'
// commits, a timeline of their reports only, and no file of the JSON
// registry is written.
TEST_F(PgSubscriptionTest, SubscribersAreNotifiedOfOtherProcessesCommits) {
  std::string task = CreateTask();
  std::string agent = DeployAgent(task, {"sleep", "300"});
  std::string fence = CreateTask();
  LiveSession session(workspace());
  session.Call(0, "initialize", Initialize()["params"]);
  EXPECT_EQ(session.Call(1, "resources/subscribe", {{"uri", StatusUri(task)}})["result"],
            json::object());
  EXPECT_EQ(session.Call(2, "resources/subscribe", {{"uri", TimelineUri(task)}})["result"],
            json::object());
  EXPECT_EQ(session.Call(3, "resources/subscribe", {{"uri", StatusUri(fence)}})["result"],
            json::object());

  CommitElsewhere(task);
  session.ReadUntil(UpdatedFor(StatusUri(task)), "notification after another process's commit");
  SettleElsewhere(session, fence);
  EXPECT_EQ(session.Count(UpdatedFor(StatusUri(task))), 1u);
  EXPECT_EQ(session.Count(UpdatedFor(TimelineUri(task))), 0u);

  HerdJson(
      {"progress", task, agent, "--status", "working", "--progress", "50", "--message", "halfway"});
  session.ReadUntil(UpdatedFor(TimelineUri(task)), "notification after another process's report");
  SettleElsewhere(session, fence);
  EXPECT_EQ(session.Count(UpdatedFor(TimelineUri(task))), 1u);
  EXPECT_EQ(session.Count(UpdatedFor(StatusUri(task))), 2u);

  // Unsubscribed: no more notifications of the task's status.
  session.Call(4, "resources/unsubscribe", {{"uri", StatusUri(task)}});
  HerdJson({"kill", task, agent});
  SettleElsewhere(session, fence);
  EXPECT_EQ(session.Count(UpdatedFor(StatusUri(task))), 2u);
  EXPECT_EQ(session.Finish(), 0);
  EXPECT_TRUE(TaskRegistriesUnder(root()).empty());
  EXPECT_FALSE(std::filesystem::exists(workspace() + "/registry/GLOBAL_REGISTRY.json"));
}

}  // namespace
}  // namespace herd::test_util

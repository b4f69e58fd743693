#include "mcp/server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <thread>
#include <vector>

#include "mcp/subscriptions.h"
#include "mcp/tools.h"
#include "orchestrator/orchestrator.h"
#include "util/json_parse.h"
#include "util/stop_signal.h"

namespace herd::mcp {

const char* const kProtocolVersions[4] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};

namespace {

using nlohmann::json;

constexpr size_t kMaxLineBytes = 16 * 1024 * 1024;
// Copying, comparing and serialising JSON recurse once per level, so no
// message deeper than this is ever built; a tool's own arguments nest 5.
constexpr int kWorkers = 4;
// Blocking calls (wait_for_agents) get a thread each, up to this many.
constexpr int kMaxBlockingCalls = 64;

constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;
constexpr int kResourceNotFound = -32002;

constexpr const char kInstructions[] =
    "herd runs headless coding agents (Claude Code, Codex, cursor-agent, Gemini CLI or any "
    "command) and tracks them in a crash-safe registry. Workflow: create_real_task (give "
    "client_cwd, the project's absolute path) -> deploy_headless_agent (returns once the agent "
    "has started; deploy every agent you need) -> wait_for_agents, which returns when they have "
    "ended with each one's status, exit, last message, findings count and usage, or after "
    "timeout_seconds (default 50) with the ones still running: then call wait_for_agents again "
    "rather than polling get_real_task_status. get_agent_output (tail, filter) shows an agent's "
    "output, get_real_task_status the whole task; kill_real_agent stops one. To say more to an "
    "agent (a correction, the next step), call send_agent_message: it continues the agent's own "
    "conversation as a new turn, at once if the agent has ended, else after its current turn "
    "(interrupt true stops that turn first); then call wait_for_agents again for its answer. "
    "Agents report "
    "back with update_agent_progress, "
    "report_agent_finding and spawn_child_agent. Limits (max_concurrent, max_agents, max_depth) "
    "are enforced atomically; a refusal says which limit and how to raise it. A client that "
    "supports resource subscriptions may resources/subscribe to task://{task_id}/status (or "
    "/progress-timeline) and is sent notifications/resources/updated after each change.";

json ErrorResponse(const json& id, int code, const std::string& message, json data = nullptr) {
  json error = {{"code", code}, {"message", message}};
  if (!data.is_null()) error["data"] = std::move(data);
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(error)}};
}

json ResultResponse(const json& id, json result) {
  // Built key by key: an initializer list would copy `result`.
  json response = json::object();
  response["jsonrpc"] = "2.0";
  response["id"] = id;
  response["result"] = std::move(result);
  return response;
}

// Appends `text` as a JSON string. `text` is serialised JSON, hence valid
// UTF-8 already: only quotes, backslashes and control characters need
// escaping, which is much cheaper than a general (validating) encoder.
void AppendQuoted(const std::string& text, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending unescaped run
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c != '"' && c != '\\' && c >= 0x20) continue;
    out->append(text, run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\t': out->append("\\t"); break;
      case '\r': out->append("\\r"); break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
    }
  }
  out->append(text, run, text.size() - run);
  out->push_back('"');
}

bool SupportedVersion(const std::string& version) {
  for (const char* supported : kProtocolVersions) {
    if (version == supported) return true;
  }
  return false;
}

// A fixed pool of threads for tool calls; Drain() finishes queued work.
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~WorkerPool() { Drain(); }

  void Submit(std::function<void()> job) {
    std::lock_guard<std::mutex> guard(mutex_);
    jobs_.push_back(std::move(job));
    ready_.notify_one();
  }

  void Drain() {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      stopping_ = true;
      ready_.notify_all();
    }
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

// Threads for tool calls that may block for a long time (wait_for_agents),
// one each, so that they never hold up the worker pool; at most `limit` at
// once. Drain() waits for every one to finish.
class BlockingCalls {
 public:
  explicit BlockingCalls(int limit) : limit_(limit) {}
  ~BlockingCalls() { Drain(); }

  // Runs `job` on a thread of its own; false when `limit` are running (or
  // no thread can be started).
  bool TryStart(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if (running_ >= limit_) return false;
      ++running_;
    }
    try {
      std::thread([this, job = std::move(job)]() mutable {
        job();
        job = nullptr;  // before Drain() can return: it refers to the server
        std::lock_guard<std::mutex> guard(mutex_);
        if (--running_ == 0) idle_.notify_all();
      }).detach();
    } catch (const std::system_error&) {
      std::lock_guard<std::mutex> guard(mutex_);
      --running_;
      return false;
    }
    return true;
  }

  void Drain() {
    std::unique_lock<std::mutex> lock(mutex_);
    idle_.wait(lock, [this] { return running_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  int running_ = 0;
  const int limit_;
};

// A tool call a worker is running: how the reader stops it.
struct InFlightCall {
  std::shared_ptr<StopSignal> stop;    // stopped on cancellation and at stdin EOF
  std::atomic<bool> cancelled{false};  // notifications/cancelled: send no reply
};

class Server {
 public:
  Server(const Orchestrator& orchestrator, int output_fd)
      : tools_(orchestrator),
        output_fd_(output_fd),
        subscriptions_(orchestrator, [this](const std::string& uri) { NotifyUpdated(uri); }),
        blocking_(kMaxBlockingCalls),
        pool_(kWorkers) {}

  // Handles one input line (without its newline).
  void HandleLine(const std::string& line) {
    JsonParseFailure failure = JsonParseFailure::kNone;
    Result<json> parsed = ParseJson(line, kMaxMessageDepth, &failure);
    if (!parsed.ok()) {
      Send(UnparsedLineResponse(line, failure, parsed.status().message()));
      return;
    }
    json message = std::move(parsed).value();
    if (message.is_array()) {
      HandleBatch(message);
      return;
    }
    std::optional<json> response = GuardedHandleMessage(message, /*in_batch=*/false);
    if (response) Send(*response);
  }

  void LineTooLong() {
    Send(ErrorResponse(nullptr, kParseError,
                       "parse error: the line is longer than 16 MiB and was discarded"));
  }

  // Ends the resource subscriptions and stops the calls that block (a wait
  // answers with what it has seen), then waits for every tool call to
  // finish and be answered.
  void Finish() {
    subscriptions_.Stop();
    {
      std::lock_guard<std::mutex> guard(in_flight_mutex_);
      for (const auto& [key, call] : in_flight_) call->stop->Stop();
    }
    pool_.Drain();
    blocking_.Drain();
  }

 private:
  // The error for a line ParseJson refused. Invalid JSON has no id to
  // answer with (-32700, id null); a message that is JSON but too deep or
  // holds an unrepresentable number is answered with its own id, read
  // without parsing the rest, so its caller is not left waiting.
  static json UnparsedLineResponse(const std::string& line, JsonParseFailure failure,
                                   const std::string& problem) {
    if (failure != JsonParseFailure::kTooDeep && failure != JsonParseFailure::kNumberOutOfRange) {
      return ErrorResponse(
          nullptr, kParseError,
          "parse error: the line is not valid JSON (or not valid UTF-8): " + problem);
    }
    json id = FindTopLevelScalar(line, "id").value_or(nullptr);
    if (!id.is_string() && !id.is_number_integer()) id = nullptr;
    if (failure == JsonParseFailure::kTooDeep) {
      return ErrorResponse(
          id, kInvalidRequest,
          "invalid request: the message's " + problem + "; send flatter arguments");
    }
    return ErrorResponse(id, kInvalidParams,
                         "invalid params: " + problem + "; send numbers within that range");
  }

  void HandleBatch(const json& batch) {
    if (negotiated_version_ != "2025-03-26") {
      Send(ErrorResponse(nullptr, kInvalidRequest,
                         "batches are only accepted under protocol version 2025-03-26"));
      return;
    }
    if (batch.empty()) {
      Send(ErrorResponse(nullptr, kInvalidRequest, "empty batch"));
      return;
    }
    json responses = json::array();
    for (const json& message : batch) {
      std::optional<json> response = GuardedHandleMessage(message, /*in_batch=*/true);
      if (response) responses.push_back(std::move(*response));
    }
    if (!responses.empty()) Send(responses);
  }

  // HandleMessage, turning any exception (a field of an unexpected JSON
  // type, say) into an error reply instead of a crash.
  std::optional<json> GuardedHandleMessage(const json& message, bool in_batch) {
    try {
      return HandleMessage(message, in_batch);
    } catch (const std::exception& error) {
      json id = message.is_object() && message.contains("id") ? message["id"] : json(nullptr);
      if (message.is_object() && !message.contains("id")) return std::nullopt;
      return ErrorResponse(id, kInvalidParams, std::string("invalid params: ") + error.what());
    }
  }

  // Returns the response to send now, if any (tool calls outside a batch
  // are answered later by a worker).
  std::optional<json> HandleMessage(const json& message, bool in_batch) {
    if (!message.is_object()) {
      return ErrorResponse(nullptr, kInvalidRequest, "invalid request: expected a JSON object");
    }
    json id = message.contains("id") ? message["id"] : json(nullptr);
    bool has_id = message.contains("id");
    if (message.value("jsonrpc", json(nullptr)) != "2.0") {
      return ErrorResponse(id, kInvalidRequest, "invalid request: \"jsonrpc\" must be \"2.0\"");
    }
    if (!message.contains("method")) {
      return std::nullopt;  // a response to a request we never send: ignore
    }
    if (!message["method"].is_string()) {
      return ErrorResponse(id, kInvalidRequest, "invalid request: \"method\" must be a string");
    }
    std::string method = message["method"];
    json params = message.value("params", json::object());
    if (!has_id) {
      HandleNotification(method, params);
      return std::nullopt;
    }
    if (!id.is_string() && !id.is_number_integer()) {
      return ErrorResponse(nullptr, kInvalidRequest,
                           "invalid request: \"id\" must be a string or an integer");
    }
    if (!params.is_object()) {
      return ErrorResponse(id, kInvalidParams, "\"params\" must be an object");
    }
    return HandleRequest(id, method, params, in_batch);
  }

  void HandleNotification(const std::string& method, const json& params) {
    if (method == "notifications/cancelled" && params.is_object() && params.contains("requestId")) {
      std::lock_guard<std::mutex> guard(in_flight_mutex_);
      auto found = in_flight_.find(params["requestId"].dump());
      if (found != in_flight_.end()) {
        found->second->cancelled.store(true);
        found->second->stop->Stop();
      }
    }
    // notifications/initialized and anything else need no action.
  }

  std::optional<json> HandleRequest(const json& id, const std::string& method, const json& params,
                                    bool in_batch) {
    if (method == "ping") return ResultResponse(id, json::object());
    if (method == "initialize") return Initialize(id, params);
    static const std::set<std::string> kKnown = {"tools/list",
                                                 "tools/call",
                                                 "resources/list",
                                                 "resources/templates/list",
                                                 "resources/read",
                                                 "resources/subscribe",
                                                 "resources/unsubscribe",
                                                 "logging/setLevel",
                                                 "prompts/list"};
    if (kKnown.count(method) == 0) {
      return ErrorResponse(id, kMethodNotFound, "method not found: " + method);
    }
    if (!initialized_) {
      return ErrorResponse(id, kInvalidRequest,
                           "the server is not initialized: send \"initialize\" first");
    }
    if (method == "tools/list" || method == "resources/list" ||
        method == "resources/templates/list" || method == "prompts/list") {
      return ListItems(id, method, params);
    }
    if (method == "resources/read") return ReadResourceRequest(id, params);
    if (method == "resources/subscribe") return SubscribeRequest(id, params);
    if (method == "resources/unsubscribe") return UnsubscribeRequest(id, params);
    if (method == "logging/setLevel") return SetLoggingLevel(id, params);
    return CallToolRequest(id, params, in_batch);
  }

  // tools/list, resources/list, resources/templates/list or prompts/list:
  // every item in one page.
  json ListItems(const json& id, const std::string& method, const json& params) {
    if (params.contains("cursor")) {
      return ErrorResponse(id, kInvalidParams, "invalid cursor: herd returns every item at once");
    }
    if (method == "tools/list") return ResultResponse(id, {{"tools", tools_.Definitions()}});
    if (method == "resources/list") return ResultResponse(id, tools_.ListResources());
    if (method == "prompts/list") return ResultResponse(id, {{"prompts", json::array()}});
    return ResultResponse(id, tools_.ListResourceTemplates());
  }

  json ReadResourceRequest(const json& id, const json& params) {
    if (!params.contains("uri") || !params["uri"].is_string()) {
      return ErrorResponse(id, kInvalidParams, "resources/read needs a string \"uri\"");
    }
    std::string uri = params["uri"];
    Result<json> content = tools_.ReadResource(uri);
    if (!content.ok()) {
      if (content.status().Is(Status::Code::kNotFound)) {
        return ErrorResponse(id, kResourceNotFound,
                             "resource not found: " + uri + " (" + content.status().message() + ")",
                             {{"uri", uri}});
      }
      return ErrorResponse(id, kInternalError, content.status().message());
    }
    return ResultResponse(id, std::move(*content));
  }

  // resources/subscribe: -32002 for an unknown task (as resources/read),
  // -32602 for a uri that cannot be subscribed to or past the limit.
  json SubscribeRequest(const json& id, const json& params) {
    if (!params.contains("uri") || !params["uri"].is_string()) {
      return ErrorResponse(id, kInvalidParams, "resources/subscribe needs a string \"uri\"");
    }
    std::string uri = params["uri"];
    Status subscribed = subscriptions_.Subscribe(uri);
    if (subscribed.ok()) return ResultResponse(id, json::object());
    switch (subscribed.code()) {
      case Status::Code::kNotFound:
        return ErrorResponse(id, kResourceNotFound, subscribed.message(), {{"uri", uri}});
      case Status::Code::kInvalidArgument:
      case Status::Code::kRefused:
        return ErrorResponse(id, kInvalidParams, subscribed.message(), {{"uri", uri}});
      default: return ErrorResponse(id, kInternalError, subscribed.message(), {{"uri", uri}});
    }
  }

  json UnsubscribeRequest(const json& id, const json& params) {
    if (!params.contains("uri") || !params["uri"].is_string()) {
      return ErrorResponse(id, kInvalidParams, "resources/unsubscribe needs a string \"uri\"");
    }
    subscriptions_.Unsubscribe(params["uri"].get<std::string>());
    return ResultResponse(id, json::object());
  }

  // Called by the subscriptions' watcher thread.
  void NotifyUpdated(const std::string& uri) {
    Send({{"jsonrpc", "2.0"},
          {"method", "notifications/resources/updated"},
          {"params", {{"uri", uri}}}});
  }

  // Accepts any level MCP defines; herd's own log level stays as it is.
  static json SetLoggingLevel(const json& id, const json& params) {
    static const std::set<std::string> kLevels = {"debug", "info",     "notice", "warning",
                                                  "error", "critical", "alert",  "emergency"};
    if (!params.contains("level") || !params["level"].is_string() ||
        kLevels.count(params["level"].get<std::string>()) == 0) {
      return ErrorResponse(id, kInvalidParams,
                           "logging/setLevel needs \"level\": one of debug, info, notice, "
                           "warning, error, critical, alert, emergency");
    }
    return ResultResponse(id, json::object());
  }

  // tools/call: answered now inside a batch, else later by a worker.
  std::optional<json> CallToolRequest(const json& id, const json& params, bool in_batch) {
    if (!params.contains("name") || !params["name"].is_string()) {
      return ErrorResponse(id, kInvalidParams, "tools/call needs a string \"name\"");
    }
    std::string name = params["name"];
    if (!tools_.Has(name)) return ErrorResponse(id, kInvalidParams, "Unknown tool: " + name);
    json arguments = params.value("arguments", json::object());
    json progress_token = nullptr;
    if (params.contains("_meta") && params["_meta"].is_object()) {
      progress_token = params["_meta"].value("progressToken", json(nullptr));
    }
    if (in_batch) {
      if (tools_.Blocks(name)) {
        return json::parse(ToolErrorLine(
            id,
            name + " blocks, so it cannot run inside a batch: send it as a request of its own"));
      }
      return json::parse(CallTool(id, name, arguments, progress_token, nullptr));
    }
    SubmitToolCall(id, name, arguments, progress_token);
    return std::nullopt;
  }

  // Runs the call on a worker (a thread of its own if it blocks), which
  // answers it unless it was cancelled meanwhile (notifications/cancelled).
  void SubmitToolCall(const json& id, const std::string& name, const json& arguments,
                      const json& progress_token) {
    Result<std::shared_ptr<StopSignal>> stop = StopSignal::Create();
    if (!stop.ok()) {
      SendLine(ToolErrorLine(id, "cannot run " + name + " now: " + stop.status().message()));
      return;
    }
    auto call = std::make_shared<InFlightCall>();
    call->stop = std::move(stop).value();
    {
      std::lock_guard<std::mutex> guard(in_flight_mutex_);
      in_flight_[id.dump()] = call;
    }
    auto job = [this, id, name, arguments, progress_token, call] {
      std::string response;
      try {
        response = CallTool(id, name, arguments, progress_token, call.get());
      } catch (const std::exception& error) {  // an exception here would end the process
        response = Serialise(
            ErrorResponse(id, kInternalError, std::string("internal error: ") + error.what()));
      }
      {
        std::lock_guard<std::mutex> guard(in_flight_mutex_);
        in_flight_.erase(id.dump());
      }
      if (!call->cancelled.load()) SendLine(std::move(response));
    };
    if (!tools_.Blocks(name)) {
      pool_.Submit(std::move(job));
    } else if (!blocking_.TryStart(std::move(job))) {
      {
        std::lock_guard<std::mutex> guard(in_flight_mutex_);
        in_flight_.erase(id.dump());
      }
      SendLine(ToolErrorLine(id, std::to_string(kMaxBlockingCalls) + " calls of " + name +
                                     " are already waiting in this session: wait for one of "
                                     "them to return, or cancel one"));
    }
  }

  json Initialize(const json& id, const json& params) {
    if (initialized_) {
      return ErrorResponse(id, kInvalidRequest, "the server is already initialized");
    }
    if (!params.contains("protocolVersion") || !params["protocolVersion"].is_string()) {
      return ErrorResponse(id, kInvalidParams, "initialize needs a string \"protocolVersion\"");
    }
    std::string requested = params["protocolVersion"];
    negotiated_version_ = SupportedVersion(requested) ? requested : kProtocolVersions[0];
    initialized_ = true;
    spdlog::debug("MCP client asked for {}, speaking {}", requested, negotiated_version_);
    return ResultResponse(
        id, {{"protocolVersion", negotiated_version_},
             {"capabilities",
              {{"tools", {{"listChanged", false}}},
               {"resources", {{"listChanged", false}, {"subscribe", true}}},
               {"prompts", {{"listChanged", false}}},
               {"logging", json::object()}}},
             {"serverInfo", {{"name", "herd"}, {"title", "herd"}, {"version", HERD_VERSION}}},
             {"instructions", kInstructions}});
  }

  // Runs a tool and returns the serialised response line. `call` is null
  // inside a batch.
  std::string CallTool(const json& id, const std::string& name, const json& arguments,
                       const json& progress_token, const InFlightCall* call) {
    CallContext context;
    context.stop = call != nullptr ? call->stop.get() : nullptr;
    int sent = 0;
    if (!progress_token.is_null()) {
      context.progress = [this, &sent, &progress_token, call](const std::string& message) {
        if (call != nullptr && call->cancelled.load()) return;
        Send({{"jsonrpc", "2.0"},
              {"method", "notifications/progress"},
              {"params",
               {{"progressToken", progress_token}, {"progress", ++sent}, {"message", message}}}});
      };
    }
    context.Progress("running " + name);
    return ToolResultLine(id, tools_.Call(name, arguments, context));
  }

  // A tool's outcome as a response line. The result is serialised once and
  // spliced in twice (structuredContent and its text copy): for a large
  // status this halves the reply's cost.
  static std::string ToolResultLine(const json& id, const ToolOutcome& outcome) {
    std::string structured =
        outcome.structured.dump(-1, ' ', false, json::error_handler_t::replace);
    std::string line;
    line.reserve(structured.size() * 2 + 128);
    line += "{\"jsonrpc\":\"2.0\",\"id\":" + id.dump() +
            ",\"result\":{\"content\":[{\"type\":\"text\",\"text\":";
    AppendQuoted(structured, &line);
    line += "}],\"structuredContent\":";
    line += structured;
    line += ",\"isError\":";
    line += outcome.is_error ? "true" : "false";
    line += "}}";
    return line;
  }

  // A tool result with isError, for a call that could not run.
  static std::string ToolErrorLine(const json& id, const std::string& message) {
    ToolOutcome outcome;
    outcome.structured = {{"success", false}, {"error", message}};
    outcome.is_error = true;
    return ToolResultLine(id, outcome);
  }

  // Invalid UTF-8 (from agents' output, say) becomes U+FFFD instead of an
  // exception.
  static std::string Serialise(const json& message) {
    return message.dump(-1, ' ', false, json::error_handler_t::replace);
  }

  // Writes one message as one line; safe from any thread.
  void Send(const json& message) { SendLine(Serialise(message)); }

  // Writes a serialised message (no newline inside) as one line.
  void SendLine(std::string line) {
    line += '\n';
    std::lock_guard<std::mutex> guard(write_mutex_);
    if (output_broken_) return;
    size_t written = 0;
    while (written < line.size()) {
      ssize_t result = write(output_fd_, line.data() + written, line.size() - written);
      if (result < 0 && errno == EINTR) continue;
      if (result <= 0) {
        spdlog::warn("MCP client went away ({}); dropping output", std::strerror(errno));
        output_broken_ = true;
        return;
      }
      written += static_cast<size_t>(result);
    }
  }

  ToolSet tools_;
  int output_fd_;
  std::mutex write_mutex_;
  bool output_broken_ = false;
  // Only the reader thread touches these two.
  bool initialized_ = false;
  std::string negotiated_version_;
  std::mutex in_flight_mutex_;
  std::map<std::string, std::shared_ptr<InFlightCall>> in_flight_;
  // Its thread sends through write_mutex_: declared after it, joined before.
  ResourceSubscriptions subscriptions_;
  BlockingCalls blocking_;  // last two: joined first on destruction
  WorkerPool pool_;
};

}  // namespace

int ServeOn(const std::string& workspace_base, int input_fd, int output_fd) {
  registry::RegistryStores stores;
  // The registry the starting herd selected (HERD_REGISTRY); stdout carries
  // MCP messages only, so a failure is told on stderr.
  if (Status selected = registry::SelectRegistryFromEnvironment(workspace_base, &stores);
      !selected.ok()) {
    std::fprintf(stderr, "herd serve: %s\n", selected.ToString().c_str());
    return 1;
  }
  Orchestrator orchestrator{registry::Workspace(workspace_base), stores};
  Server server(orchestrator, output_fd);
  std::string pending;
  bool discarding = false;  // inside a line that exceeded the cap
  char buffer[65536];
  for (;;) {
    ssize_t got = read(input_fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    size_t start = 0;
    for (size_t i = 0; i < static_cast<size_t>(got); ++i) {
      if (buffer[i] != '\n') continue;
      if (!discarding) {
        pending.append(buffer + start, i - start);
        if (!pending.empty() && pending.back() == '\r') pending.pop_back();
        if (pending.find_first_not_of(" \t") != std::string::npos) server.HandleLine(pending);
      }
      discarding = false;
      pending.clear();
      start = i + 1;
    }
    if (!discarding) {
      pending.append(buffer + start, static_cast<size_t>(got) - start);
      if (pending.size() > kMaxLineBytes) {
        server.LineTooLong();
        discarding = true;
        pending.clear();
        pending.shrink_to_fit();
      }
    }
  }
  if (!discarding && pending.find_first_not_of(" \t\r") != std::string::npos) {
    server.HandleLine(pending);  // a last line without its newline
  }
  server.Finish();
  return 0;
}

int Serve(const std::string& workspace_base) {
  // Keep the protocol stream for ourselves and send fd 1 to stderr.
  int protocol_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (protocol_fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    spdlog::error("cannot set up stdout: {}", std::strerror(errno));
    return 1;
  }
  int code = ServeOn(workspace_base, STDIN_FILENO, protocol_fd);
  close(protocol_fd);
  return code;
}

}  // namespace herd::mcp

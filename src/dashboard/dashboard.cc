#include "dashboard/dashboard.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <iostream>

#include "dashboard/page_assets.h"
#include "health/doctor.h"
#include "orchestrator/change_feed.h"
#include "orchestrator/requests.h"
#include "registry/file_names.h"
#include "registry/ids.h"
#include "registry/workspace.h"
#include "util/json_parse.h"
#include "util/random.h"
#include "util/text_file.h"

extern char** environ;

namespace herd::dashboard {
namespace {

using nlohmann::json;

std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

uint64_t Fingerprint(const std::string& payload) {
  // FNV-1a: stable across runs, so a cursor survives a server restart.
  uint64_t hash = 1469598103934665603ULL;
  for (char c : payload) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash == 0 ? 1 : hash;
}

HttpResponse JsonError(int status, const std::string& message) {
  return HttpResponse::Json(status, Dump(json{{"success", false}, {"error", message}}));
}

int HttpStatusOf(const Status& status) {
  switch (status.code()) {
    case Status::Code::kNotFound: return 404;
    case Status::Code::kInvalidArgument: return 400;
    case Status::Code::kRefused: return 409;
    default: return 500;
  }
}

HttpResponse JsonResult(const Result<json>& result) {
  if (!result.ok()) return JsonError(HttpStatusOf(result.status()), result.status().message());
  json reply = *result;
  reply["success"] = true;
  return HttpResponse::Json(200, Dump(reply));
}

std::optional<uint64_t> ParseNumber(const std::string& text) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// A task of the list, with what its row shows.
json TaskRow(const TaskListing& listing) {
  json row = listing.ToJson();
  if (!listing.error.empty()) return row;
  const registry::TaskRecord& task = listing.task;
  row["limits"] = registry::EncodeLimits(task.limits);
  row["budget"] = registry::EncodeBudget(task.budget);
  row["usage"] = task.usage_totals.ToJson();
  row["budget_exceeded"] = registry::EncodeLimitHitOrNull(task.budget_exceeded);
  row["stopped"] = task.stopped ? json{{"at", task.stopped->at}, {"reason", task.stopped->reason}}
                                : json(nullptr);
  return row;
}

std::string TasksPayload(const Orchestrator& orchestrator) {
  json tasks = json::array();
  for (const TaskListing& listing : orchestrator.TaskListings()) tasks.push_back(TaskRow(listing));
  return Dump(json{{"tasks", std::move(tasks)}});
}

std::string TaskPayload(const Orchestrator& orchestrator, const std::string& task_id) {
  Result<json> status = orchestrator.TaskStatus(task_id);
  if (!status.ok()) return Dump(json{{"task_id", task_id}, {"error", status.status().message()}});
  json payload = {{"status", std::move(status).value()}};
  Result<json> timeline = orchestrator.ProgressTimeline(task_id);
  if (timeline.ok()) {
    json& entries = (*timeline)["timeline"];
    if (entries.size() > kTimelineEntries) {
      entries.erase(entries.begin(), entries.end() - static_cast<long>(kTimelineEntries));
    }
    payload["timeline"] = std::move(entries);
    payload["timeline_total"] = (*timeline)["total_entries"];
  }
  return Dump(payload);
}

std::string Event(const char* name, const EventCursor& cursor, const std::string& data) {
  return "id: " + cursor.ToString() + "\nevent: " + name + "\ndata: " + data + "\n\n";
}

// Where an agent's output pane reads from: its log when the log is on this
// machine (always, in the JSON workspace), else the tail the PostgreSQL
// registry keeps (Orchestrator::OutputIsInRegistry). The stream reads the
// tail again on each chunk appended and on the task's commits.
enum class OutputSource { kLogFile, kRegistryTail };

OutputSource SourceOfOutput(const Orchestrator& orchestrator, const std::string& task_id,
                            const std::string& agent_id) {
  return orchestrator.OutputIsInRegistry(task_id, agent_id) ? OutputSource::kRegistryTail
                                                            : OutputSource::kLogFile;
}

// The whole lines of `text` that end at or before `before`, at most
// `max_bytes` of them (a longer line comes cut at its start), as
// ReadLinesBefore cuts a file.
LineWindow WindowOfText(const std::string& text, uint64_t before, size_t max_bytes) {
  size_t end = static_cast<size_t>(std::min<uint64_t>(before, text.size()));
  size_t newline = end == 0 ? std::string::npos : text.rfind('\n', end - 1);
  end = newline == std::string::npos ? 0 : newline + 1;
  size_t begin = end > max_bytes ? end - max_bytes : 0;
  if (begin > 0 && text[begin - 1] != '\n') {
    size_t next = text.find('\n', begin);
    if (next != std::string::npos && next + 1 < end) begin = next + 1;
  }
  return LineWindow{begin, end, text.size(), text.substr(begin, end - begin)};
}

// The window `request` asks for, from `source`. From the registry's tail,
// offsets are within the tail as read now, and `from` is not honoured (the
// newest window comes instead): the tail drops its oldest bytes as it grows.
Result<LineWindow> ReadOutputWindow(const Orchestrator& orchestrator,
                                    const OutputWindowRequest& request, OutputSource source) {
  // Checks the task and the agent, whatever the source.
  HERD_ASSIGN_OR_RETURN(LineWindow window, orchestrator.AgentOutputWindow(request));
  if (source == OutputSource::kLogFile) return window;
  Result<std::string> tail = registry::RegistryFor(orchestrator.stores(), orchestrator.workspace())
                                 ->ReadOutputTail(request.task_id, request.agent_id);
  if (tail.status().Is(Status::Code::kNotFound)) return LineWindow{};
  HERD_RETURN_IF_ERROR(tail.status());
  size_t max_bytes = std::clamp<size_t>(request.max_bytes, 1, OutputRequest::kLargestMaxBytes);
  return WindowOfText(*tail, request.before.value_or(UINT64_MAX), max_bytes);
}

json OutputJson(const std::string& agent_id, LineWindow window) {
  return {{"agent_id", agent_id},
          {"begin", window.begin},
          {"end", window.end},
          {"file_size", window.file_size},
          {"text", std::move(window.text)}};
}

class StreamSlots {
 public:
  bool Take() {
    int now = open_.load();
    do {
      if (now >= kMaxStreams) return false;
    } while (!open_.compare_exchange_weak(now, now + 1));
    return true;
  }
  void Give() { --open_; }

 private:
  std::atomic<int> open_{0};
};

StreamSlots& Slots() {
  static StreamSlots slots;
  return slots;
}

void Stream(const Orchestrator& orchestrator, const std::string& task_id,
            const std::string& agent_id, EventCursor cursor, StreamWriter& writer) {
  struct Release {
    ~Release() { Slots().Give(); }
  } release;
  // Every task's commits (the list, and the followed task's), and the
  // followed agent's output: its log where it is on this machine, the
  // chunks the registry keeps from any machine.
  ChangeInterest interest;
  interest.every_task = true;
  if (!task_id.empty() && !agent_id.empty()) {
    Result<std::string> directory = orchestrator.TaskDirectory(task_id);
    if (directory.ok()) interest.log_directory = *directory + "/logs";
    interest.output_task_id = task_id;
    interest.output_agent_id = agent_id;
  }
  Result<std::unique_ptr<ChangeFeed>> opened = ChangeFeed::Open(orchestrator, interest);
  if (!opened.ok()) {
    writer.Write("event: failure\ndata: " + Dump(json{{"error", opened.status().message()}}) +
                 "\n\n");
    return;
  }
  ChangeFeed& feed = **opened;
  if (!writer.Write("retry: 1000\n\n")) return;
  bool first = true;
  for (;;) {
    // Watch first, then read: a change after the read wakes the next wait.
    if (!first) feed.Refresh();
    first = false;
    std::string tasks = TasksPayload(orchestrator);
    uint64_t tasks_fingerprint = Fingerprint(tasks);
    if (tasks_fingerprint != cursor.tasks) {
      cursor.tasks = tasks_fingerprint;
      if (!writer.Write(Event("tasks", cursor, tasks))) return;
    }
    if (!task_id.empty()) {
      std::string task = TaskPayload(orchestrator, task_id);
      uint64_t task_fingerprint = Fingerprint(task);
      if (task_fingerprint != cursor.task) {
        cursor.task = task_fingerprint;
        if (!writer.Write(Event("task", cursor, task))) return;
      }
    }
    if (!task_id.empty() && !agent_id.empty()) {
      OutputWindowRequest request;
      request.task_id = task_id;
      request.agent_id = agent_id;
      OutputSource source = SourceOfOutput(orchestrator, task_id, agent_id);
      bool from_log = source == OutputSource::kLogFile;
      if (from_log && cursor.output) request.from = *cursor.output;
      Result<LineWindow> window = ReadOutputWindow(orchestrator, request, source);
      if (window.ok()) {
        // The log is sent as it grows; the registry's tail whole when it changed.
        bool changed = false;
        if (from_log && (!cursor.output || window->end > *cursor.output)) {
          changed = true;
          cursor.output = window->end;
          cursor.registry_tail.reset();
        } else if (!from_log && cursor.registry_tail != Fingerprint(window->text)) {
          changed = true;
          cursor.registry_tail = Fingerprint(window->text);
          cursor.output.reset();
        }
        bool more = from_log && window->end < window->file_size && window->end > window->begin;
        if (changed &&
            !writer.Write(Event("output", cursor, Dump(OutputJson(agent_id, *window))))) {
          return;
        }
        // More than one window grew since: read on before waiting.
        if (changed && more) continue;
      }
    }
    // Only a change leads to reading again; a quiet stream just says it is alive.
    for (;;) {
      Result<Wake> woke = feed.WaitUntil(
          MonotonicClock::now() + std::chrono::seconds(kKeepAliveSeconds), &writer.stopping());
      if (!woke.ok() || *woke == Wake::kStopped) return;
      if (*woke == Wake::kChanged) break;
      if (!writer.Write(": keep-alive\n\n")) return;
    }
  }
}

// Set while RunDashboard serves: the signal handler stops it.
std::atomic<StopSignal*> g_interrupted{nullptr};

void OnInterrupt(int) {
  StopSignal* stop = g_interrupted.load();
  if (stop != nullptr) stop->Stop();
}

// The token of this user's dashboard, kept in herd's state directory
// (0600) so a restarted dashboard accepts the pages that were open: a new
// one is made when the file is missing or does not hold one.
Result<std::string> DashboardToken() {
  std::string known = registry::KnownWorkspacesPath();
  std::string directory = known.substr(0, known.rfind('/'));
  HERD_RETURN_IF_ERROR(registry::MakeDirectories(directory));
  std::string path = directory + "/dashboard_token";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0) {
    char buffer[65] = {};
    ssize_t got = ::read(fd, buffer, 64);
    ::close(fd);
    std::string token(buffer, got > 0 ? static_cast<size_t>(got) : 0);
    bool valid =
        token.size() == 32 && token.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (valid) return token;
  } else if (errno != ENOENT) {
    return Status::FromErrno("cannot read the dashboard's token " + path, errno);
  }
  std::string token = RandomHex(32);
  std::string temporary = path + ".tmp" + RandomHex(8);
  fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::FromErrno("cannot write the dashboard's token " + temporary, errno);
  bool written = ::write(fd, token.data(), token.size()) == static_cast<ssize_t>(token.size());
  ::close(fd);
  if (!written || ::rename(temporary.c_str(), path.c_str()) != 0) {
    ::unlink(temporary.c_str());
    return Status::IOError("cannot write the dashboard's token " + path);
  }
  return token;
}

void OpenInBrowser(const std::string& url) {
  const char* argv[] = {"xdg-open", url.c_str(), nullptr};
  pid_t pid = 0;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  int error = posix_spawnp(&pid, "xdg-open", &actions, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) {
    spdlog::warn("cannot run xdg-open ({}): open the URL above yourself", std::strerror(error));
    return;
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) == pid && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
    spdlog::warn("xdg-open could not open a browser: open the URL above yourself");
  }
}

}  // namespace

std::string EventCursor::ToString() const {
  char buffer[80];
  std::snprintf(buffer, sizeof buffer, "t%llx.s%llx.", static_cast<unsigned long long>(tasks),
                static_cast<unsigned long long>(task));
  if (output) return buffer + ("o" + std::to_string(*output));
  if (registry_tail) {
    std::snprintf(buffer + std::strlen(buffer), sizeof buffer - std::strlen(buffer), "r%llx",
                  static_cast<unsigned long long>(*registry_tail));
    return buffer;
  }
  return buffer + std::string("o-");
}

std::optional<EventCursor> EventCursor::Parse(const std::string& text) {
  EventCursor cursor;
  unsigned long long tasks = 0, task = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "t%llx.s%llx.%n", &tasks, &task, &consumed) != 2 || consumed == 0) {
    return std::nullopt;
  }
  std::string output = text.substr(static_cast<size_t>(consumed));
  if (output == "o-") {
  } else if (output.size() > 1 && output[0] == 'r') {
    unsigned long long tail = 0;
    int used = 0;
    if (std::sscanf(output.c_str(), "r%llx%n", &tail, &used) != 1 ||
        static_cast<size_t>(used) != output.size()) {
      return std::nullopt;
    }
    cursor.registry_tail = tail;
  } else if (output.size() > 1 && output[0] == 'o') {
    std::optional<uint64_t> offset = ParseNumber(output.substr(1));
    if (!offset) return std::nullopt;
    cursor.output = offset;
  } else {
    return std::nullopt;
  }
  cursor.tasks = tasks;
  cursor.task = task;
  return cursor;
}

Dashboard::Dashboard(const Orchestrator& orchestrator, AccessGuard guard)
    : orchestrator_(orchestrator), guard_(std::move(guard)) {}

HttpResponse Dashboard::Handle(const HttpRequest& request) const {
  std::optional<HttpResponse> refused = guard_.Check(request);
  HttpResponse response = refused ? std::move(*refused) : Route(request);
  for (const auto& header : AccessGuard::SecurityHeaders()) response.headers.push_back(header);
  return response;
}

HttpResponse Dashboard::Route(const HttpRequest& request) const {
  const std::string& path = request.path;
  bool get = request.method == "GET" || request.method == "HEAD";
  if (get) {
    if (const PageAsset* asset = FindPageAsset(path == "/" ? "/index.html" : path)) {
      HttpResponse response;
      response.body.assign(reinterpret_cast<const char*>(asset->data), asset->size);
      response.headers.emplace_back("Content-Type", asset->content_type);
      return response;
    }
    if (path == "/events") return Events(request);
    if (path == "/api/output") return Output(request);
    if (path == "/api/doctor") return Doctor();
  } else if (request.method == "POST") {
    if (path == "/api/kill") return Kill(request);
    if (path == "/api/stop") return Stop(request);
    if (path == "/api/send") return Send(request);
  }
  bool known = path == "/" || FindPageAsset(path) != nullptr || path == "/events" ||
               path == "/api/output" || path == "/api/doctor" || path == "/api/kill" ||
               path == "/api/stop" || path == "/api/send";
  if (known) return HttpResponse::Text(405, request.method + " is not allowed on " + path);
  return HttpResponse::Text(404, "the dashboard has no " + path);
}

HttpResponse Dashboard::Events(const HttpRequest& request) const {
  std::string task_id = request.QueryParameter("task_id");
  std::string agent_id = request.QueryParameter("agent_id");
  if (!task_id.empty()) {
    Result<std::string> directory = orchestrator_.TaskDirectory(task_id);
    if (!directory.ok())
      return JsonError(HttpStatusOf(directory.status()), directory.status().message());
  } else if (!agent_id.empty()) {
    return JsonError(400, "agent_id needs the task_id of its task");
  }
  EventCursor cursor;
  // The browser's own reconnection sends the header; a page that closed
  // its stream (hidden) and opens a new one passes it in the query.
  const std::string* header = request.Header("last-event-id");
  std::string last = header != nullptr ? *header : request.QueryParameter("last_event_id");
  if (!last.empty()) {
    std::optional<EventCursor> parsed = EventCursor::Parse(last);
    // An id from another stream's shape: start over rather than refuse.
    if (parsed) cursor = *parsed;
  }
  if (!Slots().Take()) {
    return HttpResponse::Text(503, "the dashboard has " + std::to_string(kMaxStreams) +
                                       " live pages open, the most it serves: close one");
  }
  HttpResponse response;
  response.headers = {{"Content-Type", "text/event-stream; charset=utf-8"}};
  const Orchestrator& orchestrator = orchestrator_;
  response.stream = [&orchestrator, task_id, agent_id, cursor](StreamWriter& writer) {
    Stream(orchestrator, task_id, agent_id, cursor, writer);
  };
  return response;
}

HttpResponse Dashboard::Output(const HttpRequest& request) const {
  OutputWindowRequest window_request;
  window_request.task_id = request.QueryParameter("task_id");
  window_request.agent_id = request.QueryParameter("agent_id");
  for (const char* name : {"before", "from", "max_bytes"}) {
    std::string text = request.QueryParameter(name);
    if (text.empty()) continue;
    std::optional<uint64_t> value = ParseNumber(text);
    if (!value) return JsonError(400, std::string(name) + " must be a byte count, not " + text);
    if (std::strcmp(name, "before") == 0) window_request.before = *value;
    if (std::strcmp(name, "from") == 0) window_request.from = *value;
    if (std::strcmp(name, "max_bytes") == 0) window_request.max_bytes = static_cast<size_t>(*value);
  }
  if (window_request.before && window_request.from) {
    return JsonError(400, "give before (to page back) or from (to read on), not both");
  }
  Result<LineWindow> window = ReadOutputWindow(
      orchestrator_, window_request,
      SourceOfOutput(orchestrator_, window_request.task_id, window_request.agent_id));
  if (!window.ok()) return JsonError(HttpStatusOf(window.status()), window.status().message());
  return JsonResult(OutputJson(window_request.agent_id, std::move(window).value()));
}

HttpResponse Dashboard::Doctor() const {
  return JsonResult(
      health::Diagnose(orchestrator_.stores(), orchestrator_.workspace(), health::DoctorOptions{}));
}

namespace {

// The JSON object a POST carries, or the reply refusing it.
Result<json> PostedArguments(const HttpRequest& request) {
  const std::string* type = request.Header("content-type");
  if (type == nullptr || type->rfind("application/json", 0) != 0) {
    return Status::InvalidArgument("send the arguments as Content-Type: application/json");
  }
  Result<json> arguments = ParseJson(request.body, kMaxMessageDepth);
  if (!arguments.ok() || !arguments->is_object()) {
    return Status::InvalidArgument(
        "the body must be a JSON object of arguments" +
        (arguments.ok() ? std::string() : ": " + arguments.status().message()));
  }
  return arguments;
}

}  // namespace

HttpResponse Dashboard::Kill(const HttpRequest& request) const {
  Result<json> arguments = PostedArguments(request);
  if (!arguments.ok()) return JsonError(400, arguments.status().message());
  Result<KillRequest> kill = KillRequest::FromArguments(*arguments);
  if (!kill.ok()) return JsonError(400, kill.status().message());
  return JsonResult(orchestrator_.Kill(*kill));
}

HttpResponse Dashboard::Stop(const HttpRequest& request) const {
  Result<json> arguments = PostedArguments(request);
  if (!arguments.ok()) return JsonError(400, arguments.status().message());
  Result<StopTaskRequest> stop = StopTaskRequest::FromArguments(*arguments);
  if (!stop.ok()) return JsonError(400, stop.status().message());
  Result<agents::TaskStopResult> stopped = orchestrator_.StopTask(*stop);
  if (!stopped.ok()) return JsonError(HttpStatusOf(stopped.status()), stopped.status().message());
  return JsonResult(stopped->ToJson());
}

HttpResponse Dashboard::Send(const HttpRequest& request) const {
  Result<json> arguments = PostedArguments(request);
  if (!arguments.ok()) return JsonError(400, arguments.status().message());
  Result<SendMessageRequest> send = SendMessageRequest::FromArguments(*arguments);
  if (!send.ok()) return JsonError(400, send.status().message());
  Result<agents::SentMessage> sent = orchestrator_.SendMessage(*send);
  if (!sent.ok()) return JsonError(HttpStatusOf(sent.status()), sent.status().message());
  return JsonResult(sent->ToJson());
}

int RunDashboard(const Orchestrator& orchestrator, const DashboardOptions& options,
                 std::ostream& out) {
  Result<std::shared_ptr<StopSignal>> interrupted = StopSignal::Create();
  if (!interrupted.ok()) {
    spdlog::error("{}", interrupted.status().message());
    return 1;
  }
  // The port is known only once bound; the guard needs it, the server needs the guard.
  Result<std::string> token = DashboardToken();
  if (!token.ok()) {
    std::cerr << "herd: " << token.status().message() << "\n";
    return 1;
  }
  std::atomic<const Dashboard*> ready{nullptr};
  Result<std::unique_ptr<HttpServer>> server =
      HttpServer::Start("127.0.0.1", options.port, [&ready](const HttpRequest& request) {
        const Dashboard* dashboard = ready.load();
        if (dashboard == nullptr) return HttpResponse::Text(503, "starting; reload");
        return dashboard->Handle(request);
      });
  if (!server.ok()) {
    std::cerr << "herd: " << server.status().message() << "\n";
    return 1;
  }
  Dashboard dashboard(orchestrator, AccessGuard(*token, (*server)->port()));
  ready.store(&dashboard);

  g_interrupted.store(interrupted->get());
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  struct sigaction previous_int {
  }, previous_term{};
  sigaction(SIGINT, &action, &previous_int);
  sigaction(SIGTERM, &action, &previous_term);

  out << "herd dashboard: " << dashboard.guard().LoginUrl() << "\n"
      << (registry::UsesPostgres(orchestrator.stores())
              ? "(serving every task of the PostgreSQL registry; Ctrl-C stops it)"
              : "(serving every task herd knows on this machine; Ctrl-C stops it)")
      << std::endl;
  if (options.open_browser) OpenInBrowser(dashboard.guard().LoginUrl());

  pollfd wait{(*interrupted)->fd(), POLLIN, 0};
  while (::poll(&wait, 1, -1) < 0 && errno == EINTR) {
  }
  (*server)->Stop();
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
  g_interrupted.store(nullptr);
  out << "herd dashboard: stopped" << std::endl;
  return 0;
}

}  // namespace herd::dashboard

// The dashboard over real sockets, with a real orchestrator, workspace and
// agents (command agents under their supervisors): the HTTP layer's limits,
// the embedded page and its headers, the login flow, the event stream
// pushing a change and resuming from Last-Event-ID, paging back through an
// agent's log, and a kill from a POST that leaves no process behind. Every
// wait is on a socket read or a process exit, with generous deadlines.
#include "dashboard/dashboard.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>

#include "agents/supervisor_main_for_test.h"
#include "agents/testing_util_for_test.h"
#include "dashboard/http.h"
#include "dashboard/page_assets.h"
#include "registry/pg_testing_for_test.h"
#include "util/text_file.h"

namespace herd::test_util {
namespace {

using dashboard::AccessGuard;
using dashboard::Dashboard;
using dashboard::HttpRequest;
using dashboard::HttpResponse;
using dashboard::HttpServer;

const std::string kToken = "00112233445566778899aabbccddeeff";

// A client connection to 127.0.0.1:port that reads with a deadline.
class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      throw std::runtime_error("cannot connect to the dashboard");
    }
  }
  ~Client() { ::close(fd_); }

  void Send(const std::string& data) {
    ASSERT_EQ(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(data.size()));
  }

  // Reads until `done(received)` or EOF or the deadline; returns what came.
  std::string ReadUntil(const std::function<bool(const std::string&)>& done,
                        Clock::time_point deadline = DeadlineIn()) {
    while (!done(received_)) {
      int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
      if (left <= 0) break;
      pollfd ready{fd_, POLLIN, 0};
      if (::poll(&ready, 1, left) <= 0) continue;
      char buffer[65536];
      ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
      if (got <= 0) break;
      received_.append(buffer, static_cast<size_t>(got));
    }
    return received_;
  }

  // One whole reply with a Content-Length; removes it from what was received.
  std::string ReadReply() {
    std::string data = ReadUntil([](const std::string& text) {
      size_t head = text.find("\r\n\r\n");
      if (head == std::string::npos) return false;
      std::smatch match;
      std::string headers = text.substr(0, head);
      if (!std::regex_search(headers, match, std::regex("Content-Length: (\\d+)"))) return true;
      return text.size() >= head + 4 + std::stoul(match[1]);
    });
    size_t head = data.find("\r\n\r\n");
    std::smatch match;
    std::string headers = data.substr(0, head);
    size_t length = std::regex_search(headers, match, std::regex("Content-Length: (\\d+)"))
                        ? std::stoul(match[1])
                        : data.size() - head - 4;
    std::string reply = data.substr(0, head + 4 + length);
    received_.erase(0, reply.size());
    return reply;
  }

  const std::string& received() const { return received_; }

 private:
  int fd_ = -1;
  std::string received_;
};

int StatusOf(const std::string& reply) {
  return reply.size() > 12 ? std::stoi(reply.substr(9, 3)) : 0;
}
std::string BodyOf(const std::string& reply) {
  size_t head = reply.find("\r\n\r\n");
  return head == std::string::npos ? "" : reply.substr(head + 4);
}

class DashboardTest : public HerdTest {
 protected:
  void SetUp() override {
    HerdTest::SetUp();
    orchestrator_ = std::make_unique<Orchestrator>(registry::Workspace(workspace()),
                                                   registry::RegistryStores());
    Result<std::unique_ptr<HttpServer>> server = HttpServer::Start(
        "127.0.0.1", 0, [this](const HttpRequest& request) { return dashboard_->Handle(request); });
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    dashboard_ = std::make_unique<Dashboard>(*orchestrator_, AccessGuard(kToken, server_->port()));
  }
  void TearDown() override {
    server_->Stop();
    HerdTest::TearDown();
  }

  std::string Host() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  std::string Origin() const { return "http://" + Host(); }

  // A request as the page sends it: signed in, same origin.
  std::string PageRequest(const std::string& method, const std::string& target,
                          const std::string& body = "", const std::string& extra = "") const {
    std::string request = method + " " + target + " HTTP/1.1\r\nHost: " + Host() +
                          "\r\nCookie: herd_dashboard=" + kToken + "\r\nOrigin: " + Origin() +
                          "\r\n" + extra;
    if (!body.empty()) {
      request +=
          "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n";
    }
    return request + "\r\n" + body;
  }

  std::string Exchange(const std::string& request) {
    Client client(server_->port());
    client.Send(request);
    return client.ReadReply();
  }

  std::string NewTask(const std::string& description) {
    CreateTaskRequest request;
    request.description = description;
    Result<json> created = orchestrator_->CreateTask(request);
    if (!created.ok()) throw std::runtime_error(created.status().ToString());
    return created->value("task_id", "");
  }

  std::string StartAgent(const std::string& task_id, std::vector<std::string> argv) {
    agents::DeployRequest request;
    request.task_id = task_id;
    request.agent_type = "worker";
    request.prompt = "run the command";
    request.backend = "command";
    request.command_argv = std::move(argv);
    Result<json> deployed = orchestrator_->Deploy(request);
    if (!deployed.ok()) throw std::runtime_error(deployed.status().ToString());
    return deployed->value("agent_id", "");
  }

  void WaitForEnd(const std::string& task_id, const std::string& agent_id) {
    WaitRequest request;
    request.task_id = task_id;
    request.agent_ids = {agent_id};
    request.timeout_seconds = 60;
    Result<WaitReport> report = orchestrator_->WaitForAgents(request);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_EQ(report->outcome, WaitReport::Outcome::kConditionMet);
  }

  std::unique_ptr<Orchestrator> orchestrator_;
  std::unique_ptr<Dashboard> dashboard_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(DashboardTest, ServesTheEmbeddedPageWithStrictHeadersAndNoCors) {
  std::string reply = Exchange(PageRequest("GET", "/"));
  ASSERT_EQ(StatusOf(reply), 200) << reply;
  EXPECT_NE(reply.find("Content-Security-Policy: default-src 'none'; script-src 'self'"),
            std::string::npos);
  EXPECT_NE(reply.find("Referrer-Policy: no-referrer"), std::string::npos);
  EXPECT_EQ(reply.find("Access-Control-"), std::string::npos);
  std::string page = BodyOf(reply);
  const dashboard::PageAsset* asset = dashboard::FindPageAsset("/index.html");
  ASSERT_NE(asset, nullptr);
  EXPECT_EQ(page, std::string(reinterpret_cast<const char*>(asset->data), asset->size));
  // Every script is a file of its own: no inline script for the CSP to allow.
  std::regex script("<script([^>]*)>([^<]*)</script>");
  int scripts = 0;
  for (std::sregex_iterator it(page.begin(), page.end(), script), end; it != end; ++it, ++scripts) {
    EXPECT_NE((*it)[1].str().find("src="), std::string::npos);
    EXPECT_EQ((*it)[2].str(), "");
  }
  EXPECT_EQ(scripts, 1);
  std::string script_reply = Exchange(PageRequest("GET", "/dashboard.js"));
  EXPECT_EQ(StatusOf(script_reply), 200);
  EXPECT_NE(script_reply.find("Content-Type: text/javascript"), std::string::npos);
  // The page never puts text in as HTML.
  EXPECT_EQ(BodyOf(script_reply).find("innerHTML ="), std::string::npos);
}

TEST_F(DashboardTest, LoginSetsTheCookieAndEveryRefusalHoldsOverTheWire) {
  std::string login =
      Exchange("GET /?token=" + kToken + " HTTP/1.1\r\nHost: " + Host() + "\r\n\r\n");
  EXPECT_EQ(StatusOf(login), 303) << login;
  EXPECT_NE(login.find("Set-Cookie: herd_dashboard=" + kToken + "; HttpOnly; SameSite=Strict"),
            std::string::npos);
  EXPECT_EQ(
      StatusOf(Exchange("GET / HTTP/1.1\r\nHost: evil.example:" + std::to_string(server_->port()) +
                        "\r\nCookie: herd_dashboard=" + kToken + "\r\n\r\n")),
      403);
  EXPECT_EQ(StatusOf(Exchange("GET /api/doctor HTTP/1.1\r\nHost: " + Host() +
                              "\r\nReferer: " + Origin() + "/?token=" + kToken + "\r\n\r\n")),
            401);
  std::string foreign = PageRequest("POST", "/api/kill", "{}");
  foreign.replace(foreign.find(Origin()), Origin().size(), "http://evil.example");
  EXPECT_EQ(StatusOf(Exchange(foreign)), 403);
  // A second Origin (or Host) after a good one is refused, not ignored.
  EXPECT_EQ(
      StatusOf(Exchange(PageRequest("POST", "/api/kill", "{}", "Origin: http://evil.example\r\n"))),
      400);
  EXPECT_EQ(StatusOf(Exchange("OPTIONS /api/kill HTTP/1.1\r\nHost: " + Host() +
                              "\r\nOrigin: http://evil.example\r\n\r\n")),
            403);
}

TEST_F(DashboardTest, HttpLimitsAreAnsweredWithTheirStatus) {
  EXPECT_EQ(StatusOf(Exchange("GET / HTTP/2.0\r\nHost: x\r\n\r\n")), 505);
  EXPECT_EQ(StatusOf(Exchange("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n")), 400);
  EXPECT_EQ(StatusOf(Exchange("GET / HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n")),
            431);
  EXPECT_EQ(
      StatusOf(Exchange(PageRequest("POST", "/api/kill", "", "Transfer-Encoding: chunked\r\n"))),
      411);
  EXPECT_EQ(StatusOf(Exchange(PageRequest(
                "POST", "/api/kill", "",
                "Content-Length: " + std::to_string(HttpServer::kMaxBodyBytes + 1) + "\r\n"))),
            413);
  EXPECT_EQ(StatusOf(Exchange(PageRequest("GET", "/nothing-here"))), 404);
  EXPECT_EQ(StatusOf(Exchange(PageRequest("DELETE", "/api/kill"))), 405);
}

TEST_F(DashboardTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  Client client(server_->port());
  for (int i = 0; i < 3; ++i) {
    client.Send(PageRequest("GET", "/dashboard.css"));
    std::string reply = client.ReadReply();
    EXPECT_EQ(StatusOf(reply), 200) << reply;
    EXPECT_NE(reply.find("Connection: keep-alive"), std::string::npos);
  }
}

TEST_F(DashboardTest, PostsAreCheckedLikeTheMcpTools) {
  std::string task_id = NewTask("a task for refused posts");
  std::string reply =
      Exchange(PageRequest("POST", "/api/kill", R"({"task_id":")" + task_id + R"("})"));
  EXPECT_EQ(StatusOf(reply), 400) << reply;
  EXPECT_NE(BodyOf(reply).find("agent_id"), std::string::npos) << reply;
  std::string not_json = Exchange(PageRequest("POST", "/api/stop", "task_id=x"));
  EXPECT_EQ(StatusOf(not_json), 400);
  std::string unknown = Exchange(
      PageRequest("POST", "/api/kill",
                  R"({"task_id":")" + task_id + R"(","agent_id":"nobody-1","reason":"r"})"));
  EXPECT_EQ(StatusOf(unknown), 404) << unknown;
}

TEST_F(DashboardTest, EventStreamPushesAChangeAndResumesFromLastEventId) {
  std::string first_task = NewTask("the first task");
  Client stream(server_->port());
  stream.Send(PageRequest("GET", "/events", "", "Sec-Fetch-Site: same-origin\r\n"));
  std::string received = stream.ReadUntil(
      [&](const std::string& text) { return text.find(first_task) != std::string::npos; });
  ASSERT_NE(received.find("HTTP/1.1 200"), std::string::npos) << received;
  ASSERT_NE(received.find("Content-Type: text/event-stream"), std::string::npos);
  ASSERT_NE(received.find("event: tasks"), std::string::npos) << received;
  std::smatch id;
  ASSERT_TRUE(std::regex_search(received, id, std::regex("id: (\\S+)\nevent: tasks")));
  std::string last_id = id[1];

  std::string second_task = NewTask("the second task");
  received = stream.ReadUntil(
      [&](const std::string& text) { return text.find(second_task) != std::string::npos; });
  EXPECT_NE(received.find(second_task), std::string::npos) << "no push of the new task";

  // A page that reconnects with the first id has missed the second task:
  // the first event it gets carries it. One that comes back with the newest
  // id (here in the query, as a page that was hidden sends it) is sent
  // nothing until the next change.
  Client resumed(server_->port());
  resumed.Send(PageRequest("GET", "/events", "", "Last-Event-ID: " + last_id + "\r\n"));
  std::string again = resumed.ReadUntil(
      [&](const std::string& text) { return text.find("event: tasks") != std::string::npos; });
  EXPECT_NE(again.find(second_task), std::string::npos) << again;

  std::vector<std::string> ids;
  std::regex id_line("id: (\\S+)");
  for (std::sregex_iterator it(received.begin(), received.end(), id_line), end; it != end; ++it) {
    ids.push_back((*it)[1]);
  }
  Client current(server_->port());
  current.Send(PageRequest("GET", "/events?last_event_id=" + ids.back()));
  std::string third_task = NewTask("the third task");
  std::string after = current.ReadUntil(
      [&](const std::string& text) { return text.find("event: tasks") != std::string::npos; });
  size_t event = after.find("event: tasks");
  ASSERT_NE(event, std::string::npos) << after;
  EXPECT_NE(after.find(third_task, event), std::string::npos)
      << "the first tasks event after resuming is the new change, not a repeat";
}

TEST_F(DashboardTest, EventStreamFollowsAnAgentsStatusAndOutput) {
  std::string task_id = NewTask("a task with a talking agent");
  std::string fifo = Subdirectory("fifo") + "/go";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string agent_id = StartAgent(
      task_id, {"sh", "-c", "echo first-line; read line < '" + fifo + "'; echo second-line"});
  Client stream(server_->port());
  stream.Send(PageRequest("GET", "/events?task_id=" + task_id + "&agent_id=" + agent_id));
  std::string received = stream.ReadUntil(
      [&](const std::string& text) { return text.find("first-line") != std::string::npos; });
  ASSERT_NE(received.find("event: task\n"), std::string::npos) << received;
  ASSERT_NE(received.find("event: output"), std::string::npos) << received;
  {
    std::ofstream release(fifo);
    release << "go\n";
  }
  received = stream.ReadUntil([&](const std::string& text) {
    return text.find("second-line") != std::string::npos &&
           text.find(R"("status":"completed")") != std::string::npos;
  });
  EXPECT_NE(received.find("second-line"), std::string::npos) << received;
  EXPECT_NE(received.find(R"("status":"completed")"), std::string::npos) << received;
}

TEST_F(DashboardTest, OutputPagesBackThroughALogInWholeLines) {
  std::string task_id = NewTask("a task with a long log");
  std::string agent_id = StartAgent(task_id, {"sh", "-c", "seq 1 20000"});
  WaitForEnd(task_id, agent_id);
  std::string target =
      "/api/output?task_id=" + task_id + "&agent_id=" + agent_id + "&max_bytes=1000";
  json tail = json::parse(BodyOf(Exchange(PageRequest("GET", target))));
  ASSERT_TRUE(tail.value("success", false)) << tail.dump();
  std::string text = tail["text"];
  EXPECT_EQ(text.substr(text.size() - 6), "20000\n");
  EXPECT_EQ(tail["end"], tail["file_size"]);
  uint64_t begin = tail["begin"];
  ASSERT_GT(begin, 0u);
  // The page before ends exactly where this one starts, in whole lines.
  json before = json::parse(
      BodyOf(Exchange(PageRequest("GET", target + "&before=" + std::to_string(begin)))));
  EXPECT_EQ(before["end"], begin);
  std::string earlier = before["text"];
  std::string last_earlier = earlier.substr(earlier.rfind('\n', earlier.size() - 2) + 1);
  int last_number = std::stoi(last_earlier);
  EXPECT_EQ(std::to_string(last_number + 1) + "\n", text.substr(0, text.find('\n') + 1));
  EXPECT_EQ(StatusOf(Exchange(PageRequest("GET", target + "&before=x"))), 400);
}

TEST_F(DashboardTest, KillFromAPostStopsTheAgentsProcesses) {
  std::string task_id = NewTask("a task with an agent to kill");
  std::string agent_id = StartAgent(task_id, {"sleep", "300"});
  json agent;
  ASSERT_TRUE(WaitForJson(TaskRegistryPath(task_id), [&](const json& document) {
                agent = AgentIn(document, agent_id);
                return agent.value("pid", 0) > 0;
              }).is_object());
  Identity process = AgentProcessOf(agent);
  std::string reply = Exchange(PageRequest("POST", "/api/kill",
                                           R"({"task_id":")" + task_id + R"(","agent_id":")" +
                                               agent_id + R"(","reason":"from the page"})"));
  ASSERT_EQ(StatusOf(reply), 200) << reply;
  EXPECT_TRUE(json::parse(BodyOf(reply)).value("success", false));
  EXPECT_TRUE(WaitForExit(process));
  Result<registry::SharedTask> task = orchestrator_->ReadTask(task_id);
  ASSERT_TRUE(task.ok());
  const registry::AgentRecord* record = (*task)->task.FindAgent(agent_id);
  ASSERT_NE(record, nullptr);
  EXPECT_EQ(record->status, "terminated");
  EXPECT_EQ(record->termination_reason.value_or(""), "from the page");
}

TEST_F(DashboardTest, StopEndsOpenStreams) {
  Client stream(server_->port());
  stream.Send(PageRequest("GET", "/events"));
  stream.ReadUntil(
      [](const std::string& text) { return text.find("event: tasks") != std::string::npos; });
  server_->Stop();
  std::string all = stream.ReadUntil([](const std::string&) { return false; }, DeadlineIn());
  EXPECT_EQ(server_->OpenConnections(), 0u);
}

// --- Under the PostgreSQL registry -------------------------------------------

// The real `herd dashboard` on the PostgreSQL registry of a database of its
// own: HERD_REGISTRY is set for the test's process, so the dashboard and
// every herd command the test runs (the other processes that commit) use it.
class DashboardPgTest : public HerdTest {
 protected:
  void SetUp() override {
    HerdTest::SetUp();
    if (!database_.available()) {
      GTEST_SKIP() << "no PostgreSQL server: run under ctest (the PgServer fixture)";
    }
    registry_setting_.Set("HERD_REGISTRY", database_.conninfo());
  }
  void TearDown() override {
    if (dashboard_) {
      ::kill(dashboard_->pid(), SIGTERM);
      CommandResult served = dashboard_->Wait();
      EXPECT_EQ(served.exit_code, 0) << served.Describe();
    }
    HerdTest::TearDown();
  }

  // Starts `herd dashboard` on a free port and returns once it serves; with
  // `hidden`, as a machine that cannot see that directory
  // (HerdWithoutDirectory).
  void StartDashboard(const std::string& hidden = "") {
    port_ = FreePort();
    RunOptions options;
    options.timeout = std::chrono::seconds(300);
    std::vector<std::string> args = {"dashboard", "--port", std::to_string(port_)};
    if (hidden.empty()) {
      dashboard_ = std::make_unique<HerdProcess>(args, options);
    } else {
      dashboard_ = std::make_unique<HerdWithoutDirectory>(hidden, args, options);
    }
    ASSERT_TRUE(dashboard_->WaitForOutput("every task of the PostgreSQL registry"))
        << dashboard_->Wait().Describe();
    std::ifstream token_file(state() + "/herd/dashboard_token");
    std::getline(token_file, token_);
    ASSERT_EQ(token_.size(), 32u);
  }

  // Any port free now (the dashboard binds it next).
  static int FreePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(fd);
    return ntohs(address.sin_port);
  }

  std::string PageGet(const std::string& target) const {
    std::string host = "127.0.0.1:" + std::to_string(port_);
    return "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nCookie: herd_dashboard=" + token_ +
           "\r\nOrigin: http://" + host + "\r\n\r\n";
  }

  // What `client` receives from `from` on, until it holds `text`.
  static std::string ReadUntilFound(Client& client, const std::string& text, size_t from = 0) {
    std::string received = client.ReadUntil([&](const std::string& all) {
      return all.size() > from && all.find(text, from) != std::string::npos;
    });
    return received.size() > from ? received.substr(from) : "";
  }

  // No file of the JSON registry anywhere under the test's root.
  void ExpectNoJsonRegistryFile() const {
    EXPECT_TRUE(TaskRegistriesUnder(root()).empty());
    EXPECT_FALSE(std::filesystem::exists(workspace() + "/registry/GLOBAL_REGISTRY.json"));
    EXPECT_FALSE(std::filesystem::exists(state() + "/herd/workspaces.json"));
  }

  registry::pg_test::TestDatabase database_;
  ScopedEnvironment registry_setting_;
  std::unique_ptr<CommandProcess> dashboard_;
  int port_ = 0;
  std::string token_;
};

// The task list and a task's stream are pushed by commits other processes
// (herd task create, progress, kill) make: LISTEN/NOTIFY, no file watched.
// The followed agent's log is on this machine: its output comes from it.
TEST_F(DashboardPgTest, TheStreamPushesOtherProcessesCommits) {
  std::string task_id = CreateTask();
  std::string agent_id =
      DeployAgent(task_id, {"sh", "-c", "echo first-output-line; exec sleep 300"});
  StartDashboard();
  Client stream(port_);
  stream.Send(PageGet("/events?task_id=" + task_id + "&agent_id=" + agent_id));
  std::string received = ReadUntilFound(stream, "first-output-line");
  ASSERT_NE(received.find("HTTP/1.1 200"), std::string::npos) << received;
  ASSERT_NE(received.find("event: tasks\n"), std::string::npos) << received;
  ASSERT_NE(received.find("event: task\n"), std::string::npos) << received;
  ASSERT_NE(received.find("event: output\n"), std::string::npos) << received;
  EXPECT_NE(received.find(task_id), std::string::npos) << received;

  // A new task, created by another process: the list.
  size_t seen = stream.received().size();
  std::string second_task = CreateTask({}, "a second task");
  received = ReadUntilFound(stream, second_task, seen);
  EXPECT_NE(received.find("event: tasks\n"), std::string::npos) << "no push of the new task";

  // A report: the task.
  seen = stream.received().size();
  HerdJson({"progress", task_id, agent_id, "--status", "working", "--progress", "50", "--message",
            "halfway-there"});
  received = ReadUntilFound(stream, "halfway-there", seen);
  EXPECT_NE(received.find("event: task\n"), std::string::npos) << received;

  // A kill: the agent's new status.
  seen = stream.received().size();
  HerdJson({"kill", task_id, agent_id});
  received = ReadUntilFound(stream, R"("status":"terminated")", seen);
  EXPECT_NE(received.find(R"("status":"terminated")"), std::string::npos) << received;
  ExpectNoJsonRegistryFile();
}

// An agent whose log is not on this machine (here: removed, as on another
// machine's dashboard) is shown from the tail the registry keeps, in the
// stream and by /api/output.
TEST_F(DashboardPgTest, AnAgentsOutputComesFromTheRegistryWhenItsLogIsElsewhere) {
  std::string task_id = CreateTask();
  std::string agent_id =
      DeployAgent(task_id, {"sh", "-c", "echo kept-line-one; echo kept-line-two"});
  CommandResult waited = Herd({"wait", task_id, agent_id, "--timeout", "120"});
  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  ASSERT_TRUE(std::filesystem::remove(LogPath(task_id, agent_id)));
  StartDashboard();

  Client stream(port_);
  stream.Send(PageGet("/events?task_id=" + task_id + "&agent_id=" + agent_id));
  std::string received = ReadUntilFound(stream, "kept-line-two");
  size_t output = received.find("event: output\n");
  ASSERT_NE(output, std::string::npos) << received;
  EXPECT_NE(received.find("kept-line-one", output), std::string::npos) << received;
  std::smatch id;
  ASSERT_TRUE(std::regex_search(received, id, std::regex("id: (\\S+)\nevent: output")));
  EXPECT_NE(std::string(id[1]).find(".r"), std::string::npos) << "the tail's cursor: " << id[1];

  Client page(port_);
  page.Send(PageGet("/api/output?task_id=" + task_id + "&agent_id=" + agent_id));
  std::string reply = page.ReadReply();
  ASSERT_EQ(StatusOf(reply), 200) << reply;
  json window = json::parse(BodyOf(reply));
  EXPECT_EQ(window["text"], "kept-line-one\nkept-line-two\n") << reply;
  EXPECT_EQ(window["begin"], 0);

  // A new commit of the task reads the tail again; unchanged, it is not sent again.
  size_t seen = stream.received().size();
  HerdJson({"task", "limits", task_id, "--max-agents", "40"});
  received = ReadUntilFound(stream, "\"max_agents\":40", seen);
  EXPECT_EQ(received.find("event: output"), std::string::npos) << received;
  ExpectNoJsonRegistryFile();
}

// The followed agent's output, where its log is not on this machine (the
// dashboard runs as a machine that cannot see the workspace), is pushed as
// its supervisor appends it to the registry (NOTIFY on herd_output), with
// no commit of the task in between.
TEST_F(DashboardPgTest, AnAgentsOutputFromElsewhereIsPushedAsItIsAppended) {
  std::string task_id = CreateTask();
  std::string fifo = root() + "/next-line";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::string agent_id = DeployAgent(
      task_id,
      {"sh", "-c", "echo line-before; read line < '" + fifo + "'; echo \"$line\"; exec sleep 300"});
  StartDashboard(workspace());

  Client stream(port_);
  stream.Send(PageGet("/events?task_id=" + task_id + "&agent_id=" + agent_id));
  std::string received = ReadUntilFound(stream, "line-before");
  ASSERT_NE(received.find("\"end\""), std::string::npos) << received;
  std::smatch id;
  ASSERT_TRUE(std::regex_search(received, id, std::regex("id: (\\S+)\nevent: output")));
  EXPECT_NE(std::string(id[1]).find(".r"), std::string::npos) << "from the registry: " << id[1];
  size_t seen = stream.received().size();
  {
    std::ofstream next(fifo);  // opens once the agent reads
    next << "line-while-watched\n";
  }
  received = ReadUntilFound(stream, "line-while-watched", seen);
  size_t output = received.find("event: output\n");
  ASSERT_NE(output, std::string::npos) << received;
  EXPECT_NE(received.find("line-while-watched", output), std::string::npos) << received;
  HerdJson({"kill", task_id, agent_id});
}

TEST(EventCursorTest, RoundTripsAndRefusesOtherShapes) {
  dashboard::EventCursor cursor;
  cursor.tasks = 0xabc;
  cursor.task = 7;
  cursor.output = 12345;
  std::optional<dashboard::EventCursor> parsed = dashboard::EventCursor::Parse(cursor.ToString());
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->tasks, 0xabcu);
  EXPECT_EQ(parsed->task, 7u);
  EXPECT_EQ(parsed->output, 12345u);
  cursor.output.reset();
  parsed = dashboard::EventCursor::Parse(cursor.ToString());
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->output);
  EXPECT_FALSE(parsed->registry_tail);
  cursor.registry_tail = 0xfeed;
  parsed = dashboard::EventCursor::Parse(cursor.ToString());
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->output);
  EXPECT_EQ(parsed->registry_tail, 0xfeedu);
  for (const char* bad : {"", "42", "t1.s2.", "t1.s2.ox", "tz.s1.o1", "t1.s2.r", "t1.s2.rzz"}) {
    EXPECT_FALSE(dashboard::EventCursor::Parse(bad)) << bad;
  }
}

TEST(LineWindowTest, ReadsWholeLinesBeforeAndFrom) {
  testing_util::TempDir directory;
  std::string path = directory.path() + "/log";
  {
    std::ofstream out(path);
    out << "one\ntwo\nthree\npartial";
  }
  Result<LineWindow> tail = ReadLinesBefore(path, UINT64_MAX, 16);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->text, "three\n");  // "wo\n" is cut; "partial" is unfinished
  EXPECT_EQ(tail->begin, 8u);
  EXPECT_EQ(tail->end, 14u);
  Result<LineWindow> before = ReadLinesBefore(path, tail->begin, 100);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->text, "one\ntwo\n");
  EXPECT_EQ(before->begin, 0u);
  Result<LineWindow> from = ReadLinesFrom(path, 4, 100);
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(from->text, "two\nthree\n");
  Result<LineWindow> unfinished = ReadLinesFrom(path, 14, 100);
  ASSERT_TRUE(unfinished.ok());
  EXPECT_EQ(unfinished->text, "");
  EXPECT_EQ(unfinished->end, 14u);
  EXPECT_TRUE(
      ReadLinesBefore(directory.path() + "/missing", 0, 1).status().Is(Status::Code::kNotFound));
}

}  // namespace
}  // namespace herd::test_util

int main(int argc, char** argv) {
  return herd::test_util::TestMainOrSupervisor(argc, argv);
}

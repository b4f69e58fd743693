// Real PostgreSQL servers for tests.
//
// - TestDatabase: a fresh database on the server of the ctest fixture
//   PgServer (CMakeLists.txt: one throwaway cluster per test run, its
//   socket directory in HERD_TEST_POSTGRES_HOST), dropped at the end.
// - TestServer: a cluster of the test's own (scripts/test-postgres.sh), for
//   tests that restart or stop the server: the shared one must stay up.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pg/connection.h"
#include "registry/pg_registry.h"
#include "util/random.h"

namespace herd::registry::pg_test {

// The fixture's socket directory, or "" when not run by ctest.
inline std::string FixtureHost() {
  const char* host = std::getenv("HERD_TEST_POSTGRES_HOST");
  return host ? host : "";
}

inline std::string Conninfo(const std::string& host, const std::string& database) {
  return "host=" + host + " user=postgres dbname=" + database;
}

// Runs one statement on the server's postgres database; fails the test on error.
inline void AdminExec(const std::string& host, const std::string& sql) {
  pg::ConnectOptions options;
  options.conninfo = Conninfo(host, "postgres");
  Result<std::unique_ptr<pg::Connection>> admin = pg::Connection::Open(options);
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  Result<pg::Rows> done = (*admin)->Exec(sql);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
}

// Admissions from `processes` forked processes, each with its own
// PgRegistry, as many machines would make them: process p makes `each`,
// the i-th being admission(p, i) (a task id and a request) under the
// cluster cap `cap`. Returns how many were admitted in all, or -1 when a
// process failed (an error other than a limit's refusal, or a crash).
using AdmissionOf = std::function<std::pair<std::string, AdmissionRequest>(int p, int i)>;
inline int AdmitFromProcesses(const pg::ConnectOptions& options, int processes, int each, int cap,
                              const AdmissionOf& admission) {
  std::vector<pid_t> children;
  for (int p = 0; p < processes; ++p) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
      Result<std::unique_ptr<PgRegistry>> mine = PgRegistry::Open(options, "/tmp/herd-pg-test");
      if (!mine.ok()) _exit(100);
      int admitted = 0;
      for (int i = 0; i < each; ++i) {
        auto [task_id, request] = admission(p, i);
        Result<AgentRecord> agent = (*mine)->Admit(task_id, request, cap);
        if (agent.ok()) {
          ++admitted;
        } else if (!agent.status().Is(Status::Code::kRefused)) {
          _exit(101);  // anything but a limit's refusal is a failure
        }
      }
      _exit(admitted);
    }
    children.push_back(pid);
  }
  int admitted = 0;
  bool failed = false;
  for (pid_t child : children) {
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) >= 100) {
      failed = true;  // still reap the others
      continue;
    }
    admitted += WEXITSTATUS(status);
  }
  return failed ? -1 : admitted;
}

class TestDatabase {
 public:
  explicit TestDatabase(std::string host = FixtureHost())
      : host_(std::move(host)), name_("herd_test_" + RandomHex(16)) {
    if (host_.empty()) return;
    // An identifier cannot be a parameter; the name is hex digits only.
    AdminExec(host_, "CREATE DATABASE " + name_);
  }
  ~TestDatabase() {
    if (!host_.empty() && getpid() == owner_) {
      AdminExec(host_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    }
  }
  bool available() const { return !host_.empty(); }
  std::string conninfo() const { return Conninfo(host_, name_); }
  pg::ConnectOptions options() const {
    pg::ConnectOptions options;
    options.conninfo = conninfo();
    return options;
  }

 private:
  std::string host_;
  std::string name_;
  pid_t owner_ = getpid();
};

class TestServer {
 public:
  TestServer() : directory_("/tmp/herd-pg-" + RandomHex(8)) { started_ = Run("start") == 0; }
  ~TestServer() { Run("stop"); }
  bool started() const { return started_; }
  const std::string& host() const { return directory_; }

  // pg_ctl restart -m fast: every session is ended, the server comes back.
  int Restart() const { return PgCtl("restart"); }
  // pg_ctl stop -m fast, and start again: the server is away in between.
  int Stop() const { return PgCtl("stop"); }
  int Start() const { return PgCtl("start"); }

 private:
  int PgCtl(const std::string& action) const {
    std::string command = std::string(getuid() == 0 ? "runuser -u postgres -- " : "") +
                          "/usr/lib/postgresql/15/bin/pg_ctl -D " + directory_ +
                          "/data -m fast -w -o \"-k " + directory_ + " -c listen_addresses=''\" " +
                          action + " >/dev/null 2>&1";
    return std::system(command.c_str());
  }

  int Run(const std::string& action) const {
    std::string command =
        std::string(HERD_POSTGRES_SCRIPT) + " " + action + " " + directory_ + " >/dev/null";
    return std::system(command.c_str());
  }

  std::string directory_;
  bool started_ = false;
};

}  // namespace herd::registry::pg_test

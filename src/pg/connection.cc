#include "pg/connection.h"

#include <chrono>
#include <cstdlib>
#include <random>
#include <regex>
#include <thread>

namespace herd::pg {
namespace {

constexpr const char kSqlStateTag[] = " [SQLSTATE ";

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// Transient: the whole transaction may run again.
bool IsConflict(const std::string& state) {
  return state == "40001" || state == "40P01";
}

// The session is gone (or the server is going away or not up yet).
bool IsConnectionLoss(const std::string& state) {
  return StartsWith(state, "08") || state == "57P01" || state == "57P02" || state == "57P03";
}

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

Status ErrorStatus(const std::string& what, const std::string& message, const std::string& state) {
  std::string text = what + ": " + Trimmed(message) + kSqlStateTag + state + "]";
  if (state == "55P03" || state == "57014") return Status::Timeout(text);
  return Status::IOError(text);
}

void Backoff(int attempt, const RetryPolicy& policy) {
  thread_local std::mt19937 generator{std::random_device{}()};
  int ceiling = policy.first_backoff_ms << std::min(attempt, 16);
  ceiling = std::min(std::max(ceiling, 1), policy.max_backoff_ms);
  // Full jitter: contenders that failed together do not retry together.
  std::uniform_int_distribution<int> delay(ceiling / 4, ceiling);
  std::this_thread::sleep_for(std::chrono::milliseconds(delay(generator)));
}

}  // namespace

bool IsPostgresSetting(const std::string& setting) {
  if (StartsWith(setting, "postgresql://") || StartsWith(setting, "postgres://")) return true;
  // A conninfo is key=value pairs; a path never starts with a known key.
  static const std::regex conninfo(
      R"(^\s*(host|hostaddr|port|dbname|user|service|password|sslmode|application_name)\s*=)");
  return std::regex_search(setting, conninfo);
}

std::string RedactedSetting(const std::string& setting) {
  static const std::regex url_password(R"(^(postgres(ql)?://[^:/@]*):[^@]*@)");
  static const std::regex conninfo_password(R"(password\s*=\s*('[^']*'|\S+))");
  std::string redacted = std::regex_replace(setting, url_password, "$1:***@");
  return std::regex_replace(redacted, conninfo_password, "password=***");
}

std::string SqlStateOf(const Status& status) {
  const std::string& message = status.message();
  size_t at = message.rfind(kSqlStateTag);
  if (at == std::string::npos) return "";
  size_t start = at + sizeof(kSqlStateTag) - 1;
  size_t end = message.find(']', start);
  if (end == std::string::npos) return "";
  return message.substr(start, end - start);
}

long long Rows::Integer(int row, int column) const {
  return std::atoll(PQgetvalue(result_.get(), row, column));
}

long long Rows::Affected() const {
  return result_ ? std::atoll(PQcmdTuples(result_.get())) : 0;
}

Result<std::unique_ptr<Connection>> Connection::Open(const ConnectOptions& options) {
  std::string session = "-c lock_timeout=" + std::to_string(options.lock_timeout_ms) +
                        " -c idle_in_transaction_session_timeout=" +
                        std::to_string(options.idle_in_transaction_timeout_ms);
  std::string connect_timeout = std::to_string(options.connect_timeout_seconds);
  // dbname first: it is expanded as the URL or conninfo, and what follows
  // overrides it.
  const char* keywords[] = {"dbname",
                            "options",
                            "keepalives",
                            "keepalives_idle",
                            "keepalives_interval",
                            "keepalives_count",
                            "connect_timeout",
                            "application_name",
                            nullptr};
  const char* values[] = {options.conninfo.c_str(),
                          session.c_str(),
                          "1",
                          "30",
                          "10",
                          "3",
                          connect_timeout.c_str(),
                          options.application_name.c_str(),
                          nullptr};
  PGconn* connection = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  std::string redacted = RedactedSetting(options.conninfo);
  if (connection == nullptr) return Status::IOError("cannot allocate a PostgreSQL connection");
  if (PQstatus(connection) != CONNECTION_OK) {
    std::string message = PQerrorMessage(connection);
    PQfinish(connection);
    return ErrorStatus("cannot connect to PostgreSQL at " + redacted +
                           " (check HERD_REGISTRY or --registry, and that the server runs)",
                       message, "08001");
  }
  return std::unique_ptr<Connection>(new Connection(connection, redacted));
}

Connection::~Connection() {
  PQfinish(connection_);
}

int Connection::Socket() const {
  return PQsocket(connection_);
}

Result<std::vector<Connection::Notification>> Connection::TakeNotifications() {
  if (PQconsumeInput(connection_) == 0) {
    return Status::IOError("lost the PostgreSQL connection at " + redacted_ + ": " +
                           PQerrorMessage(connection_));
  }
  std::vector<Notification> notifications;
  while (PGnotify* notification = PQnotifies(connection_)) {
    notifications.push_back({notification->relname, notification->extra});
    PQfreemem(notification);
  }
  return notifications;
}

bool Connection::Broken() const {
  return PQstatus(connection_) != CONNECTION_OK;
}

Status Connection::Reset() {
  PQreset(connection_);
  if (PQstatus(connection_) == CONNECTION_OK) return Status::Ok();
  return ErrorStatus("cannot reconnect to PostgreSQL at " + redacted_, PQerrorMessage(connection_),
                     "08001");
}

Result<Rows> Connection::Exec(const std::string& sql, const Parameters& parameters) {
  std::vector<const char*> values;
  values.reserve(parameters.size());
  for (const std::optional<std::string>& parameter : parameters) {
    values.push_back(parameter ? parameter->c_str() : nullptr);
  }
  PGresult* result = PQexecParams(connection_, sql.c_str(), static_cast<int>(values.size()),
                                  nullptr, values.data(), nullptr, nullptr, 0);
  ExecStatusType outcome = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (outcome == PGRES_COMMAND_OK || outcome == PGRES_TUPLES_OK) return Rows(result);
  const char* field = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = result ? PQresultErrorMessage(result) : PQerrorMessage(connection_);
  if (message.empty()) message = PQerrorMessage(connection_);
  if (result) PQclear(result);
  std::string state = field ? field : "";
  if (Broken()) {
    if (state.empty()) state = "08006";
    return ErrorStatus("the connection to PostgreSQL at " + redacted_ + " was lost", message,
                       state);
  }
  if (state.empty()) state = "XX000";
  return ErrorStatus("PostgreSQL at " + redacted_ + " failed a statement", message, state);
}

Status RunTransaction(Connection& connection, Idempotence idempotence, const TransactionBody& body,
                      const RetryPolicy& policy) {
  Status last;
  for (int attempt = 0; attempt < policy.max_attempts; ++attempt) {
    if (attempt > 0) Backoff(attempt, policy);
    if (connection.Broken()) {
      last = connection.Reset();
      if (!last.ok()) continue;
    }
    Result<Rows> begun = connection.Exec("BEGIN ISOLATION LEVEL READ COMMITTED");
    if (!begun.ok()) {
      last = begun.status();
      if (IsConnectionLoss(SqlStateOf(last))) continue;
      return last;
    }
    Result<Finish> finished = body(connection);
    if (!finished.ok() || *finished == Finish::kRollback) {
      std::string state = finished.ok() ? "" : SqlStateOf(finished.status());
      if (!connection.Broken()) {
        Result<Rows> rolled_back = connection.Exec("ROLLBACK");
        (void)rolled_back;  // a failed ROLLBACK leaves a broken session: reset next time
      }
      if (finished.ok()) return Status::Ok();
      last = finished.status();
      // Nothing committed: a conflict or a lost session runs it all again.
      if (IsConflict(state) || IsConnectionLoss(state)) continue;
      return last;
    }
    Result<Rows> committed = connection.Exec("COMMIT");
    if (committed.ok()) return Status::Ok();
    last = committed.status();
    std::string state = SqlStateOf(last);
    if (IsConflict(state)) continue;
    if (IsConnectionLoss(state)) {
      // The server may have committed before the connection died.
      if (idempotence == Idempotence::kIdempotent) continue;
      return Status::IOError(
          "the commit's outcome is unknown (the connection to PostgreSQL at " +
          connection.redacted_setting() +
          " was lost during COMMIT): read the task again before repeating the operation; " +
          last.message());
    }
    return last;
  }
  return last.WithContext("gave up after " + std::to_string(policy.max_attempts) + " attempts");
}

}  // namespace herd::pg

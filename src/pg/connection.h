// A thin wrapper of libpq: one connection to a PostgreSQL server, its
// queries and its transactions, with errors as herd Status values.
//
// - Connections are made from a libpq conninfo string or a postgresql:// /
//   postgres:// URL. Every session gets lock_timeout and
//   idle_in_transaction_session_timeout (so a stuck or dead client's row
//   locks do not outlive it) and TCP keepalives; they are libpq connection
//   options, so a reset connection keeps them.
// - Only parameterized queries (PQexecParams): values never become SQL text.
// - A failed query is a Status whose message ends with "[SQLSTATE xxxxx]"
//   (SqlStateOf reads it back): lock_timeout (55P03) is a Timeout, a lost
//   connection an IOError, anything else a Refused/IOError with the
//   server's message.
// - RunTransaction runs a whole transaction and retries all of it on a
//   serialization failure (40001) or deadlock (40P01), and after a lost
//   connection when nothing can have committed, with a bounded, jittered
//   backoff. A commit whose outcome is unknown (the connection died while
//   COMMIT was in flight) is retried only for an idempotent transaction.
//
// A Connection is not thread-safe: use one per thread (or a pool). It must
// not be used in a forked child; the child opens its own.
#pragma once

#include <libpq-fe.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace herd::pg {

// Whether `setting` names a PostgreSQL server: a postgresql:// or
// postgres:// URL, or a libpq conninfo ("host=... dbname=...").
bool IsPostgresSetting(const std::string& setting);

// The setting without its password, for messages.
std::string RedactedSetting(const std::string& setting);

struct ConnectOptions {
  std::string conninfo;  // URL or key=value conninfo
  int lock_timeout_ms = 10000;
  int idle_in_transaction_timeout_ms = 60000;
  int connect_timeout_seconds = 10;
  std::string application_name = "herd";
};

// The SQLSTATE of a failed query's Status, or "" if it has none.
std::string SqlStateOf(const Status& status);

// A query's result rows, owned.
class Rows {
 public:
  Rows() = default;
  explicit Rows(PGresult* result) : result_(result, PQclear) {}

  int size() const { return result_ ? PQntuples(result_.get()) : 0; }
  bool empty() const { return size() == 0; }
  bool IsNull(int row, int column) const { return PQgetisnull(result_.get(), row, column); }
  std::string Text(int row, int column) const {
    return std::string(PQgetvalue(result_.get(), row, column),
                       PQgetlength(result_.get(), row, column));
  }
  long long Integer(int row, int column) const;
  // Rows changed by an INSERT/UPDATE/DELETE.
  long long Affected() const;

 private:
  std::shared_ptr<PGresult> result_;
};

using Parameters = std::vector<std::optional<std::string>>;

class Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const ConnectOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one parameterized statement.
  Result<Rows> Exec(const std::string& sql, const Parameters& parameters = {});

  // Whether the connection is usable; Reset() reconnects.
  bool Broken() const;
  Status Reset();

  const std::string& redacted_setting() const { return redacted_; }

  // For a connection that LISTENs (pg/listener.h): its socket, to poll(2)
  // on, and the notifications received since the last call, reading what
  // the socket holds without blocking.
  struct Notification {
    std::string channel;
    std::string payload;
  };
  int Socket() const;
  Result<std::vector<Notification>> TakeNotifications();

 private:
  Connection(PGconn* connection, std::string redacted)
      : connection_(connection), redacted_(std::move(redacted)) {}

  PGconn* connection_;
  std::string redacted_;
};

// Whether a transaction may be run again after its commit's outcome is
// unknown (it records its effect under a client-made id, so a second run
// finds it and applies nothing).
enum class Idempotence { kIdempotent, kNotIdempotent };

struct RetryPolicy {
  int max_attempts = 12;
  int first_backoff_ms = 2;
  int max_backoff_ms = 200;
};

// How a transaction's body ends when it succeeds: with a COMMIT, or with a
// ROLLBACK (nothing to write).
enum class Finish { kCommit, kRollback };
using TransactionBody = std::function<Result<Finish>(Connection&)>;

// BEGIN (READ COMMITTED); `body`; COMMIT. The body's error rolls back and
// is returned, unless it is a serialization failure or deadlock, which
// runs the whole transaction again (as does a connection lost before
// COMMIT). `body` must therefore start from scratch each time.
Status RunTransaction(Connection& connection, Idempotence idempotence, const TransactionBody& body,
                      const RetryPolicy& policy = RetryPolicy());

}  // namespace herd::pg

// herd-bench-store: herd's registry store under concurrent writer processes,
// measured against the disk's floor and against the seed's locking scheme.
//
// One run, one scratch directory, three measurements:
//   1. The floor: one process doing nothing but durable replaces of a ~10 KB
//      file (write + fdatasync + rename + directory fsync) in a loop, sampled
//      before the first N and after each N, so every row is compared with
//      the disk as it was around that row (shared VMs change speed).
//   2. herd: N writer processes x M JsonStore::Update calls each on a
//      realistic task registry (20 agents). Every update changes one agent
//      and increments a counter, so at the end lost = N x M - counter.
//   3. The seed's algorithm, reimplemented faithfully: flock(LOCK_EX|LOCK_NB)
//      on the data file itself with 50 ms sleeps (5 s timeout) to read, unlock,
//      then lock again the same way to truncate and rewrite in place + fsync.
// Both schemes run through the same harness: N forked children that block on
// a start gate (a pipe the parent closes once all are ready), run M updates,
// and send their per-update samples back through a pipe.
//
// The last line printed is a machine-readable summary (see PrintSummaryLine).
// Everything printed is measured in this run; nothing is hard-coded.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "pg/connection.h"
#include "store/json_store.h"
#include "throwaway_postgres.h"
#include "util/clock.h"
#include "util/random.h"
#include "util/status.h"

namespace {

using herd::MillisecondsSince;
using herd::MonotonicClock;
using herd::Result;
using herd::Status;
using nlohmann::json;

// The seed's constants: 5 s lock timeout, 50 ms between non-blocking tries.
constexpr std::chrono::milliseconds kLockTimeout{5000};
constexpr std::chrono::milliseconds kSeedPollInterval{50};
// Set by SIGINT/SIGTERM: stop after the current measurement and clean up.
volatile sig_atomic_t g_interrupted = 0;

// The document key both schemes increment once per update.
constexpr const char kCounterKey[] = "update_count";
// The issue states its criteria for this many writer processes.
constexpr int kCriteriaProcesses = 8;

// ---------------------------------------------------------------------------
// Options

struct Options {
  std::string parent_directory = ".";
  std::vector<int> process_counts = {1, 2, 4, 8, 16};
  int updates_per_process = 300;
  // The floor is measured before the first N and after every N, so each
  // row is compared with the disk as it was around that row's run.
  double floor_segment_seconds = 0.5;
  bool quick = false;
  bool keep = false;
  // The PostgreSQL server to measure (URL or conninfo); "" = start a
  // throwaway one (scripts/test-postgres.sh) for the run.
  std::string postgres;
};

void PrintHelp() {
  std::printf(
      "usage: herd-bench-store [--quick] [--updates M] [--procs LIST] [--dir D] [--keep]\n"
      "\n"
      "Measures herd's registry store (JsonStore::Update) under N concurrent writer\n"
      "processes x M updates of a ~10 KB task registry with 20 agents, side by side\n"
      "with the seed's locking algorithm (flock LOCK_NB + 50 ms polling on the data\n"
      "file, lock released between read and in-place write), and the physical floor\n"
      "(one process doing write + fdatasync + rename + directory fsync in a loop).\n"
      "It reports updates/s, lost updates (N x M - final counter), lock wait\n"
      "p50/p99/max, mean lock hold time and flushes per update, evaluates the\n"
      "issue's criteria at N=8 (at the largest N when 8 is not run, as with --quick),\n"
      "and ends with one machine-readable line (lost and baseline_lost are totals\n"
      "over all N for herd and the seed; the other fields are at that N):\n"
      "  store: procs=8 herd_ops_s=.. floor_ops_s=.. ratio=.. lost=.. p99_wait_ms=..\n"
      "         mean_hold_ms=.. baseline_ops_s=.. baseline_lost=..\n"
      "\n"
      "options:\n"
      "  --quick        demo mode: N in {4, 16}, M = 50, shorter floor samples; a few\n"
      "                 seconds\n"
      "  --updates M    updates per writer process (default 300; 50 with --quick)\n"
      "  --procs LIST   comma-separated writer counts (default 1,2,4,8,16)\n"
      "  --dir D        create the scratch directory inside D (default: the current\n"
      "                 directory, so the disk measured is the one you run on)\n"
      "  --keep         keep the scratch directory instead of deleting it\n"
      "  --postgres URL the PostgreSQL server for the pg engine (default\n"
      "                 $HERD_BENCH_POSTGRES, else a throwaway server started for the run)\n"
      "  --help         show this text\n");
}

bool ParseCount(const std::string& text, int* value) {
  char* end = nullptr;
  long parsed = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || parsed <= 0 || parsed > 1000000) return false;
  *value = static_cast<int>(parsed);
  return true;
}

bool ParseCountList(const std::string& text, std::vector<int>* values) {
  values->clear();
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    int value = 0;
    if (!ParseCount(item, &value)) return false;
    values->push_back(value);
  }
  return !values->empty();
}

// Returns false (after saying why) when the command line is wrong.
bool ParseOptions(int argc, char** argv, Options* options, bool* show_help) {
  bool updates_given = false;
  bool procs_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&](std::string* value) {
      if (i + 1 >= argc) return false;
      *value = argv[++i];
      return true;
    };
    std::string value;
    if (arg == "--help" || arg == "-h") {
      *show_help = true;
    } else if (arg == "--quick") {
      options->quick = true;
    } else if (arg == "--keep") {
      options->keep = true;
    } else if (arg == "--updates") {
      if (!next(&value) || !ParseCount(value, &options->updates_per_process)) {
        std::fprintf(stderr, "herd-bench-store: --updates needs a positive number\n");
        return false;
      }
      updates_given = true;
    } else if (arg == "--procs") {
      if (!next(&value) || !ParseCountList(value, &options->process_counts)) {
        std::fprintf(stderr, "herd-bench-store: --procs needs a list like 1,2,4,8,16\n");
        return false;
      }
      procs_given = true;
    } else if (arg == "--postgres") {
      if (!next(&options->postgres)) {
        std::fprintf(stderr, "herd-bench-store: --postgres needs a URL or conninfo\n");
        return false;
      }
    } else if (arg == "--dir") {
      if (!next(&options->parent_directory)) {
        std::fprintf(stderr, "herd-bench-store: --dir needs a directory\n");
        return false;
      }
    } else {
      std::fprintf(stderr, "herd-bench-store: unknown option %s (try --help)\n", arg.c_str());
      return false;
    }
  }
  if (options->quick) {
    if (!updates_given) options->updates_per_process = 50;
    if (!procs_given) options->process_counts = {4, 16};
    options->floor_segment_seconds = 0.3;
  }
  return true;
}

// ---------------------------------------------------------------------------
// The registry document: a task registry shaped like the reference's
// AGENT_REGISTRY.json, with 20 agents (~10 KB once indented).

std::string AgentPrompt(int index) {
  return "Agent " + std::to_string(index) +
         ": find unchecked length fields in parser/*.cc, add failing tests, fix them.";
}

json MakeAgent(int index) {
  static const char* kTypes[] = {"investigator", "fixer", "tester", "reviewer", "documenter"};
  std::string type = kTypes[index % 5];
  char id[64];
  std::snprintf(id, sizeof id, "%s-0350%02d-%06x", type.c_str(), 10 + index,
                (0x3a5f00 + index * 40503) & 0xffffff);
  std::string parent = index < 4 ? "orchestrator" : "investigator-035010-3a5f00";
  return {
      {"id", id},
      {"type", type},
      {"parent", parent},
      {"depth", index < 4 ? 1 : 2},
      {"status", "working"},
      {"started_at", "2026-11-27T03:50:" + std::to_string(10 + index) + ".123456Z"},
      {"last_update", "2026-11-27T03:51:" + std::to_string(10 + index) + ".654321Z"},
      {"progress", 0},
      {"prompt", AgentPrompt(index)},
      {"tracked_files", {{"log_file", std::string("logs/") + id + ".jsonl"}}},
  };
}

json MakeTaskRegistry() {
  constexpr int kAgents = 20;
  json agents = json::array();
  json hierarchy = json::object();
  for (int i = 0; i < kAgents; ++i) {
    json agent = MakeAgent(i);
    hierarchy[agent["parent"].get<std::string>()].push_back(agent["id"]);
    agents.push_back(std::move(agent));
  }
  return {
      {"task_id", "TASK-20261127-034936-8f3c2a1d"},
      {"task_description", "Harden the parser against malformed length fields"},
      {"created_at", "2026-11-27T03:49:36.123456Z"},
      {"workspace", "/home/dev/project/.agent-workspace/TASK-20261127-034936-8f3c2a1d"},
      {"workspace_base", "/home/dev/project/.agent-workspace"},
      {"client_cwd", "/home/dev/project"},
      {"status", "ACTIVE"},
      {"priority", "P1"},
      {"agents", std::move(agents)},
      {"agent_hierarchy", std::move(hierarchy)},
      {"max_agents", 45},
      {"max_depth", 5},
      {"max_concurrent", 20},
      {"total_spawned", kAgents},
      {"active_count", kAgents},
      {"completed_count", 0},
      {"spiral_checks", {{"enabled", true}, {"last_check", nullptr}, {"violations", 0}}},
      {kCounterKey, 0},
  };
}

// What one writer process changes in one update.
struct UpdateWork {
  int writer = 0;
  int iteration = 0;
  int iterations = 1;
};

// One agent's progress and status change, the counter goes up by one, and
// the derived counts are recomputed from the agent list.
void ApplyProgressUpdate(json& registry, const UpdateWork& work) {
  json& agents = registry["agents"];
  json& agent = agents[static_cast<size_t>(work.writer * 7 + work.iteration) % agents.size()];
  int progress = std::min(100, (work.iteration + 1) * 100 / work.iterations);
  agent["progress"] = progress;
  agent["status"] = progress >= 100 ? "completed" : "working";
  agent["last_update"] = herd::NowIso8601();
  registry[kCounterKey] = registry.value(kCounterKey, uint64_t{0}) + 1;
  int active = 0;
  int completed = 0;
  for (const json& each : agents) {
    std::string status = each.value("status", "");
    if (status == "running" || status == "working" || status == "blocked") ++active;
    if (status == "completed") ++completed;
  }
  registry["active_count"] = active;
  registry["completed_count"] = completed;
}

// The bytes both schemes write: JSON indented by 2, like json.dump(indent=2).
std::string Serialize(const json& document) {
  return document.dump(2) + "\n";
}

// ---------------------------------------------------------------------------
// Small file helpers (for the floor and the seed's algorithm)

bool WriteFully(int fd, const void* data, size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t written = ::write(fd, bytes, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes += written;
    size -= static_cast<size_t>(written);
  }
  return true;
}

bool ReadFully(int fd, std::string* out) {
  char buffer[65536];
  for (;;) {
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (got == 0) return true;
    out->append(buffer, static_cast<size_t>(got));
  }
}

// ---------------------------------------------------------------------------
// One measured update, and the two schemes that produce it

// Plain data: children send arrays of these to the parent through a pipe.
struct UpdateSample {
  double wait_ms = 0;   // time spent waiting for lock(s) during this update
  double hold_ms = 0;   // time lock(s) were held during this update
  int32_t flushes = 0;  // fdatasync/fsync calls
  bool ok = false;      // the scheme reported success
  bool timed_out = false;
};

// The seed's acquisition loop: open, try LOCK_EX|LOCK_NB, and if the lock is
// busy close the file, sleep 50 ms and start over, until `timeout` has passed
// since `start`. Returns the locked descriptor.
Result<int> SeedOpenLocked(const std::string& path, int open_flags,
                           MonotonicClock::time_point start) {
  for (;;) {
    int fd = ::open(path.c_str(), open_flags | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Status::NotFound(path + " does not exist");
      return Status::FromErrno("cannot open " + path, errno);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    int error = errno;
    ::close(fd);
    if (error != EWOULDBLOCK) return Status::FromErrno("cannot lock " + path, error);
    if (MonotonicClock::now() - start >= kLockTimeout) {
      return Status::Timeout("could not lock " + path + " within 5 s");
    }
    std::this_thread::sleep_for(kSeedPollInterval);
  }
}

// Unlock, close, and account for the time the lock was held.
void SeedUnlock(int fd, MonotonicClock::time_point held_since, UpdateSample* sample) {
  flock(fd, LOCK_UN);
  ::close(fd);
  sample->hold_ms += MillisecondsSince(held_since);
}

// read_registry_with_lock(): lock, read and parse, unlock.
Result<json> SeedReadWithLock(const std::string& path, UpdateSample* sample) {
  auto start = MonotonicClock::now();
  Result<int> fd = SeedOpenLocked(path, O_RDONLY, start);
  sample->wait_ms += MillisecondsSince(start);
  if (!fd.ok()) return fd.status();
  auto held_since = MonotonicClock::now();
  std::string contents;
  bool read_ok = ReadFully(*fd, &contents);
  json document = json::parse(contents, nullptr, /*allow_exceptions=*/false);
  SeedUnlock(*fd, held_since, sample);
  if (!read_ok) return Status::IOError("cannot read " + path);
  if (document.is_discarded()) {
    return Status::Corruption(path + " is torn (" + std::to_string(contents.size()) + " bytes)");
  }
  return document;
}

// write_registry_with_lock(): lock (the same polling), truncate in place,
// serialize into the file, fsync, unlock. A missing file is created and
// locked with a blocking flock, as the seed does.
Status SeedWriteWithLock(const std::string& path, const json& document, UpdateSample* sample) {
  auto start = MonotonicClock::now();
  Result<int> fd = SeedOpenLocked(path, O_RDWR, start);
  if (!fd.ok() && fd.status().Is(Status::Code::kNotFound)) {
    int created = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (created < 0) return Status::FromErrno("cannot create " + path, errno);
    flock(created, LOCK_EX);
    fd = created;
  }
  sample->wait_ms += MillisecondsSince(start);
  if (!fd.ok()) return fd.status();
  auto held_since = MonotonicClock::now();
  bool written = lseek(*fd, 0, SEEK_SET) == 0 && ftruncate(*fd, 0) == 0;
  std::string data = Serialize(document);  // json.dump runs after the truncate
  // Python's buffered file object hands json.dump's output to write() in 8 KiB pieces.
  constexpr size_t kPythonBufferSize = 8192;
  for (size_t offset = 0; written && offset < data.size(); offset += kPythonBufferSize) {
    written =
        WriteFully(*fd, data.data() + offset, std::min(kPythonBufferSize, data.size() - offset));
  }
  written = written && fsync(*fd) == 0;
  sample->flushes++;
  SeedUnlock(*fd, held_since, sample);
  if (!written) return Status::IOError("cannot write " + path);
  return Status::Ok();
}

UpdateSample SeedUpdate(const std::string& path, const UpdateWork& work, std::string* error) {
  UpdateSample sample;
  Result<json> registry = SeedReadWithLock(path, &sample);
  Status status = registry.ok() ? Status::Ok() : registry.status();
  if (registry.ok()) {
    ApplyProgressUpdate(*registry, work);
    status = SeedWriteWithLock(path, *registry, &sample);
  }
  sample.ok = status.ok();
  sample.timed_out = status.Is(Status::Code::kTimeout);
  if (!status.ok()) *error = status.ToString();
  return sample;
}

Status SeedCreate(const std::string& path, const json& initial) {
  UpdateSample ignored;
  return SeedWriteWithLock(path, initial, &ignored);
}

Result<json> SeedReadFinal(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  json document = json::parse(contents.str(), nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return Status::Corruption(path + " does not parse");
  return document;
}

herd::store::JsonStore MakeHerdStore() {
  herd::store::StoreOptions options;
  options.lock_timeout = kLockTimeout;  // the seed's timeout, for a fair comparison
  return herd::store::JsonStore(options);
}

UpdateSample HerdUpdate(const std::string& path, const UpdateWork& work, std::string* error) {
  static const herd::store::JsonStore store = MakeHerdStore();
  herd::store::TransactionStats stats;
  Status status = store.Update(
      path,
      [&](json& registry) -> Result<herd::store::Decision> {
        ApplyProgressUpdate(registry, work);
        return herd::store::Decision::kCommit;
      },
      &stats);
  UpdateSample sample;
  sample.wait_ms = stats.lock_wait_ms;
  sample.hold_ms = stats.hold_ms;
  sample.flushes = stats.flushes;
  sample.ok = status.ok();
  sample.timed_out = status.Is(Status::Code::kTimeout);
  if (!status.ok()) *error = status.ToString();
  return sample;
}

Status HerdCreate(const std::string& path, const json& initial) {
  return MakeHerdStore().Update(path, [&](json& registry) -> Result<herd::store::Decision> {
    registry = initial;
    return herd::store::Decision::kCommit;
  });
}

Result<json> HerdReadFinal(const std::string& path) {
  Result<herd::store::Snapshot> snapshot = MakeHerdStore().Read(path);
  if (!snapshot.ok()) return snapshot.status();
  return snapshot->document;
}

// SQLite, the embedded engine's baseline: one row holding the document,
// WAL, synchronous=FULL, each update one BEGIN IMMEDIATE transaction (the
// write lock taken before the read, so no update is lost).
sqlite3* SqliteOpen(const std::string& path) {
  // One connection per writer process (a fork never shares one).
  static pid_t owner = 0;
  static std::string opened;
  static sqlite3* database = nullptr;
  if (database != nullptr && owner == getpid() && opened == path) return database;
  if (database != nullptr && owner == getpid()) sqlite3_close(database);
  database = nullptr;
  owner = getpid();
  opened = path;
  if (sqlite3_open(path.c_str(), &database) != SQLITE_OK) return nullptr;
  sqlite3_busy_timeout(database, static_cast<int>(kLockTimeout.count()));
  sqlite3_exec(database, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", nullptr, nullptr,
               nullptr);
  return database;
}

Status SqliteError(sqlite3* database, const std::string& what) {
  std::string message = what + ": " + (database ? sqlite3_errmsg(database) : "cannot open");
  if (database && sqlite3_errcode(database) == SQLITE_BUSY) return Status::Timeout(message);
  return Status::IOError(message);
}

Status SqliteCreate(const std::string& path, const json& initial) {
  sqlite3* database = SqliteOpen(path + ".sqlite");
  if (database == nullptr) return SqliteError(database, "open");
  if (sqlite3_exec(database, "CREATE TABLE registry (id INTEGER PRIMARY KEY, document TEXT)",
                   nullptr, nullptr, nullptr) != SQLITE_OK) {
    return SqliteError(database, "create");
  }
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(database, "INSERT INTO registry (id, document) VALUES (1, ?)", -1, &insert,
                     nullptr);
  std::string text = Serialize(initial);
  sqlite3_bind_text(insert, 1, text.c_str(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  int step = sqlite3_step(insert);
  sqlite3_finalize(insert);
  return step == SQLITE_DONE ? Status::Ok() : SqliteError(database, "insert");
}

UpdateSample SqliteUpdate(const std::string& path, const UpdateWork& work, std::string* error) {
  UpdateSample sample;
  sqlite3* database = SqliteOpen(path + ".sqlite");
  auto start = MonotonicClock::now();
  Status status = [&]() -> Status {
    if (database == nullptr) return SqliteError(database, "open");
    if (sqlite3_exec(database, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return SqliteError(database, "BEGIN IMMEDIATE");
    }
    sample.wait_ms = MillisecondsSince(start);
    auto held = MonotonicClock::now();
    sqlite3_stmt* select = nullptr;
    sqlite3_prepare_v2(database, "SELECT document FROM registry WHERE id = 1", -1, &select,
                       nullptr);
    json registry;
    if (sqlite3_step(select) == SQLITE_ROW) {
      registry = json::parse(reinterpret_cast<const char*>(sqlite3_column_text(select, 0)));
    }
    sqlite3_finalize(select);
    ApplyProgressUpdate(registry, work);
    std::string text = Serialize(registry);
    sqlite3_stmt* update = nullptr;
    sqlite3_prepare_v2(database, "UPDATE registry SET document = ? WHERE id = 1", -1, &update,
                       nullptr);
    sqlite3_bind_text(update, 1, text.c_str(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    int step = sqlite3_step(update);
    sqlite3_finalize(update);
    if (step != SQLITE_DONE) {
      sqlite3_exec(database, "ROLLBACK", nullptr, nullptr, nullptr);
      return SqliteError(database, "UPDATE");
    }
    if (sqlite3_exec(database, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      Status failed = SqliteError(database, "COMMIT");
      sqlite3_exec(database, "ROLLBACK", nullptr, nullptr, nullptr);
      return failed;
    }
    sample.hold_ms = MillisecondsSince(held);
    return Status::Ok();
  }();
  sample.flushes = 1;  // the WAL's fsync at COMMIT (synchronous=FULL)
  sample.ok = status.ok();
  sample.timed_out = status.Is(Status::Code::kTimeout);
  if (!status.ok()) *error = status.ToString();
  return sample;
}

Result<json> SqliteReadFinal(const std::string& path) {
  sqlite3* database = SqliteOpen(path + ".sqlite");
  if (database == nullptr) return SqliteError(database, "open");
  sqlite3_stmt* select = nullptr;
  sqlite3_prepare_v2(database, "SELECT document FROM registry WHERE id = 1", -1, &select, nullptr);
  Result<json> document = Status::NotFound("no registry row");
  if (sqlite3_step(select) == SQLITE_ROW) {
    document = json::parse(reinterpret_cast<const char*>(sqlite3_column_text(select, 0)));
  }
  sqlite3_finalize(select);
  return document;
}

// PostgreSQL, as herd's PostgreSQL registry does it: the document in a
// JSONB row, each update one READ COMMITTED transaction that takes the row
// with SELECT ... FOR UPDATE, synchronous_commit on (the default).
std::string g_postgres_conninfo;  // set in main before any writer forks

herd::pg::Connection* PgConnect() {
  static pid_t owner = 0;
  static herd::pg::Connection* connection = nullptr;  // a fork's copy is never closed
  if (connection != nullptr && owner == getpid()) return connection;
  connection = nullptr;
  owner = getpid();
  herd::pg::ConnectOptions options;
  options.conninfo = g_postgres_conninfo;
  options.lock_timeout_ms = static_cast<int>(kLockTimeout.count());
  Result<std::unique_ptr<herd::pg::Connection>> opened = herd::pg::Connection::Open(options);
  if (opened.ok()) connection = std::move(opened).value().release();
  return connection;
}

Status PgCreate(const std::string& path, const json& initial) {
  herd::pg::Connection* c = PgConnect();
  if (c == nullptr) return Status::IOError("cannot connect to " + g_postgres_conninfo);
  HERD_RETURN_IF_ERROR(c->Exec("CREATE TABLE IF NOT EXISTS bench_registry (id text PRIMARY KEY, "
                               "document jsonb NOT NULL)")
                           .status());
  return c
      ->Exec(
          "INSERT INTO bench_registry (id, document) VALUES ($1, $2::jsonb) "
          "ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document",
          {path, initial.dump()})
      .status();
}

UpdateSample PgUpdate(const std::string& path, const UpdateWork& work, std::string* error) {
  UpdateSample sample;
  herd::pg::Connection* connection = PgConnect();
  Status status = Status::IOError("cannot connect to " + g_postgres_conninfo);
  if (connection != nullptr) {
    status = herd::pg::RunTransaction(
        *connection, herd::pg::Idempotence::kNotIdempotent,
        [&](herd::pg::Connection& c) -> Result<herd::pg::Finish> {
          auto start = MonotonicClock::now();
          HERD_ASSIGN_OR_RETURN(
              herd::pg::Rows rows,
              c.Exec("SELECT document::text FROM bench_registry WHERE id = $1 FOR UPDATE", {path}));
          sample.wait_ms = MillisecondsSince(start);
          auto held = MonotonicClock::now();
          json registry = json::parse(rows.Text(0, 0));
          ApplyProgressUpdate(registry, work);
          HERD_RETURN_IF_ERROR(
              c.Exec("UPDATE bench_registry SET document = $2::jsonb WHERE id = $1",
                     {path, registry.dump()})
                  .status());
          sample.hold_ms = MillisecondsSince(held);
          return herd::pg::Finish::kCommit;
        });
  }
  sample.flushes = 1;  // the server's WAL flush at COMMIT
  sample.ok = status.ok();
  sample.timed_out = status.Is(Status::Code::kTimeout);
  if (!status.ok()) *error = status.ToString();
  return sample;
}

Result<json> PgReadFinal(const std::string& path) {
  herd::pg::Connection* c = PgConnect();
  if (c == nullptr) return Status::IOError("cannot connect to " + g_postgres_conninfo);
  HERD_ASSIGN_OR_RETURN(herd::pg::Rows rows,
                        c->Exec("SELECT document::text FROM bench_registry WHERE id = $1", {path}));
  if (rows.empty()) return Status::NotFound("no bench_registry row " + path);
  return json::parse(rows.Text(0, 0));
}

// A locking scheme as the harness sees it.
struct Scheme {
  std::string name;  // short, for tables and file names
  std::string description;
  std::function<Status(const std::string& path, const json& initial)> create;
  // Runs one update; on failure also describes the error in `error`.
  std::function<UpdateSample(const std::string& path, const UpdateWork& work, std::string* error)>
      update_one;
  std::function<Result<json>(const std::string& path)> read_final;
};

std::vector<Scheme> Schemes() {
  return {
      {"herd",
       "JsonStore::Update: sidecar flock held across the read-modify-write, "
       "write-temp + fdatasync + rename + dir fsync",
       HerdCreate, HerdUpdate, HerdReadFinal},
      {"seed",
       "the seed's algorithm: flock LOCK_NB + 50 ms polling on the data file, "
       "lock dropped between the read and the in-place write + fsync",
       SeedCreate, SeedUpdate, SeedReadFinal},
      {"sqlt",
       "SQLite 3: the document in one row, WAL, synchronous=FULL, BEGIN IMMEDIATE per update",
       SqliteCreate, SqliteUpdate, SqliteReadFinal},
      {"pg",
       "PostgreSQL: the document as JSONB in one row, READ COMMITTED + SELECT ... FOR UPDATE, "
       "synchronous_commit on, one connection per writer",
       PgCreate, PgUpdate, PgReadFinal},
  };
}

// ---------------------------------------------------------------------------
// The harness: N writer processes started together

struct Distribution {
  double p50 = 0, p99 = 0, max = 0, mean = 0;
};

Distribution Summarize(std::vector<double> values) {
  Distribution result;
  if (values.empty()) return result;
  std::sort(values.begin(), values.end());
  auto rank = [&](double quantile) {  // nearest-rank percentile
    size_t index = static_cast<size_t>(std::ceil(quantile * static_cast<double>(values.size())));
    return values[std::clamp<size_t>(index, 1, values.size()) - 1];
  };
  result.p50 = rank(0.50);
  result.p99 = rank(0.99);
  result.max = values.back();
  double sum = 0;
  for (double value : values) sum += value;
  result.mean = sum / static_cast<double>(values.size());
  return result;
}

struct RunResult {
  std::string scheme;
  int processes = 0;
  int updates_per_process = 0;
  double seconds = 0;     // gate opened -> last writer finished
  int64_t attempted = 0;  // N x M
  int64_t succeeded = 0;  // updates the scheme reported as done
  int64_t errors = 0;     // updates the scheme reported as failed
  int64_t timeouts = 0;   // ... of which lock timeouts
  int64_t counter = 0;    // the counter in the final document
  int64_t lost = 0;       // attempted - counter
  bool final_readable = true;
  int crashed_writers = 0;
  std::string first_error;
  Distribution wait_ms;
  Distribution hold_ms;
  double flushes_per_update = 0;

  double ops_per_second() const {
    return seconds > 0 ? static_cast<double>(succeeded) / seconds : 0;
  }
};

// What a writer sends back ahead of its samples.
struct WriterReportHeader {
  int64_t end_ns = 0;  // steady_clock when its last update returned
  int32_t samples = 0;
  char first_error[240] = {};
};

int64_t SteadyNanoseconds() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             MonotonicClock::now().time_since_epoch())
      .count();
}

// Runs in a forked child: says it is ready, waits for the gate to open
// (EOF on `gate_fd`), runs its updates and reports. Never returns.
[[noreturn]] void RunWriter(const Scheme& scheme, const std::string& path, int writer, int updates,
                            int ready_fd, int gate_fd, int report_fd) {
  signal(SIGINT, SIG_DFL);  // an interrupted run stops its writers at once
  signal(SIGTERM, SIG_DFL);
  std::vector<UpdateSample> samples;
  samples.reserve(static_cast<size_t>(updates));
  WriterReportHeader header;
  char byte = 1;
  WriteFully(ready_fd, &byte, 1);
  ::close(ready_fd);
  while (::read(gate_fd, &byte, 1) < 0 && errno == EINTR) {
  }
  for (int i = 0; i < updates; ++i) {
    std::string error;
    samples.push_back(scheme.update_one(path, UpdateWork{writer, i, updates}, &error));
    if (!error.empty() && header.first_error[0] == '\0') {
      std::snprintf(header.first_error, sizeof header.first_error, "%s", error.c_str());
    }
  }
  header.end_ns = SteadyNanoseconds();
  header.samples = static_cast<int32_t>(samples.size());
  WriteFully(report_fd, &header, sizeof header);
  WriteFully(report_fd, samples.data(), samples.size() * sizeof(UpdateSample));
  _exit(0);
}

struct WriterReport {
  bool complete = false;
  WriterReportHeader header;
  std::vector<UpdateSample> samples;
};

WriterReport ReadWriterReport(int fd) {
  WriterReport report;
  std::string bytes;
  ReadFully(fd, &bytes);
  if (bytes.size() < sizeof report.header) return report;
  std::memcpy(&report.header, bytes.data(), sizeof report.header);
  size_t expected = sizeof report.header + report.header.samples * sizeof(UpdateSample);
  if (report.header.samples < 0 || bytes.size() != expected) return report;
  report.samples.resize(static_cast<size_t>(report.header.samples));
  std::memcpy(report.samples.data(), bytes.data() + sizeof report.header,
              report.samples.size() * sizeof(UpdateSample));
  report.complete = true;
  return report;
}

// Folds the writers' reports and the final document into one result.
RunResult Tally(const Scheme& scheme, const std::string& path, int processes, int updates,
                int64_t gate_open_ns, const std::vector<WriterReport>& reports) {
  RunResult result;
  result.scheme = scheme.name;
  result.processes = processes;
  result.updates_per_process = updates;
  result.attempted = static_cast<int64_t>(processes) * updates;
  std::vector<double> waits, holds;
  int64_t flushes = 0;
  int64_t last_end_ns = gate_open_ns;
  for (const WriterReport& report : reports) {
    if (!report.complete) {
      result.crashed_writers++;
      continue;
    }
    last_end_ns = std::max(last_end_ns, report.header.end_ns);
    if (result.first_error.empty()) result.first_error = report.header.first_error;
    for (const UpdateSample& sample : report.samples) {
      waits.push_back(sample.wait_ms);
      holds.push_back(sample.hold_ms);
      flushes += sample.flushes;
      if (sample.ok) {
        result.succeeded++;
      } else {
        result.errors++;
        if (sample.timed_out) result.timeouts++;
      }
    }
  }
  result.seconds = static_cast<double>(last_end_ns - gate_open_ns) / 1e9;
  result.wait_ms = Summarize(std::move(waits));
  result.hold_ms = Summarize(std::move(holds));
  result.flushes_per_update =
      result.attempted > 0 ? static_cast<double>(flushes) / static_cast<double>(result.attempted)
                           : 0;

  Result<json> final_document = scheme.read_final(path);
  if (final_document.ok()) {
    result.counter = final_document->value(kCounterKey, int64_t{0});
  } else {
    result.final_readable = false;
    if (result.first_error.empty()) result.first_error = final_document.status().ToString();
  }
  result.lost = result.attempted - result.counter;
  return result;
}

// Creates the registry, forks `processes` writers that start together,
// waits for them and tallies what they did.
RunResult RunWriters(const Scheme& scheme, const std::string& directory, int processes,
                     int updates) {
  std::string path = directory + "/" + scheme.name + "-" + std::to_string(processes) + ".json";
  Status created = scheme.create(path, MakeTaskRegistry());
  if (!created.ok()) {
    std::fprintf(stderr, "herd-bench-store: cannot create %s: %s\n", path.c_str(),
                 created.ToString().c_str());
    std::exit(1);
  }

  int ready[2], gate[2];
  if (pipe(ready) != 0 || pipe(gate) != 0) {
    std::perror("herd-bench-store: pipe");
    std::exit(1);
  }
  std::fflush(stdout);
  std::vector<pid_t> children;
  std::vector<int> report_fds;
  for (int writer = 0; writer < processes; ++writer) {
    int report[2];
    if (pipe(report) != 0) {
      std::perror("herd-bench-store: pipe");
      std::exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("herd-bench-store: fork");
      std::exit(1);
    }
    if (pid == 0) {
      ::close(ready[0]);
      ::close(gate[1]);  // otherwise the gate never reaches EOF
      ::close(report[0]);
      RunWriter(scheme, path, writer, updates, ready[1], gate[0], report[1]);
    }
    ::close(report[1]);  // later children must not inherit it, or EOF never comes
    children.push_back(pid);
    report_fds.push_back(report[0]);
  }
  ::close(ready[1]);
  ::close(gate[0]);

  // Open the gate only when every writer is parked on it.
  char byte;
  int ready_count = 0;
  while (ready_count < processes) {
    ssize_t got = ::read(ready[0], &byte, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // a writer died before getting ready; the tally shows it
    ++ready_count;
  }
  ::close(ready[0]);
  int64_t gate_open_ns = SteadyNanoseconds();
  ::close(gate[1]);

  std::vector<WriterReport> reports;
  for (int fd : report_fds) {
    reports.push_back(ReadWriterReport(fd));
    ::close(fd);
  }
  for (pid_t pid : children) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  return Tally(scheme, path, processes, updates, gate_open_ns, reports);
}

// ---------------------------------------------------------------------------
// The floor: the cheapest durable replace this disk can do

struct FloorResult {
  int operations = 0;
  int flushes = 0;
  double seconds = 0;
  double ops_per_second() const { return seconds > 0 ? operations / seconds : 0; }
};

// write + fdatasync + rename + directory fsync; counts its flushes.
bool DurableReplace(const std::string& directory, const std::string& path,
                    const std::string& temp_path, const std::string& data, int* flushes) {
  int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = WriteFully(fd, data.data(), data.size()) && fdatasync(fd) == 0;
  ++*flushes;
  ok = (::close(fd) == 0) && ok;
  ok = ok && ::rename(temp_path.c_str(), path.c_str()) == 0;
  int directory_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ok = ok && directory_fd >= 0 && fsync(directory_fd) == 0;
  ++*flushes;
  if (directory_fd >= 0) ::close(directory_fd);
  return ok;
}

FloorResult MeasureFloor(const std::string& directory, const std::string& data, double seconds) {
  std::string path = directory + "/floor.json";
  std::string temp_path = path + ".tmp";
  FloorResult result;
  auto start = MonotonicClock::now();
  while ((MillisecondsSince(start) < seconds * 1000 || result.operations < 20) && !g_interrupted) {
    if (!DurableReplace(directory, path, temp_path, data, &result.flushes)) {
      std::fprintf(stderr, "herd-bench-store: floor: durable replace in %s failed: %s\n",
                   directory.c_str(), std::strerror(errno));
      std::exit(1);
    }
    result.operations++;
  }
  result.seconds = MillisecondsSince(start) / 1000;
  return result;
}

FloorResult Combine(const FloorResult& a, const FloorResult& b) {
  return {a.operations + b.operations, a.flushes + b.flushes, a.seconds + b.seconds};
}

// The floor around one row's run: the samples just before and just after it.
struct FloorAround {
  FloorResult before;
  FloorResult after;

  FloorResult combined() const { return Combine(before, after); }
  double ops_per_second() const { return combined().ops_per_second(); }
  // How much faster the faster sample was than the slower one (1 = steady).
  double drift() const {
    double low = std::min(before.ops_per_second(), after.ops_per_second());
    double high = std::max(before.ops_per_second(), after.ops_per_second());
    return low > 0 ? high / low : 0;
  }
  // Someone else's I/O changed the disk's speed during the run.
  bool unsteady() const { return drift() > 1.25 || drift() == 0; }
};

// ---------------------------------------------------------------------------
// Where the scratch directory lives

std::string FilesystemTypeName(unsigned long magic) {
  switch (magic) {
    case 0xEF53: return "ext2/3/4";
    case 0x58465342: return "xfs";
    case 0x01021994: return "tmpfs";
    case 0x794C7630: return "overlay";
    case 0x9123683E: return "btrfs";
    case 0x2FC12FC1: return "zfs";
    case 0xF2F52010: return "f2fs";
    case 0x6969: return "nfs";
    case 0xFF534D42: return "cifs";
    case 0xFE534D42: return "smb2";
    case 0x65735546: return "fuse";
    case 0x858458F6: return "ramfs";
    default: return "unknown";
  }
}

struct MountEntry {
  std::string fstype, source, mount_point, options;
};

// The mount holding `directory`, from /proc/self/mountinfo: the entry with
// the directory's device number and the longest mount point containing it.
// Empty fields if none is found.
MountEntry FindMount(const std::string& directory) {
  MountEntry best;
  struct stat info {};
  std::error_code error;
  std::string real = std::filesystem::canonical(directory, error).string();
  if (::stat(directory.c_str(), &info) != 0 || error) return best;
  std::string device_id =
      std::to_string(major(info.st_dev)) + ":" + std::to_string(minor(info.st_dev));
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  size_t best_length = 0;
  while (std::getline(mountinfo, line)) {
    // id parent major:minor root mount_point options [optional...] - fstype source super_options
    std::istringstream fields(line);
    std::string id, parent, numbers, root, mount_point, options;
    fields >> id >> parent >> numbers >> root >> mount_point >> options;
    size_t separator = line.find(" - ");
    if (numbers != device_id || separator == std::string::npos) continue;
    bool inside =
        mount_point == "/" || real == mount_point || real.rfind(mount_point + "/", 0) == 0;
    if (!inside || mount_point.size() < best_length) continue;
    std::istringstream tail(line.substr(separator + 3));
    std::string super_options;
    best = MountEntry{};
    tail >> best.fstype >> best.source >> super_options;
    best.mount_point = mount_point;
    best.options = "mount " + options + "; superblock " + super_options;
    best_length = mount_point.size();
  }
  return best;
}

struct FilesystemInfo {
  std::string type;         // "ext4", "xfs", "tmpfs", "overlay", ...
  std::string description;  // type, statfs magic, device, mount point and options
};

FilesystemInfo DescribeFilesystem(const std::string& directory) {
  FilesystemInfo result{"unknown", "unknown"};
  struct statfs info {};
  if (statfs(directory.c_str(), &info) == 0) {
    char magic[32];
    std::snprintf(magic, sizeof magic, "0x%lx", static_cast<unsigned long>(info.f_type));
    result.type = FilesystemTypeName(static_cast<unsigned long>(info.f_type));
    result.description = result.type + " (statfs f_type " + magic + ")";
  }
  MountEntry mount = FindMount(directory);
  if (!mount.fstype.empty()) {
    result.type = mount.fstype;  // tells ext4 from ext2/3, which share a magic number
    result.description += "; " + mount.fstype + " on " + mount.source + ", mounted at " +
                          mount.mount_point + " (" + mount.options + ")";
  }
  return result;
}

// ---------------------------------------------------------------------------
// Report

struct Comparison {
  int processes = 0;
  FloorAround floor;
  RunResult herd;
  RunResult seed;
  RunResult sqlite;
  RunResult postgres;
  std::vector<const RunResult*> runs() const { return {&herd, &seed, &sqlite, &postgres}; }
};

std::string WaitText(const Distribution& wait) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f / %.1f / %.1f", wait.p50, wait.p99, wait.max);
  return text;
}

void PrintRow(const RunResult& run, double floor_ops) {
  std::string errors = std::to_string(run.errors);
  if (run.timeouts > 0) errors += "(" + std::to_string(run.timeouts) + "t)";
  std::printf("  %-4s %8.0f %6.0f%% %6lld %8s %24s %8.2f %7.2f %8.2f%s\n", run.scheme.c_str(),
              run.ops_per_second(), 100 * run.ops_per_second() / floor_ops,
              static_cast<long long>(run.lost), errors.c_str(), WaitText(run.wait_ms).c_str(),
              run.hold_ms.mean, run.flushes_per_update, run.seconds,
              run.final_readable ? "" : "  final file unreadable!");
}

void PrintFloorRow(const FloorAround& floor) {
  FloorResult combined = floor.combined();
  std::printf("  %-4s %8.0f %6.0f%% %6s %8s %24s %8s %7.2f %8.2f  (%.0f before, %.0f after)%s\n",
              "flr", combined.ops_per_second(), 100.0, "-", "-", "-", "-",
              static_cast<double>(combined.flushes) / combined.operations, combined.seconds,
              floor.before.ops_per_second(), floor.after.ops_per_second(),
              floor.unsteady() ? "  disk speed changed: ratios unreliable" : "");
}

void PrintTable(const std::vector<Comparison>& comparisons) {
  std::printf("\n%-6s %8s %7s %6s %8s %24s %8s %7s %8s\n", "", "ops/s", "floor", "lost", "errors",
              "lock wait p50/p99/max ms", "hold ms", "flush/u", "time s");
  for (const Comparison& row : comparisons) {
    std::printf("N = %d processes x %d updates\n", row.processes, row.herd.updates_per_process);
    PrintFloorRow(row.floor);
    for (const RunResult* run : row.runs()) PrintRow(*run, row.floor.ops_per_second());
  }
  std::printf(
      "\nflr  = the floor: one process, write + fdatasync + rename + dir fsync of the same bytes,\n"
      "        sampled just before and just after this N's runs\n"
      "ops/s = updates the scheme reported as done, per second (gate open -> last writer done)\n"
      "floor = ops/s as a percentage of this N's floor\n"
      "lost  = N x M - the counter in the final document (every update adds one)\n"
      "errors = updates that returned an error, (t) = of which lock timeouts (5 s)\n"
      "lock wait / hold per update; the seed locks twice per update (read, then write): its\n"
      "        wait and hold are the sums of both; flush/u = fdatasync/fsync calls per update\n"
      "sqlt  = SQLite (wait = BEGIN IMMEDIATE, hold = read + write; its COMMIT's fsync after)\n"
      "pg    = PostgreSQL (wait = SELECT ... FOR UPDATE, hold = parse + UPDATE; COMMIT after),\n"
      "        the server on this machine; flush/u counts the commit's WAL flush as one\n");
  for (const Comparison& row : comparisons) {
    for (const RunResult* run : row.runs()) {
      if (!run->first_error.empty()) {
        std::printf("first error, %s at %d procs: %s\n", run->scheme.c_str(), run->processes,
                    run->first_error.c_str());
      }
      if (run->crashed_writers > 0) {
        std::printf("%s at %d procs: %d writer processes died without reporting\n",
                    run->scheme.c_str(), run->processes, run->crashed_writers);
      }
    }
  }
}

const Comparison& LargestRow(const std::vector<Comparison>& comparisons) {
  return *std::max_element(
      comparisons.begin(), comparisons.end(),
      [](const Comparison& a, const Comparison& b) { return a.processes < b.processes; });
}

// The row the criteria and the summary line use: N = 8 if it ran, else the
// largest N.
const Comparison& CriteriaRow(const std::vector<Comparison>& comparisons) {
  for (const Comparison& row : comparisons) {
    if (row.processes == kCriteriaProcesses) return row;
  }
  return LargestRow(comparisons);
}

void PrintCriteria(const Comparison& row) {
  const RunResult& herd = row.herd;
  int n = row.processes;
  double ratio = herd.ops_per_second() / row.floor.ops_per_second();
  double wait_bound = 4.0 * n * herd.hold_ms.mean;
  std::printf("\ncriteria (the issue states them at N=%d; evaluated here at N=%d):\n",
              kCriteriaProcesses, n);
  std::printf(
      "  throughput: herd %.0f ops/s / floor %.0f ops/s = %.2f  (need >= 0.80)  %s%s\n",
      herd.ops_per_second(), row.floor.ops_per_second(), ratio, ratio >= 0.80 ? "PASS" : "FAIL",
      row.floor.unsteady() ? "  (unreliable: the disk's speed changed during the run)" : "");
  std::printf("  lock wait:  p99 %.2f ms < 4 x %d x mean hold %.2f ms = %.2f ms  %s\n",
              herd.wait_ms.p99, n, herd.hold_ms.mean, wait_bound,
              herd.wait_ms.p99 < wait_bound ? "PASS" : "FAIL");
  int64_t herd_lost = herd.lost;
  std::printf("  no lost updates: herd lost %lld of %lld at N=%d  %s\n",
              static_cast<long long>(herd_lost), static_cast<long long>(herd.attempted), n,
              herd_lost == 0 && herd.errors == 0 ? "PASS" : "FAIL");
}

double Percent(int64_t part, int64_t whole) {
  return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0;
}

// Two or three plain sentences about what this run showed.
void PrintConclusions(const std::vector<Comparison>& comparisons,
                      const std::string& filesystem_type) {
  const Comparison& largest = LargestRow(comparisons);
  int64_t herd_attempted = 0, herd_lost = 0, herd_errors = 0;
  for (const Comparison& row : comparisons) {
    herd_attempted += row.herd.attempted;
    herd_lost += row.herd.lost;
    herd_errors += row.herd.errors;
  }
  const RunResult& herd = largest.herd;
  const RunResult& seed = largest.seed;
  std::printf("\nWhat this run showed:\n");
  std::printf("- herd: %d processes x %d updates = %lld attempted, %lld committed, %lld lost",
              herd.processes, herd.updates_per_process, static_cast<long long>(herd.attempted),
              static_cast<long long>(herd.counter), static_cast<long long>(herd.lost));
  std::printf(" (over all runs: %lld lost, %lld errors, of %lld).\n",
              static_cast<long long>(herd_lost), static_cast<long long>(herd_errors),
              static_cast<long long>(herd_attempted));
  std::printf(
      "- Seed algorithm, same %d processes x %d updates: %lld of %lld lost (%.0f%%) although "
      "%lld reported success; %lld timed out; lock wait p99 %.1f ms, max %.1f ms (herd: %.1f "
      "and %.1f ms).\n",
      seed.processes, seed.updates_per_process, static_cast<long long>(seed.lost),
      static_cast<long long>(seed.attempted), Percent(seed.lost, seed.attempted),
      static_cast<long long>(seed.succeeded), static_cast<long long>(seed.timeouts),
      seed.wait_ms.p99, seed.wait_ms.max, herd.wait_ms.p99, herd.wait_ms.max);
  const Comparison& row = CriteriaRow(comparisons);
  std::printf(
      "- Cost: each herd update made %.1f flushes; at %d processes herd committed %.0f updates/s, "
      "%.0f%% of the %.0f/s one process reaches doing nothing but durable replaces on this %s "
      "filesystem.\n",
      row.herd.flushes_per_update, row.processes, row.herd.ops_per_second(),
      100 * row.herd.ops_per_second() / row.floor.ops_per_second(), row.floor.ops_per_second(),
      filesystem_type.c_str());
}

void PrintSummaryLine(const std::vector<Comparison>& comparisons) {
  int64_t herd_lost_total = 0, seed_lost_total = 0;
  for (const Comparison& row : comparisons) {
    herd_lost_total += row.herd.lost;
    seed_lost_total += row.seed.lost;
  }
  const Comparison& row = CriteriaRow(comparisons);
  std::printf(
      "\nsummary line: lost and baseline_lost are totals over all N (herd, seed); every "
      "other field is at procs=%d\n",
      row.processes);
  std::printf(
      "store: procs=%d herd_ops_s=%.1f floor_ops_s=%.1f ratio=%.3f lost=%lld p99_wait_ms=%.2f "
      "mean_hold_ms=%.3f baseline_ops_s=%.1f baseline_lost=%lld\n",
      row.processes, row.herd.ops_per_second(), row.floor.ops_per_second(),
      row.herd.ops_per_second() / row.floor.ops_per_second(),
      static_cast<long long>(herd_lost_total), row.herd.wait_ms.p99, row.herd.hold_ms.mean,
      row.seed.ops_per_second(), static_cast<long long>(seed_lost_total));
}

// ---------------------------------------------------------------------------

// The first three fields of /proc/loadavg: other work on this machine skews
// every figure here, so the report shows how busy it was.
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

void OnInterrupt(int) {
  g_interrupted = 1;
}

// Ctrl-C or a closed stdout must not leave the scratch directory behind:
// SIGINT/SIGTERM only set a flag the run checks between measurements.
void InstallSignalHandlers() {
  signal(SIGPIPE, SIG_IGN);
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

void RemoveScratchDirectory(const std::string& directory) {
  std::error_code ignored;
  std::filesystem::remove_all(directory, ignored);
}

std::string MakeScratchDirectory(const std::string& parent) {
  std::string pattern = parent + "/herd-store-bench.XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    std::fprintf(stderr, "herd-bench-store: cannot create a scratch directory in %s: %s\n",
                 parent.c_str(), std::strerror(errno));
    std::exit(1);
  }
  return buffer.data();
}

}  // namespace

int main(int argc, char** argv) {
  // The store logs recoveries; keep stdout for the report and its last line.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("herd-bench-store"));
  Options options;
  bool show_help = false;
  if (!ParseOptions(argc, argv, &options, &show_help)) return 2;
  if (show_help) {
    PrintHelp();
    return 0;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  InstallSignalHandlers();

  auto run_start = MonotonicClock::now();
  std::string directory = MakeScratchDirectory(options.parent_directory);
  FilesystemInfo filesystem = DescribeFilesystem(directory);
  herd::store::WarnIfNetworkFilesystem(directory);

  // The PostgreSQL server: given, or one of our own for this run.
  if (options.postgres.empty() && std::getenv("HERD_BENCH_POSTGRES") != nullptr) {
    options.postgres = std::getenv("HERD_BENCH_POSTGRES");
  }
  bool throwaway = options.postgres.empty();
  if (throwaway) {
    options.postgres = herd::bench::StartThrowawayPostgres();
    if (options.postgres.empty()) {
      RemoveScratchDirectory(directory);
      return 1;
    }
  }
  g_postgres_conninfo = options.postgres;
  auto stop_postgres = [] { herd::bench::StopThrowawayPostgres(); };

  json sample_registry = MakeTaskRegistry();
  ApplyProgressUpdate(sample_registry, UpdateWork{});
  sample_registry[herd::store::kSequenceKey] = 1;
  std::string document_bytes = Serialize(sample_registry);

  std::printf("herd-bench-store%s: registry store under concurrent writer processes\n",
              options.quick ? " --quick" : "");
  std::printf("directory:  %s\n", directory.c_str());
  std::printf("filesystem: %s\n", filesystem.description.c_str());
  std::printf("document:   task registry, %zu agents, %zu bytes; %u CPUs\n",
              sample_registry["agents"].size(), document_bytes.size(),
              std::thread::hardware_concurrency());
  std::printf("writers:    N in {");
  for (size_t i = 0; i < options.process_counts.size(); ++i) {
    std::printf("%s%d", i ? ", " : "", options.process_counts[i]);
  }
  std::printf("} processes x %d updates each, started together; lock timeout %lld ms\n",
              options.updates_per_process, static_cast<long long>(kLockTimeout.count()));
  std::printf("postgresql: %s%s\n", herd::pg::RedactedSetting(options.postgres).c_str(),
              throwaway ? " (a throwaway server started for this run)" : "");
  std::printf("load:       %s (1/5/15 min) at start\n", LoadAverage().c_str());
  std::vector<Scheme> schemes = Schemes();
  for (const Scheme& scheme : schemes) {
    std::printf("%-11s %s\n", (scheme.name + ":").c_str(), scheme.description.c_str());
  }

  FloorResult floor_sample = MeasureFloor(directory, document_bytes, options.floor_segment_seconds);
  std::vector<Comparison> comparisons;
  for (int processes : options.process_counts) {
    Comparison row;
    row.processes = processes;
    row.herd = RunWriters(schemes[0], directory, processes, options.updates_per_process);
    row.seed = RunWriters(schemes[1], directory, processes, options.updates_per_process);
    row.sqlite = RunWriters(schemes[2], directory, processes, options.updates_per_process);
    row.postgres = RunWriters(schemes[3], directory, processes, options.updates_per_process);
    row.floor.before = floor_sample;
    floor_sample = MeasureFloor(directory, document_bytes, options.floor_segment_seconds);
    row.floor.after = floor_sample;
    std::fprintf(stderr,
                 "  ran N=%d: herd %.0f ops/s, seed %.0f, sqlite %.0f, postgresql %.0f, floor "
                 "%.0f ops/s\n",
                 processes, row.herd.ops_per_second(), row.seed.ops_per_second(),
                 row.sqlite.ops_per_second(), row.postgres.ops_per_second(),
                 row.floor.ops_per_second());
    comparisons.push_back(std::move(row));
    if (g_interrupted) {
      RemoveScratchDirectory(directory);
      stop_postgres();
      std::fprintf(stderr, "herd-bench-store: interrupted; removed %s\n", directory.c_str());
      return 130;
    }
  }
  std::printf("load:       %s (1/5/15 min) at end\n", LoadAverage().c_str());

  PrintTable(comparisons);
  PrintCriteria(CriteriaRow(comparisons));
  PrintConclusions(comparisons, filesystem.type);

  if (options.keep) {
    std::printf("\nkept %s\n", directory.c_str());
  } else {
    RemoveScratchDirectory(directory);
  }
  stop_postgres();
  std::printf("run time:   %.1f s\n", MillisecondsSince(run_start) / 1000);
  // The engines that must lose nothing: herd's JSON store, SQLite, PostgreSQL.
  bool lost_any = false;
  std::printf("\nengines (durable updates/s, lost, errors):\n");
  for (const Comparison& row : comparisons) {
    std::printf(
        "  N=%-3d json %7.0f %3lld %3lld | sqlite %7.0f %3lld %3lld | postgresql %7.0f %3lld "
        "%3lld\n",
        row.processes, row.herd.ops_per_second(), static_cast<long long>(row.herd.lost),
        static_cast<long long>(row.herd.errors), row.sqlite.ops_per_second(),
        static_cast<long long>(row.sqlite.lost), static_cast<long long>(row.sqlite.errors),
        row.postgres.ops_per_second(), static_cast<long long>(row.postgres.lost),
        static_cast<long long>(row.postgres.errors));
    for (const RunResult* run : {&row.herd, &row.sqlite, &row.postgres}) {
      if (run->lost != 0 || run->errors != 0 || !run->final_readable) lost_any = true;
    }
  }
  std::printf("no lost update in json, sqlite, postgresql: %s\n", lost_any ? "FAIL" : "PASS");
  PrintSummaryLine(comparisons);
  return lost_any ? 1 : 0;
}

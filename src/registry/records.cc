#include "registry/records.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/json_fields.h"

namespace herd::registry {
namespace {

const char* TypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "true/false";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "a list";
    case json::value_t::object: return "an object";
    default: return "a number";
  }
}

// Reads the modelled fields of one JSON object, remembering the first
// error and which keys it consumed; the rest is kept as `unknown`. A
// missing key or null leaves the target as it is (its default).
class FieldReader {
 public:
  FieldReader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  void String(const char* key, std::string* target) {
    if (const json* value = Take(key)) {
      if (!value->is_string()) return Fail(key, *value, "a string");
      *target = value->get<std::string>();
    }
  }
  void OptionalString(const char* key, std::optional<std::string>* target) {
    if (const json* value = Take(key)) {
      if (!value->is_string()) return Fail(key, *value, "a string");
      *target = value->get<std::string>();
    }
  }
  void Bool(const char* key, bool* target) {
    if (const json* value = Take(key)) {
      if (!value->is_boolean()) return Fail(key, *value, "true or false");
      *target = value->get<bool>();
    }
  }
  template <typename T>
  void Integer(const char* key, T* target, long double minimum = 0) {
    if (const json* value = Take(key)) {
      long double number = value->is_number() ? value->get<long double>() : 0;
      if (!value->is_number() || number != std::floor(number) || number < minimum ||
          number > static_cast<long double>(std::numeric_limits<T>::max())) {
        return Fail(key, *value,
                    minimum < 0 ? std::string("a whole number")
                                : "a whole number, " +
                                      std::to_string(static_cast<long long>(minimum)) + " or more");
      }
      *target = static_cast<T>(number);
    }
  }
  template <typename T>
  void OptionalInteger(const char* key, std::optional<T>* target, long double minimum = 0) {
    bool given = Peek(key) != nullptr;
    T value{};
    Integer(key, &value, minimum);
    if (given && error_.ok()) *target = value;
  }
  void OptionalNumber(const char* key, std::optional<double>* target) {
    if (const json* value = Take(key)) {
      if (!value->is_number()) return Fail(key, *value, "a number");
      *target = value->get<double>();
    }
  }
  void Object(const char* key, json* target) {
    if (const json* value = Take(key)) {
      if (!value->is_object()) return Fail(key, *value, "an object");
      *target = *value;
    }
  }
  // Any JSON value, kept as it is (the backends' own objects).
  void Any(const char* key, json* target) {
    if (const json* value = Take(key)) *target = *value;
  }
  // The value of `key` unless missing or null, without consuming it.
  const json* Peek(const char* key) const {
    auto found = object_.find(key);
    return found == object_.end() || found->is_null() ? nullptr : &*found;
  }
  // Consumes `key`; its value unless missing or null.
  const json* Take(const char* key) {
    consumed_.push_back(key);
    return Peek(key);
  }
  void Fail(const std::string& message) {
    if (error_.ok()) error_ = Status::Corruption(where_ + ": " + message);
  }
  void Fail(const char* key, const json& value, const std::string& expected) {
    std::string shown = value.dump();
    if (shown.size() > 40) shown = shown.substr(0, 40) + "...";
    Fail("field \"" + std::string(key) + "\" is " + TypeName(value) + " (" + shown +
         "), expected " + expected +
         ": correct or remove it by hand (`herd doctor` lists damaged registries)");
  }
  // The keys not consumed, as found.
  json Unknown() const {
    json rest = json::object();
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      bool known = std::any_of(consumed_.begin(), consumed_.end(),
                               [&](const char* key) { return it.key() == key; });
      if (!known) rest[it.key()] = it.value();
    }
    return rest;
  }
  const std::string& where() const { return where_; }
  Status status() const { return error_; }

 private:
  const json& object_;
  std::string where_;
  // The keys read: literals, a few dozen at most, so a list beats a set.
  std::vector<const char*> consumed_;
  Status error_;
};

// Starts an object from the unknown keys, so the modelled ones win.
json WithUnknown(const json& unknown) {
  return unknown.is_object() ? unknown : json::object();
}

void PutOptional(json& object, const char* key, const std::optional<std::string>& value) {
  if (value) object[key] = *value;
}

Result<LimitHit> DecodeLimitHit(const json& value, const std::string& where) {
  if (!value.is_object()) {
    return Status::Corruption(where + " is " + TypeName(value) +
                              ", expected an object {limit, limit_value, used}");
  }
  LimitHit hit;
  FieldReader reader(value, where);
  reader.String("limit", &hit.limit);
  std::optional<double> number;
  reader.OptionalNumber("limit_value", &number);
  hit.limit_value = number.value_or(0);
  number.reset();
  reader.OptionalNumber("used", &number);
  hit.used = number.value_or(0);
  reader.String("message", &hit.message);
  reader.String("at", &hit.at);
  HERD_RETURN_IF_ERROR(reader.status());
  hit.unknown = reader.Unknown();
  return hit;
}

// Reads an optional {limit, ...} field through `reader`.
void ReadLimitHit(FieldReader& reader, const char* key, std::optional<LimitHit>* target) {
  const json* value = reader.Take(key);
  if (value == nullptr) return;
  Result<LimitHit> hit = DecodeLimitHit(*value, reader.where() + ": field \"" + key + "\"");
  if (!hit.ok()) return reader.Fail(key, *value, "an object {limit, limit_value, used}");
  *target = std::move(hit).value();
}

std::vector<std::pair<const char*, const std::string*>> TrackedFileFields(
    const TrackedFiles& files) {
  return {{"prompt_file", &files.prompt_file},
          {"log_file", &files.log_file},
          {"progress_file", &files.progress_file},
          {"findings_file", &files.findings_file}};
}

void ReadTrackedFiles(FieldReader& reader, TrackedFiles* files) {
  const json* value = reader.Take("tracked_files");
  if (value == nullptr) return;
  if (!value->is_object()) return reader.Fail("tracked_files", *value, "an object");
  FieldReader files_reader(*value, reader.where() + ": tracked_files");
  for (const auto& [key, field] : TrackedFileFields(*files)) {
    files_reader.String(key, const_cast<std::string*>(field));
  }
  if (!files_reader.status().ok()) return reader.Fail(files_reader.status().message());
  files->unknown = files_reader.Unknown();
}

void ReadIdentity(FieldReader& reader, const char* pid_key, const char* start_key,
                  ProcessIdentity* identity) {
  reader.Integer(pid_key, &identity->pid);
  reader.Integer(start_key, &identity->start_time);
}

// exit_code, exit_signal and ended_at, of an agent's entry or of a turn:
// an exit when any is set (or `exited` says so: an entry in phase "exited").
void ReadExit(FieldReader& reader, std::optional<ExitInfo>* target, bool exited = false) {
  bool present = exited || reader.Peek("exit_code") != nullptr ||
                 reader.Peek("exit_signal") != nullptr || reader.Peek("ended_at") != nullptr;
  ExitInfo exit;
  reader.OptionalInteger("exit_code", &exit.exit_code, std::numeric_limits<int>::min());
  reader.OptionalInteger("exit_signal", &exit.exit_signal);
  reader.String("ended_at", &exit.ended_at);
  if (present) *target = exit;
}

void PutExit(json& object, const std::optional<ExitInfo>& exit) {
  if (!exit) return;
  object["exit_code"] = exit->exit_code ? json(*exit->exit_code) : json(nullptr);
  object["exit_signal"] = exit->exit_signal ? json(*exit->exit_signal) : json(nullptr);
  object["ended_at"] = exit->ended_at;
}

void PutIdentities(json& object, const ProcessIdentity& process,
                   const ProcessIdentity& supervisor) {
  if (process.recorded()) {
    object["pid"] = process.pid;
    object["pgid"] = process.pid;
    object["process_start_time"] = process.start_time;
  }
  if (supervisor.recorded()) {
    object["supervisor_pid"] = supervisor.pid;
    object["supervisor_start_time"] = supervisor.start_time;
  }
}

void ReadIdentities(FieldReader& reader, ProcessIdentity* process, ProcessIdentity* supervisor) {
  ReadIdentity(reader, "pid", "process_start_time", process);
  reader.Take("pgid");  // always the pid: each agent leads its own group
  ReadIdentity(reader, "supervisor_pid", "supervisor_start_time", supervisor);
}

json EncodeMessage(const AgentMessage& message) {
  json object = WithUnknown(message.unknown);
  object["id"] = message.id;
  object["text_file"] = message.text_file;
  if (!message.text.empty()) object["text"] = message.text;
  object["preview"] = message.preview;
  object["sent_at"] = message.sent_at;
  if (message.interrupt) object["interrupt"] = true;
  if (!message.undelivered_reason.empty()) {
    object["undelivered_reason"] = message.undelivered_reason;
    object["undelivered_at"] = message.undelivered_at;
  }
  return object;
}

Result<AgentMessage> DecodeMessage(const json& value, const std::string& where) {
  if (!value.is_object()) {
    return Status::Corruption(where + " is " + TypeName(value) +
                              ", expected an object {id, text_file, preview, sent_at}");
  }
  AgentMessage message;
  FieldReader reader(value, where);
  reader.String("id", &message.id);
  reader.String("text_file", &message.text_file);
  reader.String("text", &message.text);
  reader.String("preview", &message.preview);
  reader.String("sent_at", &message.sent_at);
  reader.Bool("interrupt", &message.interrupt);
  reader.String("undelivered_reason", &message.undelivered_reason);
  reader.String("undelivered_at", &message.undelivered_at);
  HERD_RETURN_IF_ERROR(reader.status());
  message.unknown = reader.Unknown();
  return message;
}

void ReadMessage(FieldReader& reader, const char* key, std::optional<AgentMessage>* target) {
  const json* value = reader.Take(key);
  if (value == nullptr) return;
  Result<AgentMessage> message = DecodeMessage(*value, reader.where() + ": field \"" + key + "\"");
  if (!message.ok()) return reader.Fail(message.status().message());
  *target = std::move(message).value();
}

void ReadMessages(FieldReader& reader, const char* key, std::vector<AgentMessage>* target) {
  const json* value = reader.Take(key);
  if (value == nullptr) return;
  if (!value->is_array()) return reader.Fail(key, *value, "a list of messages");
  for (size_t i = 0; i < value->size(); ++i) {
    Result<AgentMessage> message =
        DecodeMessage((*value)[i], reader.where() + ": " + key + "[" + std::to_string(i) + "]");
    if (!message.ok()) return reader.Fail(message.status().message());
    target->push_back(std::move(message).value());
  }
}

json EncodeMessages(const std::vector<AgentMessage>& messages) {
  json list = json::array();
  for (const AgentMessage& message : messages) list.push_back(EncodeMessage(message));
  return list;
}

json EncodeTurn(const TurnRecord& turn) {
  json object = WithUnknown(turn.unknown);
  object["number"] = turn.number;
  if (turn.message) object["message"] = EncodeMessage(*turn.message);
  object["started_at"] = turn.started_at;
  object["status"] = turn.status;
  object["progress"] = turn.progress;
  PutOptional(object, "completed_at", turn.completed_at);
  PutOptional(object, "ended_reason", turn.ended_reason);
  PutOptional(object, "error", turn.error);
  PutOptional(object, "terminated_at", turn.terminated_at);
  PutOptional(object, "termination_reason", turn.termination_reason);
  if (turn.stopped_by_limit) object["stopped_by_limit"] = EncodeLimitHit(*turn.stopped_by_limit);
  PutIdentities(object, turn.process, turn.supervisor);
  PutExit(object, turn.exit);
  if (!turn.result.is_null()) object["result"] = turn.result;
  if (!turn.usage.is_null()) object["usage"] = turn.usage;
  return object;
}

Result<TurnRecord> DecodeTurn(const json& value, const std::string& where) {
  if (!value.is_object()) {
    return Status::Corruption(where + " is " + TypeName(value) +
                              ", expected an object {number, status, ...}");
  }
  TurnRecord turn;
  FieldReader reader(value, where);
  reader.Integer("number", &turn.number, 1);
  ReadMessage(reader, "message", &turn.message);
  reader.String("started_at", &turn.started_at);
  reader.String("status", &turn.status);
  reader.Integer("progress", &turn.progress);
  reader.OptionalString("completed_at", &turn.completed_at);
  reader.OptionalString("ended_reason", &turn.ended_reason);
  reader.OptionalString("error", &turn.error);
  reader.OptionalString("terminated_at", &turn.terminated_at);
  reader.OptionalString("termination_reason", &turn.termination_reason);
  ReadLimitHit(reader, "stopped_by_limit", &turn.stopped_by_limit);
  ReadIdentities(reader, &turn.process, &turn.supervisor);
  ReadExit(reader, &turn.exit);
  reader.Any("result", &turn.result);
  reader.Any("usage", &turn.usage);
  HERD_RETURN_IF_ERROR(reader.status());
  turn.unknown = reader.Unknown();
  return turn;
}

void ReadTurns(FieldReader& reader, std::vector<TurnRecord>* target) {
  const json* value = reader.Take("turns");
  if (value == nullptr) return;
  if (!value->is_array()) return reader.Fail("turns", *value, "a list of turns");
  for (size_t i = 0; i < value->size(); ++i) {
    Result<TurnRecord> turn =
        DecodeTurn((*value)[i], reader.where() + ": turns[" + std::to_string(i) + "]");
    if (!turn.ok()) return reader.Fail(turn.status().message());
    target->push_back(std::move(turn).value());
  }
}

void ReadMerge(FieldReader& reader, std::optional<MergeRecord>* target) {
  const json* value = reader.Take("merge");
  if (value == nullptr) return;
  if (!value->is_object()) return reader.Fail("merge", *value, "an object");
  FieldReader merge_reader(*value, reader.where() + ": worktree.merge");
  MergeRecord merge;
  merge_reader.String("commit", &merge.commit);
  merge_reader.String("strategy", &merge.strategy);
  merge_reader.String("into", &merge.into);
  merge_reader.String("at", &merge.at);
  if (const json* files = merge_reader.Take("files")) {
    if (!files->is_array()) return reader.Fail("merge", *value, "files as a list of paths");
    for (const json& file : *files) {
      if (!file.is_string()) return reader.Fail("merge", *value, "files as a list of paths");
      merge.files.push_back(file.get<std::string>());
    }
  }
  if (!merge_reader.status().ok()) return reader.Fail(merge_reader.status().message());
  merge.unknown = merge_reader.Unknown();
  *target = std::move(merge);
}

void ReadWorktree(FieldReader& reader, std::optional<WorktreeRecord>* target) {
  const json* value = reader.Take("worktree");
  if (value == nullptr) return;
  if (!value->is_object()) return reader.Fail("worktree", *value, "an object");
  FieldReader worktree_reader(*value, reader.where() + ": worktree");
  WorktreeRecord worktree;
  worktree_reader.String("repository", &worktree.repository);
  worktree_reader.String("path", &worktree.path);
  worktree_reader.String("branch", &worktree.branch);
  worktree_reader.String("base_ref", &worktree.base_ref);
  worktree_reader.String("base_sha", &worktree.base_sha);
  worktree_reader.Bool("created_branch", &worktree.created_branch);
  ReadMerge(worktree_reader, &worktree.merge);
  worktree_reader.OptionalString("removed_at", &worktree.removed_at);
  if (!worktree_reader.status().ok()) return reader.Fail(worktree_reader.status().message());
  worktree.unknown = worktree_reader.Unknown();
  *target = std::move(worktree);
}

}  // namespace

namespace {

void ReadNode(FieldReader& reader, std::optional<NodePlacement>* target) {
  const json* value = reader.Take("node");
  if (value == nullptr || value->is_null()) return;
  if (!value->is_object()) return reader.Fail("node", *value, "an object");
  FieldReader node_reader(*value, reader.where() + ": node");
  NodePlacement node;
  node_reader.String("name", &node.name);
  node_reader.Integer("incarnation", &node.incarnation);
  if (!node_reader.status().ok()) return reader.Fail(node_reader.status().message());
  node.unknown = node_reader.Unknown();
  *target = std::move(node);
}

json EncodeNode(const NodePlacement& node) {
  json object = WithUnknown(node.unknown);
  object["name"] = node.name;
  object["incarnation"] = node.incarnation;
  return object;
}

}  // namespace

json EncodeWorktree(const WorktreeRecord& worktree) {
  json object = WithUnknown(worktree.unknown);
  object["repository"] = worktree.repository;
  object["path"] = worktree.path;
  object["branch"] = worktree.branch;
  object["base_ref"] = worktree.base_ref;
  object["base_sha"] = worktree.base_sha;
  object["created_branch"] = worktree.created_branch;
  if (worktree.merge) {
    json merge = WithUnknown(worktree.merge->unknown);
    merge["commit"] = worktree.merge->commit;
    merge["strategy"] = worktree.merge->strategy;
    merge["into"] = worktree.merge->into;
    merge["files"] = worktree.merge->files;
    merge["at"] = worktree.merge->at;
    object["merge"] = std::move(merge);
  }
  PutOptional(object, "removed_at", worktree.removed_at);
  return object;
}

void Usage::Add(const Usage& other) {
  total_cost_usd += other.total_cost_usd;
  total_tokens += other.total_tokens;
  input_tokens += other.input_tokens;
  output_tokens += other.output_tokens;
  num_turns += other.num_turns;
}

json Usage::ToJson() const {
  // Key by key: an initializer list copies every value twice, and a status
  // reply encodes two of these per agent.
  json object = json::object();
  object["total_cost_usd"] = total_cost_usd;
  object["total_tokens"] = total_tokens;
  object["input_tokens"] = input_tokens;
  object["output_tokens"] = output_tokens;
  object["num_turns"] = num_turns;
  return object;
}

AgentRecord* TaskRecord::FindAgent(const std::string& agent_id) {
  for (AgentRecord& agent : agents) {
    if (agent.id == agent_id) return &agent;
  }
  return nullptr;
}

const AgentRecord* TaskRecord::FindAgent(const std::string& agent_id) const {
  return const_cast<TaskRecord*>(this)->FindAgent(agent_id);
}

json EncodeLimitHit(const LimitHit& hit) {
  json object = WithUnknown(hit.unknown);
  object["limit"] = hit.limit;
  object["limit_value"] = hit.limit_value;
  object["used"] = hit.used;
  if (!hit.message.empty()) object["message"] = hit.message;
  if (!hit.at.empty()) object["at"] = hit.at;
  return object;
}

json EncodeLimitHitOrNull(const std::optional<LimitHit>& hit) {
  return hit ? EncodeLimitHit(*hit) : json(nullptr);
}

json EncodeHierarchy(const TaskRecord& task) {
  json hierarchy = json::object();
  for (const auto& [parent, children] : task.hierarchy) hierarchy[parent] = children;
  return hierarchy;
}

json EncodeLimits(const Limits& limits) {
  return {{"max_agents", limits.max_agents},
          {"max_concurrent", limits.max_concurrent},
          {"max_depth", limits.max_depth}};
}

json EncodeBudget(const Budget& budget) {
  return {{"max_cost_usd", budget.max_cost_usd ? json(*budget.max_cost_usd) : json(nullptr)},
          {"max_tokens", budget.max_tokens ? json(*budget.max_tokens) : json(nullptr)}};
}

Result<AgentRecord> DecodeAgent(const json& entry, const std::string& source) {
  if (!entry.is_object()) {
    return Status::Corruption(source + ": an agent entry is " + TypeName(entry) +
                              ", expected an object: remove it by hand");
  }
  AgentRecord agent;
  const json* id = entry.contains("id") ? &entry["id"] : nullptr;
  if (id == nullptr || !id->is_string()) {
    return Status::Corruption(source + ": an agent entry has no string \"id\": remove it by hand");
  }
  FieldReader reader(entry, source + ": agent " + id->get<std::string>());
  reader.String("id", &agent.id);
  reader.String("type", &agent.type);
  reader.String("parent", &agent.parent);
  reader.Integer("depth", &agent.depth, 1);
  reader.String("status", &agent.status);
  reader.String("phase", &agent.phase);
  reader.Integer("progress", &agent.progress);
  reader.String("started_at", &agent.started_at);
  reader.String("last_update", &agent.last_update);
  reader.String("prompt", &agent.prompt);
  reader.String("backend", &agent.backend);
  reader.String("model", &agent.model);
  reader.String("session_id", &agent.session_id);
  reader.String("cwd", &agent.cwd);
  ReadTrackedFiles(reader, &agent.tracked_files);
  reader.OptionalString("last_message", &agent.last_message);
  reader.OptionalString("completed_at", &agent.completed_at);
  reader.OptionalString("ended_reason", &agent.ended_reason);
  reader.OptionalString("error", &agent.error);
  reader.OptionalString("terminated_at", &agent.terminated_at);
  reader.OptionalString("termination_reason", &agent.termination_reason);
  reader.OptionalString("lost_detail", &agent.lost_detail);
  reader.OptionalString("tmux_session", &agent.tmux_session);
  ReadLimitHit(reader, "stopped_by_limit", &agent.stopped_by_limit);
  reader.OptionalInteger("kill_grace_ms", &agent.kill_grace_ms);
  ReadWorktree(reader, &agent.worktree);
  reader.OptionalInteger("port", &agent.port);
  ReadNode(reader, &agent.node);
  reader.Any("launch", &agent.launch);
  ReadIdentities(reader, &agent.process, &agent.supervisor);
  ReadExit(reader, &agent.exit, agent.phase == "exited");
  reader.Any("result", &agent.result);
  reader.Any("usage", &agent.usage);
  reader.OptionalInteger("progress_journal_bytes", &agent.progress_journal_bytes);
  reader.OptionalInteger("findings_journal_bytes", &agent.findings_journal_bytes);
  reader.Integer("turn", &agent.turn, 1);
  reader.String("turn_started_at", &agent.turn_started_at);
  ReadMessage(reader, "turn_message", &agent.turn_message);
  ReadTurns(reader, &agent.turns);
  ReadMessages(reader, "message_queue", &agent.message_queue);
  ReadMessages(reader, "undelivered_messages", &agent.undelivered_messages);
  HERD_RETURN_IF_ERROR(reader.status());
  if (agent.progress > 100) {
    return Status::Corruption(reader.where() + ": field \"progress\" is " +
                              std::to_string(agent.progress) +
                              ", expected 0-100: correct it by hand");
  }
  agent.unknown = reader.Unknown();
  return agent;
}

json EncodeAgent(const AgentRecord& agent) {
  json entry = WithUnknown(agent.unknown);
  entry["id"] = agent.id;
  entry["type"] = agent.type;
  entry["parent"] = agent.parent;
  entry["depth"] = agent.depth;
  entry["status"] = agent.status;
  entry["phase"] = agent.phase;
  entry["progress"] = agent.progress;
  entry["started_at"] = agent.started_at;
  entry["last_update"] = agent.last_update;
  entry["prompt"] = agent.prompt;
  entry["backend"] = agent.backend;
  entry["model"] = NullIfEmpty(agent.model);
  if (!agent.session_id.empty()) entry["session_id"] = agent.session_id;
  entry["cwd"] = agent.cwd;
  json files = WithUnknown(agent.tracked_files.unknown);
  for (const auto& [key, value] : TrackedFileFields(agent.tracked_files)) {
    if (!value->empty()) files[key] = *value;
  }
  entry["tracked_files"] = std::move(files);
  PutOptional(entry, "last_message", agent.last_message);
  PutOptional(entry, "completed_at", agent.completed_at);
  PutOptional(entry, "ended_reason", agent.ended_reason);
  PutOptional(entry, "error", agent.error);
  PutOptional(entry, "terminated_at", agent.terminated_at);
  PutOptional(entry, "termination_reason", agent.termination_reason);
  PutOptional(entry, "lost_detail", agent.lost_detail);
  PutOptional(entry, "tmux_session", agent.tmux_session);
  if (agent.stopped_by_limit) entry["stopped_by_limit"] = EncodeLimitHit(*agent.stopped_by_limit);
  if (agent.kill_grace_ms) entry["kill_grace_ms"] = *agent.kill_grace_ms;
  if (agent.worktree) entry["worktree"] = EncodeWorktree(*agent.worktree);
  if (agent.port) entry["port"] = *agent.port;
  if (agent.node) entry["node"] = EncodeNode(*agent.node);
  if (!agent.launch.is_null()) entry["launch"] = agent.launch;
  PutIdentities(entry, agent.process, agent.supervisor);
  PutExit(entry, agent.exit);
  if (!agent.result.is_null()) entry["result"] = agent.result;
  if (!agent.usage.is_null()) entry["usage"] = agent.usage;
  if (agent.progress_journal_bytes) entry["progress_journal_bytes"] = *agent.progress_journal_bytes;
  if (agent.findings_journal_bytes) entry["findings_journal_bytes"] = *agent.findings_journal_bytes;
  if (agent.turn > 1) entry["turn"] = agent.turn;
  if (!agent.turn_started_at.empty()) entry["turn_started_at"] = agent.turn_started_at;
  if (agent.turn_message) entry["turn_message"] = EncodeMessage(*agent.turn_message);
  if (!agent.turns.empty()) {
    json turns = json::array();
    for (const TurnRecord& turn : agent.turns) turns.push_back(EncodeTurn(turn));
    entry["turns"] = std::move(turns);
  }
  if (!agent.message_queue.empty()) entry["message_queue"] = EncodeMessages(agent.message_queue);
  if (!agent.undelivered_messages.empty()) {
    entry["undelivered_messages"] = EncodeMessages(agent.undelivered_messages);
  }
  return entry;
}

namespace {

void ReadLimitsAndBudget(FieldReader& reader, TaskRecord* task) {
  reader.Integer("max_agents", &task->limits.max_agents, 1);
  reader.Integer("max_concurrent", &task->limits.max_concurrent, 1);
  reader.Integer("max_depth", &task->limits.max_depth, 1);
  reader.Integer("agent_timeout_seconds", &task->timeouts.wall_clock_seconds);
  reader.Integer("agent_idle_timeout_seconds", &task->timeouts.idle_seconds);
  if (const json* budget = reader.Take("budget")) {
    if (!budget->is_object()) return reader.Fail("budget", *budget, "an object");
    FieldReader budget_reader(*budget, reader.where() + ": budget");
    budget_reader.OptionalNumber("max_cost_usd", &task->budget.max_cost_usd);
    budget_reader.OptionalInteger("max_tokens", &task->budget.max_tokens, 1);
    if (!budget_reader.status().ok()) reader.Fail(budget_reader.status().message());
    if (!budget_reader.Unknown().empty()) {
      reader.Fail("budget has fields herd does not know (" + budget_reader.Unknown().dump() +
                  "): keep only max_cost_usd and max_tokens");
    }
  }
  ReadLimitHit(reader, "budget_exceeded", &task->budget_exceeded);
}

void ReadStop(FieldReader& reader, TaskRecord* task) {
  std::optional<std::string> at, reason;
  reader.OptionalString("stopped_at", &at);
  reader.OptionalString("stopped_reason", &reason);
  if (at || reason) task->stopped = TaskStop{reason.value_or(""), at.value_or("")};
}

void ReadHierarchy(FieldReader& reader, TaskRecord* task) {
  const json* hierarchy = reader.Take("agent_hierarchy");
  if (hierarchy == nullptr) return;
  const char* expected = "an object of parent -> list of agent ids";
  if (!hierarchy->is_object()) return reader.Fail("agent_hierarchy", *hierarchy, expected);
  for (auto it = hierarchy->begin(); it != hierarchy->end(); ++it) {
    std::vector<std::string>& children = task->hierarchy[it.key()];
    if (it->is_null()) continue;
    if (!it->is_array()) return reader.Fail("agent_hierarchy", *hierarchy, expected);
    for (const json& child : *it) {
      if (!child.is_string()) return reader.Fail("agent_hierarchy", *hierarchy, expected);
      children.push_back(child.get<std::string>());
    }
  }
}

}  // namespace

Result<TaskRecord> DecodeTask(const json& document, const std::string& source) {
  if (!document.is_object()) {
    return Status::Corruption(source + " is " + TypeName(document) + ", not a task registry");
  }
  TaskRecord task;
  FieldReader reader(document, source);
  reader.String("task_id", &task.task_id);
  reader.String("task_description", &task.description);
  reader.String("created_at", &task.created_at);
  reader.String("workspace", &task.workspace);
  reader.String("workspace_base", &task.workspace_base);
  reader.String("client_cwd", &task.client_cwd);
  reader.String("priority", &task.priority);
  reader.Object("task_context", &task.context);
  reader.Bool("isolate_agent_config", &task.isolate_agent_config);
  reader.String("notify_command", &task.notify_command);
  reader.Bool("agent_worktrees", &task.agent_worktrees);
  reader.Any("spiral_checks", &task.spiral_checks);
  ReadLimitsAndBudget(reader, &task);
  ReadStop(reader, &task);
  ReadHierarchy(reader, &task);
  // Derived: recomputed from the agents, whatever the file says.
  for (const char* derived :
       {"status", "total_spawned", "active_count", "completed_count", "usage_totals"}) {
    reader.Take(derived);
  }
  HERD_RETURN_IF_ERROR(reader.status());
  const json* agents = reader.Take("agents");
  if (agents != nullptr && !agents->is_array()) {
    return Status::Corruption(source + ": field \"agents\" is " + TypeName(*agents) +
                              ", expected a list: restore the file from its .bak");
  }
  if (agents != nullptr) {
    task.agents.reserve(agents->size());
    for (const json& entry : *agents) {
      HERD_ASSIGN_OR_RETURN(AgentRecord agent, DecodeAgent(entry, source));
      task.agents.push_back(std::move(agent));
    }
  }
  task.unknown = reader.Unknown();
  return task;
}

json EncodeTask(const TaskRecord& task) {
  json document = WithUnknown(task.unknown);
  document["task_id"] = task.task_id;
  document["task_description"] = task.description;
  document["created_at"] = task.created_at;
  document["workspace"] = task.workspace;
  document["workspace_base"] = task.workspace_base;
  document["client_cwd"] = NullIfEmpty(task.client_cwd);
  document["priority"] = task.priority;
  if (!task.context.is_null()) document["task_context"] = task.context;
  if (!task.spiral_checks.is_null()) document["spiral_checks"] = task.spiral_checks;
  document["max_agents"] = task.limits.max_agents;
  document["max_concurrent"] = task.limits.max_concurrent;
  document["max_depth"] = task.limits.max_depth;
  document["budget"] = EncodeBudget(task.budget);
  if (task.budget_exceeded) document["budget_exceeded"] = EncodeLimitHit(*task.budget_exceeded);
  if (task.stopped) {
    document["stopped_at"] = task.stopped->at;
    document["stopped_reason"] = task.stopped->reason;
  }
  document["agent_timeout_seconds"] = task.timeouts.wall_clock_seconds;
  document["agent_idle_timeout_seconds"] = task.timeouts.idle_seconds;
  document["isolate_agent_config"] = task.isolate_agent_config;
  if (!task.notify_command.empty()) document["notify_command"] = task.notify_command;
  if (task.agent_worktrees) document["agent_worktrees"] = true;
  json agents = json::array();
  for (const AgentRecord& agent : task.agents) agents.push_back(EncodeAgent(agent));
  document["agents"] = std::move(agents);
  document["agent_hierarchy"] = EncodeHierarchy(task);
  document["status"] = task.status;
  document["total_spawned"] = task.total_spawned;
  document["active_count"] = task.active_count;
  document["completed_count"] = task.completed_count;
  document["usage_totals"] = task.usage_totals.ToJson();
  return document;
}

Result<ProgressUpdate> DecodeProgressUpdate(const json& line, const std::string& source) {
  if (!line.is_object()) return Status::Corruption(source + ": a line is not a JSON object");
  ProgressUpdate update;
  FieldReader reader(line, source);
  reader.String("agent_id", &update.agent_id);
  reader.String("status", &update.status);
  reader.Integer("progress", &update.progress);
  reader.String("message", &update.message);
  reader.String("timestamp", &update.timestamp);
  HERD_RETURN_IF_ERROR(reader.status());
  return update;
}

json EncodeProgressUpdate(const ProgressUpdate& update) {
  return {{"agent_id", update.agent_id},
          {"status", update.status},
          {"progress", update.progress},
          {"message", update.message},
          {"timestamp", update.timestamp}};
}

Result<Finding> DecodeFinding(const json& line, const std::string& source) {
  if (!line.is_object()) return Status::Corruption(source + ": a line is not a JSON object");
  Finding finding;
  FieldReader reader(line, source);
  reader.String("agent_id", &finding.agent_id);
  reader.String("finding_type", &finding.finding_type);
  reader.String("severity", &finding.severity);
  reader.String("message", &finding.message);
  reader.Any("data", &finding.data);
  reader.String("timestamp", &finding.timestamp);
  HERD_RETURN_IF_ERROR(reader.status());
  return finding;
}

json EncodeFinding(const Finding& finding) {
  return {{"agent_id", finding.agent_id}, {"finding_type", finding.finding_type},
          {"severity", finding.severity}, {"message", finding.message},
          {"data", finding.data},         {"timestamp", finding.timestamp}};
}

}  // namespace herd::registry

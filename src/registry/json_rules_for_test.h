// The task registry rules (task_registry.h) applied to stored JSON
// documents, for tests that state a rule as the file looks before and after.
//
// Each function decodes the document (DecodeTask, as the store edge does),
// applies the typed rule and encodes the result back into the document, so
// these tests check the rules and the codec's round trip together. Test
// code only: production code never handles the registry's JSON above the
// store edge (registry/task_store.h).
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "registry/global_index.h"
#include "registry/records.h"
#include "registry/task_registry.h"

namespace herd::registry {

// The decoded document; a test fails (and gets an empty task) if it does
// not decode.
inline TaskRecord DecodeForTest(const json& document) {
  Result<TaskRecord> task = DecodeTask(document, "the test's document");
  EXPECT_TRUE(task.ok()) << task.status().ToString();
  if (!task.ok()) return TaskRecord{};
  RecomputeCounts(*task);
  return std::move(task).value();
}

// Applies `rule` to the decoded `document` and writes the result back.
template <typename Rule>
auto ApplyToDocument(json& document, Rule rule) {
  TaskRecord task = DecodeForTest(document);
  auto outcome = rule(task);
  document = EncodeTask(task);  // herd_sequence comes back with the unknown keys
  return outcome;
}

inline json NewTaskDocument(const std::string& task_id, const TaskSpec& spec,
                            const std::string& workspace_base) {
  return EncodeTask(NewTask(task_id, spec, workspace_base));
}

inline void RecomputeCounts(json& document) {
  ApplyToDocument(document, [](TaskRecord&) { return 0; });
}

inline json* FindAgent(json& document, const std::string& agent_id) {
  if (!document.contains("agents")) return nullptr;
  for (json& agent : document["agents"]) {
    if (agent.value("id", "") == agent_id) return &agent;
  }
  return nullptr;
}
inline const json* FindAgent(const json& document, const std::string& agent_id) {
  return FindAgent(const_cast<json&>(document), agent_id);
}

inline Result<json> AdmitAgent(json& document, const AdmissionRequest& request) {
  return ApplyToDocument(document, [&](TaskRecord& task) -> Result<json> {
    Result<AgentRecord> agent = AdmitAgent(task, request);
    if (!agent.ok()) return agent.status();
    return EncodeAgent(*agent);
  });
}

inline void ReleaseAgent(json& document, const std::string& agent_id) {
  ApplyToDocument(document, [&](TaskRecord& task) {
    ReleaseAgent(task, agent_id);
    return 0;
  });
}

inline Result<json> ApplyProgress(json& document, const std::string& agent_id,
                                  const std::string& status, const std::string& message,
                                  int progress, const std::string& timestamp) {
  return ApplyToDocument(document, [&](TaskRecord& task) -> Result<json> {
    Result<ProgressUpdate> update =
        ApplyProgress(task, agent_id, status, message, progress, timestamp);
    if (!update.ok()) return update.status();
    return EncodeProgressUpdate(*update);
  });
}

inline Result<bool> MarkTerminated(json& document, const std::string& agent_id,
                                   const std::string& reason, const std::string& timestamp) {
  return ApplyToDocument(document, [&](TaskRecord& task) {
    return MarkTerminated(task, agent_id, reason, timestamp);
  });
}

inline Status RecordStart(json& document, const std::string& agent_id, const ProcessIdentity& agent,
                          const ProcessIdentity& supervisor) {
  return ApplyToDocument(
      document, [&](TaskRecord& task) { return RecordStart(task, agent_id, agent, supervisor); });
}

inline Status RecordExit(json& document, const std::string& agent_id, const ExitRecord& exit) {
  return ApplyToDocument(document,
                         [&](TaskRecord& task) { return RecordExit(task, agent_id, exit); });
}

inline int AgentDepth(const json& document, const std::string& agent_id) {
  return AgentDepth(DecodeForTest(document), agent_id);
}

// The document as committed with sequence `sequence` (its herd_sequence).
inline TaskSnapshot SnapshotOf(const json& document) {
  return TaskSnapshot{DecodeForTest(document), document.value(store::kSequenceKey, 0ULL), false};
}

inline Status UpsertTask(const RegistryStores& stores, const Workspace& workspace,
                         const json& document) {
  return UpsertTask(stores, workspace, SnapshotOf(document));
}

inline Status ReserveGlobalSlot(const RegistryStores& stores, const Workspace& workspace,
                                const json& document, const std::string& agent_id, int cap) {
  return ReserveGlobalSlot(stores, workspace, SnapshotOf(document), agent_id, cap);
}

}  // namespace herd::registry

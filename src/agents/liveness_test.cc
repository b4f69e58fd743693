// Liveness of registry entries, built by hand: identities of this test
// process (alive) and of the same pid with another start time (a recycled
// pid, so gone).
#include "agents/liveness.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "agents/process.h"
#include "util/clock.h"

namespace herd::agents {
namespace {

using nlohmann::json;

constexpr double kNow = 1'800'000'000.0;

// The entries are written as they are stored; each is classified as the
// registry decodes it.
Liveness ClassifyLiveness(const json& entry, double now,
                          std::chrono::seconds starting_grace = kStartingGrace,
                          ProcessWatch* watch = nullptr) {
  Result<registry::AgentRecord> agent = registry::DecodeAgent(entry, "the test's entry");
  EXPECT_TRUE(agent.ok()) << agent.status().ToString();
  return agent.ok() ? agents::ClassifyLiveness(*agent, now, starting_grace, watch)
                    : Liveness::kEnded;
}

json Identity(const char* pid_key, const char* start_key, const ProcessIdentity& identity) {
  return {{pid_key, identity.pid}, {start_key, identity.start_time}};
}

ProcessIdentity Live() {
  return IdentityOf(getpid());
}
ProcessIdentity Gone() {
  ProcessIdentity identity = IdentityOf(getpid());
  identity.start_time += 1;  // the same pid, another process: not this one
  return identity;
}

json Running(const ProcessIdentity& agent, const ProcessIdentity& supervisor) {
  json entry = {{"id", "worker-1"},
                {"status", "running"},
                {"phase", "running"},
                {"started_at", FormatIso8601(kNow - 5)}};
  entry.update(Identity("pid", "process_start_time", agent));
  entry.update(Identity("supervisor_pid", "supervisor_start_time", supervisor));
  return entry;
}

json Starting(double age_seconds) {
  return {{"id", "worker-1"},
          {"status", "running"},
          {"phase", "starting"},
          {"started_at", FormatIso8601(kNow - age_seconds)}};
}

TEST(LivenessTest, TerminalEntriesHaveEnded) {
  for (const char* status : {"completed", "error", "terminated", "failed"}) {
    json entry = Running(Gone(), Gone());
    entry["status"] = status;
    EXPECT_EQ(ClassifyLiveness(entry, kNow), Liveness::kEnded) << status;
  }
}

TEST(LivenessTest, RecordedProcessesDecide) {
  EXPECT_EQ(ClassifyLiveness(Running(Live(), Live()), kNow), Liveness::kAlive);
  EXPECT_EQ(ClassifyLiveness(Running(Live(), Gone()), kNow), Liveness::kUnsupervised);
  EXPECT_EQ(ClassifyLiveness(Running(Gone(), Live()), kNow), Liveness::kExiting);
  EXPECT_EQ(ClassifyLiveness(Running(Gone(), Gone()), kNow), Liveness::kLost);
  json working = Running(Gone(), Gone());
  working["status"] = "working";  // any active status
  EXPECT_EQ(ClassifyLiveness(working, kNow), Liveness::kLost);
}

TEST(LivenessTest, StartingIsLostOnlyAfterTheGraceWithoutASupervisor) {
  EXPECT_EQ(ClassifyLiveness(Starting(1), kNow), Liveness::kStarting);
  EXPECT_EQ(ClassifyLiveness(Starting(59), kNow), Liveness::kStarting);
  EXPECT_EQ(ClassifyLiveness(Starting(61), kNow), Liveness::kStartLost);
  EXPECT_EQ(ClassifyLiveness(Starting(3), kNow, std::chrono::seconds(2)), Liveness::kStartLost);
  // A recorded, live supervisor is still starting it, however long it takes.
  json slow = Starting(600);
  slow.update(Identity("supervisor_pid", "supervisor_start_time", Live()));
  EXPECT_EQ(ClassifyLiveness(slow, kNow), Liveness::kStarting);
  // No readable start time: not declared lost.
  json undated = Starting(600);
  undated["started_at"] = "yesterday";
  EXPECT_EQ(ClassifyLiveness(undated, kNow), Liveness::kStarting);
}

TEST(LivenessTest, AWatchGivesTheSameAnswers) {
  ProcessWatch watch;
  for (int round = 0; round < 2; ++round) {  // first through /proc, then through pidfds
    EXPECT_EQ(ClassifyLiveness(Running(Live(), Live()), kNow, kStartingGrace, &watch),
              Liveness::kAlive);
    EXPECT_EQ(ClassifyLiveness(Running(Live(), Gone()), kNow, kStartingGrace, &watch),
              Liveness::kUnsupervised);
    EXPECT_EQ(ClassifyLiveness(Running(Gone(), Gone()), kNow, kStartingGrace, &watch),
              Liveness::kLost);
  }
  EXPECT_EQ(watch.watched(), 1u);  // only the live identity is held
}

// A mistyped entry (status 7, pid "12") never reaches ClassifyLiveness: it
// is an error when the registry is decoded (records_test.cc,
// MistypedAgentFieldsAreErrorsNeverExceptions).

TEST(LivenessTest, NamesAsStatusReportsThem) {
  EXPECT_STREQ(LivenessName(Liveness::kAlive), "alive");
  EXPECT_STREQ(LivenessName(Liveness::kUnsupervised), "unsupervised");
  EXPECT_STREQ(LivenessName(Liveness::kStartLost), "lost");
  EXPECT_STREQ(LivenessName(Liveness::kLost), "lost");
  EXPECT_TRUE(IsLost(Liveness::kStartLost));
  EXPECT_FALSE(IsLost(Liveness::kUnsupervised));
}

}  // namespace
}  // namespace herd::agents

// Nodes of a shared registry (registry/nodes.h, PgRegistry's node
// operations): the placement rule on its own, then against a real server
// (registry/pg_testing_for_test.h): registration and leases on the
// server's clock, placement under every limit from many processes at once,
// an expired lease marking its agents lost exactly once, and a node that
// comes back never resurrecting them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <set>
#include <thread>
#include <vector>

#include "registry/ids.h"
#include "registry/nodes.h"
#include "registry/pg_registry.h"
#include "registry/pg_testing_for_test.h"

namespace herd::registry {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

NodeView Node(const std::string& name, int capacity, int running,
              std::vector<std::string> labels = {}) {
  NodeView node;
  node.spec = {name, "host-" + name, capacity, std::move(labels)};
  node.state = "up";
  node.incarnation = 1;
  node.lease_remaining_ms = 10000;
  node.running = running;
  return node;
}

std::string Chosen(const std::vector<NodeView>& nodes, const PlacementRequest& request) {
  Result<const NodeView*> chosen = ChoosePlacement(nodes, request);
  return chosen.ok() ? (*chosen)->spec.name : "refused: " + chosen.status().message();
}

TEST(PlacementTest, TheLeastLoadedNodeWithRoomAndTheLabelsIsChosen) {
  // By share of capacity used, then by agents running, then by name.
  EXPECT_EQ(Chosen({Node("a", 4, 2), Node("b", 8, 3)}, {}), "b");  // 3/8 < 2/4
  EXPECT_EQ(Chosen({Node("a", 4, 1), Node("b", 8, 2)}, {}), "a");  // same share, fewer running
  EXPECT_EQ(Chosen({Node("b", 2, 0), Node("a", 2, 0)}, {}), "a");
  EXPECT_EQ(Chosen({Node("a", 1, 1), Node("b", 9, 8)}, {}), "b");  // a is full
  EXPECT_EQ(Chosen({Node("a", 4, 0), Node("b", 4, 3, {"gpu", "linux"})}, {"", {"gpu"}}), "b");
  EXPECT_EQ(Chosen({Node("a", 4, 0), Node("b", 4, 3)}, {"b", {}}), "b");
}

TEST(PlacementTest, ARefusalSaysWhyEachNodeCannotTakeTheAgent) {
  NodeView expired = Node("c", 4, 0);
  expired.lease_remaining_ms = -5;
  NodeView left = Node("d", 4, 0);
  left.state = "left";
  std::string refused =
      Chosen({Node("a", 2, 2), Node("b", 4, 0, {"linux"}), expired, left}, {"", {"gpu"}});
  EXPECT_THAT(refused, HasSubstr("no node can take the agent with labels gpu"));
  EXPECT_THAT(refused, HasSubstr("a (labels none)"));
  EXPECT_THAT(refused, HasSubstr("b (labels linux)"));
  EXPECT_THAT(refused, HasSubstr("c (lease expired)"));
  EXPECT_THAT(refused, Not(HasSubstr("d (")));  // a node that left is not a candidate
  EXPECT_THAT(Chosen({Node("a", 2, 2)}, {}), HasSubstr("a (2 of 2 running)"));
  EXPECT_THAT(Chosen({left}, {}), HasSubstr("no herd node is running: start `herd node`"));
  EXPECT_THAT(Chosen({}, {}), HasSubstr("no herd node is running"));
  EXPECT_THAT(Chosen({Node("a", 2, 2)}, {"a", {}}),
              HasSubstr("node a cannot take the agent (2 of 2 running)"));
  EXPECT_THAT(Chosen({Node("a", 2, 0)}, {"z", {}}), HasSubstr("there is no node z"));
}

TEST(PlacementTest, NodeSpecsAreChecked) {
  EXPECT_TRUE(ValidateNodeSpec({"node-1.example", "h", 1, {"gpu", "x86_64"}}).ok());
  EXPECT_FALSE(ValidateNodeSpec({"", "h", 1, {}}).ok());
  EXPECT_FALSE(ValidateNodeSpec({"-a", "h", 1, {}}).ok());
  EXPECT_FALSE(ValidateNodeSpec({"a b", "h", 1, {}}).ok());
  EXPECT_FALSE(ValidateNodeSpec({std::string(64, 'a'), "h", 1, {}}).ok());
  EXPECT_FALSE(ValidateNodeSpec({"a", "h", 0, {}}).ok());
  EXPECT_FALSE(ValidateNodeSpec({"a", "h", 1, {"has space"}}).ok());
}

class PgNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!database_.available()) {
      GTEST_SKIP() << "no PostgreSQL server: run under ctest (the PgServer fixture)";
    }
    registry_ = Open();
    ASSERT_NE(registry_, nullptr);
  }

  std::unique_ptr<PgRegistry> Open() {
    Result<std::unique_ptr<PgRegistry>> opened =
        PgRegistry::Open(database_.options(), "/tmp/herd-pg-test");
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  NodeLease Register(const std::string& name, int capacity, std::vector<std::string> labels = {},
                     const std::string& hostname = "this-host") {
    Result<PgRegistry::NodeRegistration> registered =
        registry_->RegisterNode({name, hostname, capacity, std::move(labels)}, kLease);
    EXPECT_TRUE(registered.ok()) << registered.status().ToString();
    return registered.ok() ? registered->lease : NodeLease{};
  }

  std::string CreateTask(int max_concurrent = 20, int max_agents = 200) {
    std::string task_id = NewTaskId();
    TaskSpec spec;
    spec.description = "a task spread over nodes";
    spec.limits = {max_agents, max_concurrent, 5};
    Result<TaskSnapshot> created = registry_->CreateTask(task_id, spec);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return task_id;
  }

  static AdmissionRequest Placed(const std::string& agent_id, PlacementRequest placement = {}) {
    AdmissionRequest request;
    request.agent_id = agent_id;
    request.type = "worker";
    request.prompt = "work";
    request.backend = "command";
    request.placement = std::move(placement);
    return request;
  }

  // The lease runs out now, as if its daemon had stopped renewing it.
  void EndLeaseOf(const std::string& name) {
    Result<std::unique_ptr<pg::Connection>> c = pg::Connection::Open(database_.options());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE((*c)->Exec("UPDATE herd_nodes SET lease_expires_at = clock_timestamp() - "
                           "interval '1 second' WHERE node_id = $1",
                           {name})
                    .ok());
  }

  std::map<std::string, NodeView> Nodes() {
    std::map<std::string, NodeView> by_name;
    Result<std::vector<NodeView>> nodes = registry_->ListNodes();
    EXPECT_TRUE(nodes.ok()) << nodes.status().ToString();
    if (nodes.ok()) {
      for (const NodeView& node : *nodes) by_name[node.spec.name] = node;
    }
    return by_name;
  }

  const AgentRecord& AgentOf(const std::string& task_id, const std::string& agent_id) {
    task_ = *registry_->ReadTask(task_id);
    const AgentRecord* agent = task_->task.FindAgent(agent_id);
    EXPECT_NE(agent, nullptr) << agent_id;
    return *agent;
  }

  static constexpr milliseconds kLease{60000};
  pg_test::TestDatabase database_;
  std::unique_ptr<PgRegistry> registry_;
  SharedTask task_;
};

TEST_F(PgNodesTest, ANodeRegistersAndRenewsItsLeaseOnTheServersClock) {
  NodeLease lease = Register("alpha", 3, {"gpu"});
  EXPECT_EQ(lease.incarnation, 1);
  EXPECT_FALSE(lease.expires_at.empty());
  NodeView alpha = Nodes()["alpha"];
  EXPECT_EQ(alpha.state, "up");
  EXPECT_EQ(alpha.spec.capacity, 3);
  EXPECT_EQ(alpha.spec.labels, std::vector<std::string>{"gpu"});
  EXPECT_EQ(alpha.spec.hostname, "this-host");
  EXPECT_TRUE(alpha.leased());
  EXPECT_LE(alpha.lease_remaining_ms, kLease.count());

  Result<NodeLease> renewed = registry_->RenewNodeLease("alpha", 1, kLease);
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  EXPECT_GE(renewed->expires_at, lease.expires_at);
  Result<NodeLease> stale = registry_->RenewNodeLease("alpha", 7, kLease);
  EXPECT_TRUE(stale.status().Is(Status::Code::kRefused)) << stale.status().ToString();
  EXPECT_THAT(stale.status().message(), HasSubstr("register the node again"));

  // Another machine cannot take a name whose lease holds; this one can
  // register again, as a new incarnation.
  Result<PgRegistry::NodeRegistration> elsewhere =
      registry_->RegisterNode({"alpha", "other-host", 3, {}}, kLease);
  EXPECT_TRUE(elsewhere.status().Is(Status::Code::kRefused)) << elsewhere.status().ToString();
  EXPECT_THAT(elsewhere.status().message(), HasSubstr("is up on this-host"));
  EXPECT_EQ(Register("alpha", 5).incarnation, 2);
  EXPECT_EQ(Nodes()["alpha"].spec.capacity, 5);
  EXPECT_FALSE(registry_->RenewNodeLease("alpha", 1, kLease).ok()) << "the old incarnation";

  EXPECT_FALSE(registry_->RegisterNode({"bad name", "h", 1, {}}, kLease).ok());
}

TEST_F(PgNodesTest, PlacementFillsTheLeastLoadedNodeWithinItsCapacityAndLabels) {
  Register("a", 1);
  NodeLease b = Register("b", 2, {"gpu"});
  std::string task_id = CreateTask();
  std::vector<std::string> placed;
  for (int i = 0; i < 3; ++i) {
    Result<AgentRecord> agent = registry_->Admit(task_id, Placed("w-" + std::to_string(i)), 0);
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    ASSERT_TRUE(agent->node.has_value());
    placed.push_back(agent->node->name);
  }
  EXPECT_EQ(placed, (std::vector<std::string>{"a", "b", "b"}));
  const AgentRecord& stored = AgentOf(task_id, "w-1");
  ASSERT_TRUE(stored.node.has_value()) << "the placement is committed with the agent";
  EXPECT_EQ(stored.node->name, "b");
  EXPECT_EQ(stored.node->incarnation, b.incarnation);

  Result<AgentRecord> full = registry_->Admit(task_id, Placed("w-3"), 0);
  EXPECT_TRUE(full.status().Is(Status::Code::kRefused)) << full.status().ToString();
  EXPECT_THAT(full.status().message(), HasSubstr("a (1 of 1 running), b (2 of 2 running)"));
  EXPECT_EQ((*registry_->ReadTask(task_id))->task.agents.size(), 3u) << "a refusal adds nothing";

  // An agent that ends frees its node's slot.
  ExitRecord exit;
  exit.exit_code = 0;
  ASSERT_TRUE(registry_->RecordEnd(task_id, "w-0", exit, std::nullopt, 1000).ok());
  Result<AgentRecord> named = registry_->Admit(task_id, Placed("w-4", {"a", {}}), 0);
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_EQ(named->node->name, "a");
  Result<AgentRecord> gpu = registry_->Admit(task_id, Placed("w-5", {"", {"gpu"}}), 0);
  EXPECT_THAT(gpu.status().message(), HasSubstr("b (2 of 2 running)"));
  EXPECT_EQ(Nodes()["b"].running, 2);
}

// 8 processes admit 5 agents each, alternately into `first` and
// `second`, placed on any node, under the cluster cap `cap`.
int AdmitFromProcesses(const pg::ConnectOptions& options, const std::string& first,
                       const std::string& second, int cap) {
  return pg_test::AdmitFromProcesses(options, 8, 5, cap, [&](int p, int i) {
    AdmissionRequest request;
    request.agent_id = "w-" + std::to_string(p) + "-" + std::to_string(i);
    request.type = "worker";
    request.backend = "command";
    request.placement = PlacementRequest{};
    return std::pair{(p + i) % 2 ? first : second, request};
  });
}

TEST_F(PgNodesTest, FortyConcurrentPlacementsRespectEveryLimitExactly) {
  struct Case {
    int per_task, cap, node_capacity, expected;
    const char* binds;
  };
  for (Case c : {Case{10, 14, 6, 14, "the cluster cap"}, Case{10, 0, 3, 9, "the nodes' capacity"},
                 Case{4, 0, 6, 8, "max_concurrent"}}) {
    SCOPED_TRACE(c.binds);
    for (const char* name : {"n1", "n2", "n3"}) Register(name, c.node_capacity);
    std::string first = CreateTask(c.per_task), second = CreateTask(c.per_task);
    EXPECT_EQ(AdmitFromProcesses(database_.options(), first, second, c.cap), c.expected);
    int active = 0;
    for (const std::string& task_id : {first, second}) {
      SharedTask task = *registry_->ReadTask(task_id);
      EXPECT_LE(task->task.active_count, c.per_task);
      EXPECT_EQ(task->task.total_spawned, static_cast<int>(task->task.agents.size()));
      active += task->task.active_count;
    }
    EXPECT_EQ(active, c.expected);
    for (const auto& [name, node] : Nodes()) EXPECT_LE(node.running, c.node_capacity) << name;
    // Next case: the agents end, so only its own count.
    for (const std::string& task_id : {first, second}) {
      ASSERT_TRUE(registry_->StopTask(task_id, "next case", 1000).ok());
    }
  }
}

TEST_F(PgNodesTest, AnExpiredLeaseMarksTheNodesAgentsLostOnceAndTheyStayLost) {
  NodeLease a = Register("a", 5);
  Register("b", 5);
  std::string first = CreateTask(), second = CreateTask();
  for (const auto& [task_id, agent_id] : std::vector<std::pair<std::string, std::string>>{
           {first, "on-a-1"}, {first, "on-a-2"}, {second, "on-a-3"}}) {
    ASSERT_TRUE(registry_->Admit(task_id, Placed(agent_id, {"a", {}}), 0).ok());
  }
  ASSERT_TRUE(registry_->Admit(first, Placed("on-b", {"b", {}}), 0).ok());
  ProcessIdentity process{4242, 1}, supervisor{4241, 1};
  ASSERT_TRUE(registry_->RecordStart(first, "on-a-1", process, supervisor).ok());

  Result<std::vector<PgRegistry::LostAgent>> none = registry_->ExpireNodeLeases();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty()) << "every lease holds";

  EndLeaseOf("a");
  // Every node's daemon expires leases; several at once mark each agent once.
  std::vector<std::thread> expirers;
  std::vector<size_t> marked(4, 0);
  for (size_t i = 0; i < marked.size(); ++i) {
    expirers.emplace_back([&, i] {
      std::unique_ptr<PgRegistry> mine = Open();
      Result<std::vector<PgRegistry::LostAgent>> lost = mine->ExpireNodeLeases();
      EXPECT_TRUE(lost.ok()) << lost.status().ToString();
      if (lost.ok()) marked[i] = lost->size();
    });
  }
  for (std::thread& expirer : expirers) expirer.join();
  EXPECT_EQ(marked[0] + marked[1] + marked[2] + marked[3], 3u);

  for (const auto& [task_id, agent_id] : std::vector<std::pair<std::string, std::string>>{
           {first, "on-a-1"}, {first, "on-a-2"}, {second, "on-a-3"}}) {
    const AgentRecord& agent = AgentOf(task_id, agent_id);
    EXPECT_EQ(agent.status, "error") << agent_id;
    EXPECT_EQ(agent.error, std::optional<std::string>(kNodeLostReason));
    EXPECT_THAT(agent.lost_detail.value_or(""), HasSubstr("its node a (incarnation 1) stopped "
                                                          "renewing its lease"));
  }
  EXPECT_EQ(AgentOf(first, "on-b").status, "running") << "another node's agent is untouched";
  EXPECT_EQ((*registry_->ReadTask(first))->task.active_count, 1);
  EXPECT_EQ((*registry_->ReadTask(second))->task.active_count, 0);
  NodeView expired = Nodes()["a"];
  EXPECT_EQ(expired.state, "expired");
  EXPECT_GT(expired.incarnation, a.incarnation);
  EXPECT_EQ(expired.running, 0);

  // The node's daemon cannot renew: it must stop its agents and register.
  EXPECT_TRUE(
      registry_->RenewNodeLease("a", a.incarnation, kLease).status().Is(Status::Code::kRefused));
  // Its supervisor's late exit record keeps the agent lost.
  ExitRecord exit;
  exit.exit_code = 0;
  ASSERT_TRUE(registry_->RecordEnd(first, "on-a-1", exit, std::nullopt, 1000).ok());
  EXPECT_EQ(AgentOf(first, "on-a-1").status, "error");
  // Back as a new incarnation: its agents stay lost, and it takes new ones.
  NodeLease back = Register("a", 5);
  EXPECT_EQ(back.incarnation, expired.incarnation + 1);
  EXPECT_EQ(AgentOf(first, "on-a-2").status, "error");
  EXPECT_EQ(Nodes()["a"].running, 0);
  Result<AgentRecord> fresh = registry_->Admit(second, Placed("on-a-new", {"a", {}}), 0);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ(fresh->node->incarnation, back.incarnation);
}

TEST_F(PgNodesTest, RegisteringAgainLosesTheEarlierIncarnationsAgentsOnly) {
  Register("a", 5);
  std::string task_id = CreateTask();
  ASSERT_TRUE(registry_->Admit(task_id, Placed("old", {"a", {}}), 0).ok());
  Result<PgRegistry::NodeRegistration> again =
      registry_->RegisterNode({"a", "this-host", 5, {}}, kLease);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_EQ(again->lost.size(), 1u);
  EXPECT_EQ(again->lost[0].agent.id, "old");
  EXPECT_THAT(AgentOf(task_id, "old").lost_detail.value_or(""),
              HasSubstr("registered again (incarnation 2)"));
  ASSERT_TRUE(registry_->Admit(task_id, Placed("new", {"a", {}}), 0).ok());
  Result<PgRegistry::NodeRegistration> third =
      registry_->RegisterNode({"a", "this-host", 5, {}}, kLease);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->lost.size(), 1u) << "only the agent of incarnation 2 is left to lose";
}

TEST_F(PgNodesTest, ANodeThatLeavesLosesWhatStillRunsAndTakesNoMoreAgents) {
  NodeLease a = Register("a", 2);
  std::string task_id = CreateTask();
  ASSERT_TRUE(registry_->Admit(task_id, Placed("w", {"a", {}}), 0).ok());
  Result<std::vector<PgRegistry::LostAgent>> left = registry_->LeaveNode("a", a.incarnation);
  ASSERT_TRUE(left.ok()) << left.status().ToString();
  EXPECT_EQ(left->size(), 1u);
  EXPECT_EQ(Nodes()["a"].state, "left");
  Result<std::vector<PgRegistry::LostAgent>> twice = registry_->LeaveNode("a", a.incarnation);
  ASSERT_TRUE(twice.ok());
  EXPECT_TRUE(twice->empty());
  Result<AgentRecord> refused = registry_->Admit(task_id, Placed("w2"), 0);
  EXPECT_THAT(refused.status().message(), HasSubstr("no herd node is running"));
}

TEST_F(PgNodesTest, AFollowUpTurnRunsOnlyOnTheAgentsNodeWhileItIsUpWithRoom) {
  NodeLease a = Register("a", 1);
  std::string task_id = CreateTask();
  ASSERT_TRUE(registry_->Admit(task_id, Placed("w", {"a", {}}), 0).ok());
  ASSERT_TRUE(registry_->RecordStart(task_id, "w", {4242, 1}, {4241, 1}).ok());
  ExitRecord exit;
  exit.exit_code = 0;
  ASSERT_TRUE(registry_->RecordEnd(task_id, "w", exit, std::nullopt, 1000).ok());
  // Another agent takes the node's one slot: no room for the turn.
  ASSERT_TRUE(registry_->Admit(task_id, Placed("other", {"a", {}}), 0).ok());
  AgentMessage message;
  message.id = "msg-1";
  message.text_file = "/tmp/herd-pg-test/message.txt";
  message.preview = "go on";
  Result<MessageOutcome> no_room = registry_->SendMessage(task_id, "w", message, 0, {});
  EXPECT_TRUE(no_room.status().Is(Status::Code::kRefused)) << no_room.status().ToString();
  EXPECT_THAT(no_room.status().message(), HasSubstr("node a has no room"));
  ASSERT_TRUE(registry_->Release(task_id, "other").ok());
  Result<MessageOutcome> turn = registry_->SendMessage(task_id, "w", message, 0, {});
  ASSERT_TRUE(turn.ok()) << turn.status().ToString();
  EXPECT_EQ(turn->delivery, MessageOutcome::Delivery::kNewTurn);
  ASSERT_TRUE(registry_->RecordEnd(task_id, "w", exit, std::nullopt, 1000).ok());
  // Once the node has registered again, the conversation cannot go on there.
  Register("a", 1);
  EXPECT_GT(Nodes()["a"].incarnation, a.incarnation);
  Result<MessageOutcome> gone = registry_->SendMessage(task_id, "w", message, 0, {});
  EXPECT_THAT(gone.status().message(), HasSubstr("has registered again since"));
}

}  // namespace
}  // namespace herd::registry

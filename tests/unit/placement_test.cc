// Placement: its rules (workflow/placement_rule.h), each transition of a
// placed copy's state (workflow/placement.h), and the daemon converging
// on real directory stores and a real SQLite catalog.
#include "workflow/placement.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/unit/workflow_fixture.h"
#include "workflow/placement_rule.h"

namespace imagefs {
namespace {

const std::vector<std::string> kStores{"central", "dcn0", "dcn1"};
constexpr int64_t kSecond = 1'000'000'000;
constexpr std::chrono::milliseconds kFirstRetry{10000};

PlacementRule Parse(std::string_view text) {
  auto rule = ParsePlacement(text, kStores);
  EXPECT_TRUE(rule.ok()) << text;
  return rule.ok() ? *rule : PlacementRule{};
}

TEST(PlacementRuleTest, ParsesEachFormAndFormatsItBack) {
  for (std::string_view text :
       {"", "all", "all,-dcn1", "all,-dcn0,-dcn1", "central,dcn0", "dcn1"}) {
    EXPECT_EQ(Parse(text).Format(), text);
  }
  EXPECT_EQ(Parse(" all , -dcn1 ").Format(), "all,-dcn1");
  EXPECT_EQ(Parse("dcn0,dcn0").Format(), "dcn0");
}

TEST(PlacementRuleTest, RefusesWhatIsNotARule) {
  for (std::string_view text : {"all,dcn0", "dcn0,all", "-dcn0", "dcn0,-dcn1", "all,all", "dcn9",
                                "all,-dcn9", "a b", "-"}) {
    auto rule = ParsePlacement(text, kStores);
    ASSERT_FALSE(rule.ok()) << text;
    EXPECT_EQ(rule.code(), EINVAL) << text;
  }
  // Without the configured stores (a rule another site's mount set),
  // any store name.
  EXPECT_TRUE(ParsePlacement("dcn9").ok());
}

TEST(PlacementRuleTest, PlacesCentralAlwaysAndTheStoresItNames) {
  EXPECT_EQ(Parse("").Stores(kStores, "central"), std::vector<std::string>{"central"});
  EXPECT_EQ(Parse("all").Stores(kStores, "central"), kStores);
  EXPECT_EQ(Parse("all,-dcn0").Stores(kStores, "central"),
            (std::vector<std::string>{"central", "dcn1"}));
  EXPECT_EQ(Parse("dcn1").Stores(kStores, "central"),
            (std::vector<std::string>{"central", "dcn1"}));
  // A store added to the configuration is in "all"; one gone is in none.
  EXPECT_EQ(Parse("all").Stores({"central", "dcn0", "dcn1", "dcn2"}, "central").size(), 4u);
  EXPECT_EQ(ParsePlacement("dcn9")->Stores(kStores, "central"),
            std::vector<std::string>{"central"});
}

TEST(PlacementRuleTest, WithoutTakesAStoreOut) {
  EXPECT_EQ(Parse("all").Without("dcn0").Format(), "all,-dcn0");
  EXPECT_EQ(Parse("all,-dcn0").Without("dcn0").Format(), "all,-dcn0");
  EXPECT_EQ(Parse("dcn0,dcn1").Without("dcn0").Format(), "dcn1");
}

TEST(PlacementRuleTest, RmTakesAPlacedStoreOutOfTheRecordsRule) {
  ImageRecord record;
  record.id = kId;
  PlacementRule all = Parse("all");
  EXPECT_FALSE(TakeOutOfPlacement(record, "central", "central", all));
  EXPECT_TRUE(record.properties.empty());
  EXPECT_TRUE(TakeOutOfPlacement(record, "dcn0", "central", all));
  EXPECT_EQ(record.properties.at(std::string(kPlacementProperty)), "all,-dcn0");
  EXPECT_FALSE(TakeOutOfPlacement(record, "dcn0", "central", all));  // not placed there now
  // Its own rule beats the default.
  EXPECT_EQ(PlacementOf(record, PlacementRule{}).Format(), "all,-dcn0");
  record.properties[std::string(kPlacementProperty)] = "not a rule";
  EXPECT_EQ(PlacementOf(record, all).Format(), "");
}

// One test per transition of the table in workflow/placement.h.
PlacedCopy In(PlacedState state) {
  PlacedCopy copy;
  switch (state) {
    case PlacedState::kConverged:
      copy.Held(kSecond);
      break;
    case PlacedState::kCopying:
      copy.Started(kSecond);
      break;
    case PlacedState::kWaiting:
      copy.Waits(kSecond, "why");
      break;
    case PlacedState::kFailed:
      copy.Failed(kSecond, "broken", kFirstRetry);
      break;
  }
  EXPECT_EQ(copy.state, state);
  return copy;
}

TEST(PlacedCopyTest, HeldIsConvergedFromEveryState) {
  for (auto from : {PlacedState::kCopying, PlacedState::kWaiting, PlacedState::kFailed}) {
    PlacedCopy copy = In(from);
    copy.Held(2 * kSecond);
    EXPECT_EQ(copy.state, PlacedState::kConverged);
    EXPECT_EQ(copy.failures, 0);
    EXPECT_FALSE(copy.Due(100 * kSecond));
  }
}

TEST(PlacedCopyTest, StartedIsCopying) {
  for (auto from : {PlacedState::kConverged, PlacedState::kWaiting, PlacedState::kFailed}) {
    PlacedCopy copy = In(from);
    copy.Started(2 * kSecond);
    EXPECT_EQ(copy.state, PlacedState::kCopying);
    EXPECT_EQ(copy.since, 2 * kSecond);
    EXPECT_FALSE(copy.Due(100 * kSecond));
  }
}

TEST(PlacedCopyTest, WaitsKeepsWhenItFirstWaited) {
  PlacedCopy copy = In(PlacedState::kWaiting);
  copy.Waits(5 * kSecond, "still");
  EXPECT_EQ(copy.since, kSecond);
  EXPECT_EQ(copy.why, "still");
  EXPECT_TRUE(copy.Due(5 * kSecond));
  for (auto from : {PlacedState::kConverged, PlacedState::kCopying, PlacedState::kFailed}) {
    PlacedCopy other = In(from);
    other.Waits(3 * kSecond, "why");
    EXPECT_EQ(other.state, PlacedState::kWaiting);
    EXPECT_EQ(other.since, 3 * kSecond);
  }
}

TEST(PlacedCopyTest, FailedBacksOffDoublingUpToTheLongest) {
  PlacedCopy copy = In(PlacedState::kCopying);
  copy.Failed(0, "one", kFirstRetry);
  EXPECT_EQ(copy.state, PlacedState::kFailed);
  EXPECT_EQ(copy.next_try, 10 * kSecond);
  EXPECT_FALSE(copy.Due(9 * kSecond));
  EXPECT_TRUE(copy.Due(10 * kSecond));
  copy.Started(10 * kSecond);
  copy.Failed(10 * kSecond, "two", kFirstRetry);
  EXPECT_EQ(copy.next_try, 30 * kSecond);
  for (int i = 0; i < 10; ++i) copy.Failed(0, "again", kFirstRetry);
  EXPECT_EQ(copy.failures, 12);
  EXPECT_EQ(copy.next_try, 300 * kSecond);
  PlacedCopy waiting = In(PlacedState::kWaiting);
  waiting.Failed(0, "refused", kFirstRetry);
  EXPECT_EQ(waiting.state, PlacedState::kFailed);
  EXPECT_EQ(waiting.why, "refused");
}

TEST(PlacedCopyTest, FailedLeavesAConvergedCopyAlone) {
  PlacedCopy copy = In(PlacedState::kConverged);
  copy.Failed(2 * kSecond, "late", kFirstRetry);
  EXPECT_EQ(copy.state, PlacedState::kConverged);
}

TEST(PlacedCopyTest, AnsweredMakesAFailedCopyDueAtOnce) {
  PlacedCopy copy = In(PlacedState::kFailed);
  EXPECT_FALSE(copy.Due(2 * kSecond));
  copy.Answered(2 * kSecond);
  EXPECT_EQ(copy.state, PlacedState::kFailed);
  EXPECT_TRUE(copy.Due(2 * kSecond));
  for (auto from : {PlacedState::kConverged, PlacedState::kCopying, PlacedState::kWaiting}) {
    PlacedCopy other = In(from);
    PlacedCopy before = other;
    other.Answered(2 * kSecond);
    EXPECT_EQ(other.state, before.state);
    EXPECT_EQ(other.next_try, before.next_try);
  }
}

// The daemon: placement against the fixture's service.
class PlacementTest : public WorkflowTest {
 protected:
  PlacementTest() { recover_at_start_ = true; }
  void SetUp() override {}

  // Polls up to 10 s for the image's stores to be `stores`.
  bool WaitForStores(const std::vector<std::string>& stores) {
    for (int i = 0; i < 200; ++i) {
      if (Record().StoreIds() == stores) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "stores: " << fmt::format("{}", fmt::join(Record().StoreIds(), ","));
    return false;
  }
  nlohmann::json State() { return nlohmann::json::parse(service_->PlacementStateOf(Record())); }
};

TEST_F(PlacementTest, AllCopiesAnActiveImageToEveryStore) {
  placement_ = "all";
  Start(0);
  std::string data = RandomData(1 << 20);
  CreateActiveImage(data);
  ASSERT_TRUE(WaitForStores(kStores));
  EXPECT_EQ(ReadCopy("dcn1"), data);
  for (const auto& store : kStores) EXPECT_EQ(State()[store]["state"], "converged") << store;
  EXPECT_EQ(service_->PlacementOf(Record()), "all");
}

// What kill -9 during rmdir leaves: central's location unpublished, its
// data still there, the delete's lease held. While the lease is held
// (here by another daemon, so recovery cannot repair it) placement makes
// no copy of an image central lacks; then recovery removes the data and
// the record is queued.
TEST_F(PlacementTest, LeavesADeleteStoppedHalfwayToRecovery) {
  Start(0);
  CreateActiveImage(RandomData(1 << 20));
  service_.reset();
  auto other = OtherCatalog();
  ASSERT_TRUE(other
                  ->Update(kId,
                           [](ImageRecord& record) -> Status {
                             record.locations.clear();
                             return Ok();
                           })
                  .ok());
  ASSERT_TRUE(other
                  ->AcquireLease({kId, "other-daemon/run/1", "delete image by uid 0",
                                  NowNanos() + 60'000'000'000})
                  .ok());
  placement_ = "all";
  Start(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // two rounds and more
  EXPECT_EQ(Record().status, ImageStatus::kActive);
  for (const char* site : {"dcn0", "dcn1"}) {
    EXPECT_FALSE(StoreHas(site)) << site;
    EXPECT_FALSE(StoreHasTemporaries(site)) << site;
    EXPECT_EQ(State()[site]["why"], "no copy in central to copy from") << State().dump();
  }
  ASSERT_TRUE(other->ReleaseLease(kId, "other-daemon/run/1").ok());
  for (int i = 0; i < 400 && StoreHas("central"); ++i) {  // the sweeper: every 5 s
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_FALSE(StoreHas("central"));
  EXPECT_EQ(Record().status, ImageStatus::kQueued);
}

TEST_F(PlacementTest, NoRuleCopiesNothing) {
  Start(0);
  CreateActiveImage(RandomData(1 << 20));
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // two rounds and more
  EXPECT_EQ(Record().StoreIds(), std::vector<std::string>{"central"});
  EXPECT_EQ(State().size(), 1u);
}

TEST_F(PlacementTest, AnImagesOwnRuleIsCheckedAndFollowed) {
  Start(0);
  CreateActiveImage(RandomData(1 << 20));
  Status refused = service_->SetProperty(kOwner, kId, kPlacementProperty, "dcn9");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), EINVAL);
  ASSERT_TRUE(service_->SetProperty(kOwner, kId, kPlacementProperty, "dcn1").ok());
  ASSERT_TRUE(WaitForStores({"central", "dcn1"}));
}

TEST_F(PlacementTest, RmOfAPlacedCopyIsNotUndone) {
  placement_ = "all";
  Start(0);
  CreateActiveImage(RandomData(1 << 20));
  ASSERT_TRUE(WaitForStores(kStores));
  // The placement copy holds the image's lease until just after it
  // published: EBUSY until then.
  Status deleted = Fail(EBUSY, "not tried");
  for (int i = 0; i < 250 && deleted.code() == EBUSY; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    deleted = Wait([&](auto done) { service_->DeleteCopy(kOwner, kId, "dcn0", done); });
  }
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_EQ(Record().properties.at(std::string(kPlacementProperty)), "all,-dcn0");
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(Record().StoreIds(), (std::vector<std::string>{"central", "dcn1"}));
  EXPECT_FALSE(State().contains("dcn0"));
}

TEST_F(PlacementTest, AFailedCopyIsTriedAgainAfterItsBackOff) {
  Start(0);
  CreateActiveImage(RandomData(1 << 20));
  FaultPlan failing;
  failing.fail_write_number = faults_["dcn0"]->writes_seen() + 1;
  failing.write_errno = ENOSPC;
  faults_["dcn0"]->SetPlan(failing);
  ASSERT_TRUE(service_->SetProperty(kOwner, kId, kPlacementProperty, "dcn0").ok());
  for (int i = 0; i < 200 && State()["dcn0"]["state"] != "failed"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  nlohmann::json state = State()["dcn0"];
  ASSERT_EQ(state["state"], "failed") << state.dump();
  EXPECT_NE(state["why"].get<std::string>().find("injected failure"), std::string::npos)
      << state.dump();
  EXPECT_TRUE(state.contains("next_try"));
  faults_["dcn0"]->SetPlan({});
  ASSERT_TRUE(WaitForStores({"central", "dcn0"}));
  EXPECT_EQ(State()["dcn0"]["state"], "converged");
}

TEST_F(PlacementTest, AStoreNotAnsweringIsWaitedForAndCopiedToOnceItAnswers) {
  StartWithOutages(std::chrono::seconds(1), 24);  // the copy gives up after 1 s; 6 units
  faults_["dcn0"]->SetPlan({.cut_after_write = 2});
  ASSERT_TRUE(service_->SetProperty(kOwner, kId, kPlacementProperty, "dcn0").ok());
  // Failed, its store marked down; then (the store still cut) waiting for it.
  std::string seen;
  for (int i = 0; i < 400; ++i) {
    nlohmann::json state = State()["dcn0"];
    if (state["state"] == "waiting" &&
        state.value("why", "").find("does not answer") != std::string::npos) {
      seen = state.dump();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_FALSE(seen.empty()) << State().dump();
  faults_["dcn0"]->SetPlan({});
  ASSERT_TRUE(WaitForStores({"central", "dcn0"}));
}

// A store down when a placement copy begins: the copy fails at once (the
// import does not wait outage_timeout for it), the store is probed, and
// the copy is made once it answers.
TEST_F(PlacementTest, AStoreDownWhenItsCopyBeginsIsProbedNotWaitedIn) {
  StartWithOutages(std::chrono::seconds(30), 8);
  faults_["dcn0"]->SetPlan({.down = true});
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(service_->SetProperty(kOwner, kId, kPlacementProperty, "dcn0").ok());
  std::string seen;
  for (int i = 0; i < 400 && seen.empty(); ++i) {
    nlohmann::json state = State()["dcn0"];
    if (state["state"] == "waiting" &&
        state.value("why", "").find("does not answer") != std::string::npos) {
      seen = state.dump();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  ASSERT_FALSE(seen.empty()) << State().dump();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  faults_["dcn0"]->SetPlan({});
  ASSERT_TRUE(WaitForStores({"central", "dcn0"}));
}

}  // namespace
}  // namespace imagefs

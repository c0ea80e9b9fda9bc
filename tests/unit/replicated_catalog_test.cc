// The replicated catalog (catalog/catalog.h, OpenReplicatedCatalog) over a
// fake shared catalog whose "central" can be cut off: what a mount serves
// and refuses while central does not answer, how it starts from its replica
// during an outage, and how it goes live and catches up by itself. The real
// thing, on real clusters, is tests/mount/central_unreachable.sh.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "catalog/catalog.h"
#include "common/mutex.h"
#include "tests/unit/temporary_directory.h"

namespace imagefs {
namespace {

constexpr char kA[] = "00000000-0000-4000-8000-00000000000a";
constexpr char kB[] = "00000000-0000-4000-8000-00000000000b";
constexpr char kC[] = "00000000-0000-4000-8000-00000000000c";

ImageRecord Record(const std::string& id) {
  ImageRecord record;
  record.id = id;
  record.owner = 1000;
  return record;
}

// Central: records and leases in an SQLite catalog, the change log in
// memory. While `down`, every call through a handle fails as librados's do
// after their op timeout, and counts itself in `calls_while_down`.
struct Central {
  explicit Central(const std::string& directory)
      : records(std::move(OpenSqliteCatalog(directory + "/central.db")).value()) {}

  Status Reachable() {
    if (!down) return Ok();
    ++calls_while_down;
    return Fail(ETIMEDOUT, "central: operation timed out");
  }
  void Logged(const std::string& id) {
    MutexLock lock(&mutex);
    log.push_back(id);
  }

  std::unique_ptr<Catalog> records;
  std::atomic<bool> down{false};
  // Like Glance's listing of changed images: removals are not in the log.
  std::atomic<bool> log_omits_removals{false};
  std::atomic<int> calls_while_down{0};
  std::atomic<int> gets{0};     // record reads
  std::atomic<int> lists{0};    // listings
  std::atomic<int> follows{0};  // reads of the change log (ChangesSince)
  Mutex mutex;
  std::string name = "catalog-1";
  std::vector<std::string> log GUARDED_BY(mutex);  // id changed by change n+1
};

// One daemon's handle on central.
class FakeShared final : public SharedCatalog {
 public:
  explicit FakeShared(Central& central) : central_(central) {}

  Status Create(const ImageRecord& record) override {
    IMAGEFS_RETURN_IF_ERROR(central_.Reachable());
    IMAGEFS_RETURN_IF_ERROR(central_.records->Create(record));
    central_.Logged(record.id);
    return Ok();
  }
  Result<ImageRecord> Get(std::string_view id) override {
    IMAGEFS_RETURN_IF_ERROR(central_.Reachable());
    ++central_.gets;
    return central_.records->Get(id);
  }
  Result<std::vector<std::string>> ListIds() override {
    IMAGEFS_RETURN_IF_ERROR(central_.Reachable());
    return central_.records->ListIds();
  }
  Result<std::vector<ListedRecord>> ListRecords() override {
    IMAGEFS_RETURN_IF_ERROR(central_.Reachable());
    ++central_.lists;
    return central_.records->ListRecords();
  }
  Result<ImageRecord> Update(std::string_view id, const Mutation& mutate) override {
    IMAGEFS_RETURN_IF_ERROR(central_.Reachable());
    auto updated = central_.records->Update(id, mutate);
    if (updated.ok()) central_.Logged(std::string(id));
    return updated;
  }
  Status Remove(std::string_view id) override {
    IMAGEFS_RETURN_IF_ERROR(central_.Reachable());
    IMAGEFS_RETURN_IF_ERROR(central_.records->Remove(id));
    if (!central_.log_omits_removals) central_.Logged(std::string(id));
    return Ok();
  }
  Status AcquireLease(const Lease& lease) override {
    IMAGEFS_RETURN_IF_ERROR(central_.Reachable());
    return central_.records->AcquireLease(lease);
  }
  Status RenewLease(std::string_view id, std::string_view holder, int64_t expires) override {
    IMAGEFS_RETURN_IF_ERROR(central_.Reachable());
    return central_.records->RenewLease(id, holder, expires);
  }
  Status ReleaseLease(std::string_view id, std::string_view holder) override {
    IMAGEFS_RETURN_IF_ERROR(central_.Reachable());
    return central_.records->ReleaseLease(id, holder);
  }
  Result<std::optional<Lease>> GetLease(std::string_view id) override {
    IMAGEFS_RETURN_IF_ERROR(central_.Reachable());
    return central_.records->GetLease(id);
  }
  Result<std::vector<Lease>> ListStaleLeases(int64_t now) override {
    IMAGEFS_RETURN_IF_ERROR(central_.Reachable());
    return central_.records->ListStaleLeases(now);
  }

  Result<CatalogChanges> ChangesSince(const CatalogPosition& from) override {
    ++central_.follows;
    IMAGEFS_RETURN_IF_ERROR(central_.Reachable());
    std::vector<std::string> log;
    {
      MutexLock lock(&central_.mutex);
      log = central_.log;
    }
    CatalogChanges changes;
    changes.position = {central_.name, {log.size()}};
    changes.names_every_change = !central_.log_omits_removals;
    if (from.catalog != central_.name || from.seqs.size() != 1 || from.seqs[0] > log.size()) {
      changes.complete = true;
      auto records = central_.records->ListRecords();
      if (!records.ok()) return records.error();
      for (auto& listed : *records) {
        changes.records.emplace_back(listed.id, EncodeRecord(*listed.record));
      }
      return changes;
    }
    for (size_t i = from.seqs[0]; i < log.size(); ++i) {
      auto record = central_.records->Get(log[i]);
      changes.records.emplace_back(
          log[i], record.ok() ? std::optional(EncodeRecord(*record)) : std::nullopt);
    }
    return changes;
  }

 private:
  Central& central_;
};

class ReplicatedCatalogTest : public ::testing::Test {
 protected:
  ReplicatedCatalogTest() : central_(directory_.path()) {}

  // A mount's catalog; the opener fails like a connect timeout while
  // central is down.
  std::unique_ptr<Catalog> Open(std::chrono::milliseconds follow_every = kFollow,
                                std::chrono::milliseconds inspect_for = kInspectFor) {
    auto catalog = OpenReplicatedCatalog(
        [this]() -> Result<std::unique_ptr<SharedCatalog>> {
          ++opens_;
          if (central_.down) return Fail(ETIMEDOUT, "connect: timed out");
          return std::unique_ptr<SharedCatalog>(std::make_unique<FakeShared>(central_));
        },
        {.replica_path = directory_.Join("replica.db"),
         .follow_every = follow_every,
         // Returns once central answered or refused: long enough for the
         // first round under the sanitizers, never waited out when up.
         .first_wait = std::chrono::seconds(5),
         .inspect_for = inspect_for});
    EXPECT_TRUE(catalog.ok()) << catalog.error().message;
    return std::move(catalog).value();
  }

  // Waits (up to 10 s) until `catalog` is live or not, as asked.
  static bool BecomesLive(Catalog& catalog, bool live) {
    for (int i = 0; i < 1000; ++i) {
      if (catalog.Health().live == live) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Waits (up to 10 s) until the replica has image `id`: reads it with
  // central down, then brings central back.
  bool ReplicaHas(Catalog& catalog, const std::string& id) {
    for (int i = 0; i < 100; ++i) {
      central_.down = true;
      bool found = BecomesLive(catalog, false) && catalog.Inspect(id).ok();
      central_.down = false;
      if (found) return true;
      EXPECT_TRUE(BecomesLive(catalog, true));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  static constexpr std::chrono::milliseconds kFollow{20};
  static constexpr std::chrono::milliseconds kInspectFor{0};  // no cache but where tested
  TemporaryDirectory directory_;
  Central central_;
  FakeShared elsewhere_{central_};  // another daemon's handle
  std::atomic<int> opens_{0};
};

// A replica stores its position as text (catalog/catalog.h); what is not
// a list of counts reads as "from nowhere", which reads every record.
TEST(CatalogPositionTest, CountsSurviveAsTextAndBadTextMeansFromNowhere) {
  CatalogPosition position{"c", {3, 0, 7}};
  EXPECT_EQ(position.EncodeSeqs(), "3,0,7");
  EXPECT_EQ(position.Applied(), 10u);
  auto decoded = CatalogPosition::Decode("c", position.EncodeSeqs());
  EXPECT_EQ(decoded.catalog, "c");
  EXPECT_EQ(decoded.seqs, position.seqs);
  EXPECT_EQ(CatalogPosition::Decode("c", "42").seqs, std::vector<uint64_t>{42});
  EXPECT_TRUE(CatalogPosition::Decode("c", "").seqs.empty());
  for (const char* bad : {"3,", ",3", "3,,4", "x", "3;4", "-1", "3 ,4"}) {
    EXPECT_TRUE(CatalogPosition::Decode("c", bad).seqs.empty()) << bad;
  }
}

TEST_F(ReplicatedCatalogTest, LiveCallsGoToCentralAndSeeOtherDaemonsAtOnce) {
  auto catalog = Open();
  EXPECT_TRUE(catalog->Health().live);
  ASSERT_TRUE(catalog->Create(Record(kA)).ok());
  ASSERT_TRUE(elsewhere_.Create(Record(kB)).ok());
  // Not from the replica: what another daemon did is there at once.
  EXPECT_TRUE(catalog->Inspect(kB).ok());
  EXPECT_TRUE(catalog->Get(kB).ok());
  EXPECT_EQ(catalog->Create(Record(kB)).code(), EEXIST);
  auto all = catalog->InspectAll();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
}

// On a thread that must not wait (a FUSE thread), an inspection that
// must ask central fails at once with EWOULDBLOCK, and the caller asks
// again where it may wait; what is cached, or the replica while central
// is away, answers there as anywhere.
TEST_F(ReplicatedCatalogTest, WithoutNetworkWaitsOnlyWhatIsLocalAnswers) {
  auto catalog = Open(kFollow, std::chrono::seconds(60));
  ASSERT_TRUE(catalog->Create(Record(kA)).ok());
  ASSERT_TRUE(elsewhere_.Create(Record(kB)).ok());
  {
    WithoutNetworkWaits here;
    EXPECT_TRUE(WithoutNetworkWaits::Here());
    EXPECT_EQ(catalog->Inspect(kB).code(), EWOULDBLOCK);
    EXPECT_EQ(catalog->InspectAll().code(), EWOULDBLOCK);
  }
  EXPECT_FALSE(WithoutNetworkWaits::Here());
  ASSERT_TRUE(catalog->Inspect(kB).ok());  // now cached
  {
    WithoutNetworkWaits here;
    EXPECT_TRUE(catalog->Inspect(kB).ok());
  }
  ASSERT_TRUE(ReplicaHas(*catalog, kA));
  central_.down = true;
  ASSERT_TRUE(BecomesLive(*catalog, false));
  WithoutNetworkWaits here;
  EXPECT_TRUE(catalog->Inspect(kA).ok());
  EXPECT_TRUE(catalog->InspectAll().ok());
}

TEST_F(ReplicatedCatalogTest, CutOffItAnswersInspectionsFromTheReplicaAndRefusesTheRest) {
  auto catalog = Open();
  ASSERT_TRUE(catalog->Create(Record(kA)).ok());
  ASSERT_TRUE(elsewhere_.Create(Record(kB)).ok());
  ASSERT_TRUE(ReplicaHas(*catalog, kB));
  central_.down = true;
  ASSERT_TRUE(BecomesLive(*catalog, false));
  CatalogHealth health = catalog->Health();
  EXPECT_GT(health.unreachable_since, 0);
  EXPECT_NE(health.reason.find("timed out"), std::string::npos) << health.reason;

  EXPECT_TRUE(catalog->Inspect(kA).ok());
  EXPECT_TRUE(catalog->Inspect(kB).ok());
  EXPECT_EQ(catalog->Inspect(kC).code(), ENOENT);
  auto all = catalog->InspectAll();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);

  // Nothing decides from the replica: no read for a decision, no change,
  // no lease, and none of them waits on central (no call reaches it).
  int before = central_.calls_while_down;
  auto update = [](ImageRecord& record) {
    record.status = ImageStatus::kActive;
    return Ok();
  };
  EXPECT_EQ(catalog->Get(kA).code(), EHOSTUNREACH);
  EXPECT_EQ(catalog->ListRecords().code(), EHOSTUNREACH);
  EXPECT_EQ(catalog->Create(Record(kC)).code(), EHOSTUNREACH);
  EXPECT_EQ(catalog->Update(kA, update).code(), EHOSTUNREACH);
  EXPECT_EQ(catalog->Remove(kA).code(), EHOSTUNREACH);
  EXPECT_EQ(catalog->AcquireLease({kA, "me", "copy", 1}).code(), EHOSTUNREACH);
  EXPECT_EQ(catalog->RenewLease(kA, "me", 2).code(), EHOSTUNREACH);
  EXPECT_EQ(catalog->ListStaleLeases(0).code(), EHOSTUNREACH);
  auto calls = central_.calls_while_down - before;
  EXPECT_LE(calls, 2) << "only the follower's probes may reach central";

  // Central answers again: live by itself, changes go through.
  central_.down = false;
  ASSERT_TRUE(BecomesLive(*catalog, true));
  EXPECT_TRUE(catalog->Update(kA, update).ok());
}

TEST_F(ReplicatedCatalogTest, ACallThatTimesOutMarksItNotLiveAtOnce) {
  // No follower round after the first: only the call can notice.
  auto catalog = Open(std::chrono::hours(1));
  ASSERT_TRUE(catalog->Create(Record(kA)).ok());
  central_.down = true;
  auto created = catalog->Create(Record(kB));
  EXPECT_EQ(created.code(), EHOSTUNREACH);
  EXPECT_NE(created.error().message.find("unreachable"), std::string::npos);
  EXPECT_FALSE(catalog->Health().live);
  int before = central_.calls_while_down;
  EXPECT_EQ(catalog->Create(Record(kC)).code(), EHOSTUNREACH);
  EXPECT_EQ(central_.calls_while_down, before);
  // An inspection that finds central gone answers from the replica.
  central_.down = false;
  auto fresh = Open(std::chrono::hours(1));  // another mount, live, synced
  central_.down = true;
  EXPECT_EQ(fresh->Inspect(kA).code(), 0);
  EXPECT_FALSE(fresh->Health().live);
}

TEST_F(ReplicatedCatalogTest, StartsFromItsReplicaDuringAnOutageAndCatchesUpAfter) {
  {
    auto catalog = Open();
    ASSERT_TRUE(catalog->Create(Record(kA)).ok());
    ASSERT_TRUE(catalog->Create(Record(kB)).ok());
    ASSERT_TRUE(ReplicaHas(*catalog, kB));
  }
  // The mount restarts while central is cut off: it starts (after the
  // first wait) from its replica, and refuses changes.
  central_.down = true;
  auto catalog = Open();
  EXPECT_FALSE(catalog->Health().live);
  EXPECT_TRUE(catalog->Inspect(kA).ok());
  EXPECT_TRUE(catalog->Inspect(kB).ok());
  EXPECT_EQ(catalog->Create(Record(kC)).code(), EHOSTUNREACH);
  // Meanwhile others change the catalog at central.
  central_.down = false;
  ASSERT_TRUE(elsewhere_.Create(Record(kC)).ok());
  ASSERT_TRUE(elsewhere_.Remove(kB).ok());
  // Central answers: live without a restart, and caught up.
  ASSERT_TRUE(BecomesLive(*catalog, true));
  EXPECT_GE(opens_, 3);  // it kept trying to connect
  central_.down = true;
  ASSERT_TRUE(BecomesLive(*catalog, false));
  EXPECT_TRUE(catalog->Inspect(kC).ok());
  EXPECT_EQ(catalog->Inspect(kB).code(), ENOENT);
}

TEST_F(ReplicatedCatalogTest, AnotherCatalogReplacesTheWholeReplica) {
  {
    auto catalog = Open();
    ASSERT_TRUE(catalog->Create(Record(kA)).ok());
    ASSERT_TRUE(ReplicaHas(*catalog, kA));
  }
  // Central's catalog was recreated (another id) with other records.
  ASSERT_TRUE(central_.records->Remove(kA).ok());
  ASSERT_TRUE(central_.records->Create(Record(kC)).ok());
  central_.name = "catalog-2";
  auto catalog = Open();
  ASSERT_TRUE(ReplicaHas(*catalog, kC));
  central_.down = true;
  ASSERT_TRUE(BecomesLive(*catalog, false));
  EXPECT_EQ(catalog->Inspect(kA).code(), ENOENT);
}

TEST_F(ReplicatedCatalogTest, InspectionKeepsARecordForTheAttributeTimeoutOnly) {
  auto catalog = Open(kFollow, std::chrono::milliseconds(300));
  ASSERT_TRUE(catalog->Create(Record(kA)).ok());
  auto active = [](ImageRecord& record) {
    record.status = ImageStatus::kActive;
    return Ok();
  };
  // The attributes of one image: one read; and while the follower finds
  // no change of it, none more, past the timeout too (once it has read
  // past the creation: a read of the log that began after it was applied
  // when the next one begins).
  for (int started = central_.follows, i = 0; central_.follows < started + 2 && i < 500; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  int gets = central_.gets;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(catalog->Inspect(kA).ok());
  EXPECT_EQ(central_.gets - gets, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_TRUE(catalog->Inspect(kA).ok());
  EXPECT_EQ(central_.gets - gets, 1);
  // Another daemon's change shows within the timeout ...
  ASSERT_TRUE(elsewhere_.Update(kA, active).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  EXPECT_EQ(catalog->Inspect(kA)->status, ImageStatus::kActive);
  // ... and this daemon's own at once.
  ASSERT_TRUE(catalog
                  ->Update(kA,
                           [](ImageRecord& record) {
                             record.status = ImageStatus::kQueued;
                             return Ok();
                           })
                  .ok());
  EXPECT_EQ(catalog->Inspect(kA)->status, ImageStatus::kQueued);
  ASSERT_TRUE(catalog->Remove(kA).ok());
  EXPECT_EQ(catalog->Inspect(kA).code(), ENOENT);
}

TEST_F(ReplicatedCatalogTest, WithoutTheFollowerARecordExpiresAfterTheTimeout) {
  auto catalog = Open(std::chrono::hours(1), std::chrono::milliseconds(200));
  ASSERT_TRUE(catalog->Create(Record(kA)).ok());
  ASSERT_TRUE(catalog->Inspect(kA).ok());
  ASSERT_TRUE(elsewhere_
                  .Update(kA,
                          [](ImageRecord& record) {
                            record.status = ImageStatus::kActive;
                            return Ok();
                          })
                  .ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_EQ(catalog->Inspect(kA)->status, ImageStatus::kActive);
}

TEST_F(ReplicatedCatalogTest, AScanOfManyImagesReadsThemInOneListing) {
  std::vector<std::string> ids;
  for (int i = 0; i < 500; ++i) {
    ids.push_back(fmt::format("00000000-0000-4000-8000-{:012}", i));
    ASSERT_TRUE(elsewhere_.Create(Record(ids.back())).ok());
  }
  auto catalog = Open(std::chrono::hours(1), std::chrono::seconds(5));
  ASSERT_TRUE(BecomesLive(*catalog, true));
  int gets = central_.gets, lists = central_.lists;
  for (const auto& id : ids) ASSERT_TRUE(catalog->Inspect(id).ok());
  EXPECT_LT(central_.gets - gets, 70);  // until the scan showed
  EXPECT_EQ(central_.lists - lists, 1);
}

// `ls` of a large catalog lists it once per attribute timeout; a change
// made through the catalog lists it again at once.
TEST_F(ReplicatedCatalogTest, AListingAnswersAgainUntilItExpiresOrARecordChanges) {
  ASSERT_TRUE(elsewhere_.Create(Record(kA)).ok());
  auto catalog = Open(std::chrono::hours(1), std::chrono::milliseconds(300));
  ASSERT_TRUE(BecomesLive(*catalog, true));
  int lists = central_.lists;
  for (int i = 0; i < 5; ++i) ASSERT_EQ(catalog->InspectAll()->size(), 1u);
  EXPECT_EQ(central_.lists - lists, 1);
  ASSERT_TRUE(catalog->Create(Record(kB)).ok());
  EXPECT_EQ(catalog->InspectAll()->size(), 2u);
  EXPECT_EQ(central_.lists - lists, 2);
  ASSERT_TRUE(elsewhere_.Create(Record(kC)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  EXPECT_EQ(catalog->InspectAll()->size(), 3u);
  EXPECT_EQ(central_.lists - lists, 3);
}

// Placement's view (InspectLocal) is the replica: it never lists central,
// and shows another daemon's record once the follower brought it.
TEST_F(ReplicatedCatalogTest, TheLocalViewIsTheReplicaAndNeverAsksCentral) {
  ASSERT_TRUE(elsewhere_.Create(Record(kA)).ok());
  auto catalog = Open(std::chrono::milliseconds(50), std::chrono::milliseconds(300));
  ASSERT_TRUE(BecomesLive(*catalog, true));
  int gets = central_.gets, lists = central_.lists;
  for (int i = 0; i < 5; ++i) ASSERT_EQ(catalog->InspectLocal()->size(), 1u);
  ASSERT_TRUE(elsewhere_.Create(Record(kB)).ok());
  bool followed = false;
  for (int i = 0; i < 100 && !followed; ++i) {
    followed = catalog->InspectLocal()->size() == 2u;
    if (!followed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(followed) << "the follower did not bring the new record";
  EXPECT_EQ(central_.lists - lists, 0);
  EXPECT_EQ(central_.gets - gets, 0);
}

// What this daemon stored shows in the local view at once, before the
// follower has brought it into the replica: placement acts on a rule just
// set and an upload just ended without waiting for the follower.
TEST_F(ReplicatedCatalogTest, TheLocalViewHasThisDaemonsOwnChangesAtOnce) {
  ASSERT_TRUE(elsewhere_.Create(Record(kA)).ok());
  // No follower round after the first; records cached for 1 s.
  auto catalog = Open(std::chrono::hours(1), std::chrono::milliseconds(1000));
  ASSERT_TRUE(BecomesLive(*catalog, true));
  ASSERT_TRUE(catalog
                  ->Update(kA,
                           [](ImageRecord& record) -> Status {
                             record.properties["imagefs_placement"] = "all";
                             return Ok();
                           })
                  .ok());
  ASSERT_TRUE(catalog->Create(Record(kB)).ok());
  int gets = central_.gets, lists = central_.lists;
  auto listed = catalog->InspectLocal();
  ASSERT_TRUE(listed.ok());
  std::map<std::string, ImageRecord> seen;
  for (const auto& entry : *listed) {
    ASSERT_TRUE(entry.record.ok());
    seen[entry.id] = *entry.record;
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[kA].properties["imagefs_placement"], "all");
  EXPECT_TRUE(seen.count(kB));
  EXPECT_EQ(central_.lists - lists, 0);
  EXPECT_EQ(central_.gets - gets, 0);
}

// Where the change log omits removals (Glance), a round that names no
// change of a record does not prove it current: another daemon's removal
// shows once the attribute timeout has passed.
TEST_F(ReplicatedCatalogTest, WhereTheLogOmitsRemovalsARemovalShowsWithinTheTimeout) {
  central_.log_omits_removals = true;
  auto catalog = Open(kFollow, std::chrono::milliseconds(300));
  ASSERT_TRUE(catalog->Create(Record(kA)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the follower read past it
  ASSERT_TRUE(catalog->Inspect(kA).ok());
  ASSERT_TRUE(elsewhere_.Remove(kA).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(catalog->Inspect(kA).code(), ENOENT);
}

}  // namespace
}  // namespace imagefs

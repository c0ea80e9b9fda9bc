// The catalog conformance suite on the rados backend, against the real
// central cluster: each test gets its own RADOS namespace, and "two
// handles" are two separate cluster connections, as two daemons have.
#include <atomic>
#include <filesystem>
#include <map>
#include <thread>

#include "tests/ceph/ceph_test_cluster.h"
#include "tests/conformance/catalog_conformance.h"

namespace imagefs {
namespace {

RadosCatalogOptions TestOptions(const std::string& directory) {
  return {.client = TestCluster("central"),
          .pool = "imagefs-conformance",
          .name_space = std::filesystem::path(directory).filename()};
}

Result<std::unique_ptr<SharedCatalog>> OpenShared(const std::string& directory) {
  return OpenRadosCatalog(TestOptions(directory));
}

Result<std::unique_ptr<Catalog>> OpenTestCatalog(const std::string& directory) {
  auto catalog = OpenShared(directory);
  if (!catalog.ok()) return catalog.error();
  return std::unique_ptr<Catalog>(std::move(catalog).value());
}

// The same catalog through a replica of its own (one per handle, as each
// daemon has its own).
Result<std::unique_ptr<Catalog>> OpenTestReplicated(const std::string& directory) {
  static std::atomic<int> replicas{0};
  auto options = TestOptions(directory);
  return OpenReplicatedCatalog(
      [options] { return OpenRadosCatalog(options); },
      {.replica_path = fmt::format("{}/replica-{}.db", directory, replicas++)});
}

INSTANTIATE_TEST_SUITE_P(Backends, CatalogConformanceTest,
                         ::testing::Values(CatalogBackend{"rados", OpenTestCatalog},
                                           CatalogBackend{"replicated", OpenTestReplicated}),
                         [](const auto& info) { return info.param.name; });

// Applies `changes` to `replica` (id -> encoded record) as a replica does.
void Apply(const CatalogChanges& changes, std::map<std::string, std::string>& replica) {
  if (changes.complete) replica.clear();
  for (const auto& [id, value] : changes.records) {
    if (value) {
      replica[id] = *value;
    } else {
      replica.erase(id);
    }
  }
}

// What the catalog lists, as a replica holds it.
std::map<std::string, std::string> Listed(Catalog& catalog) {
  std::map<std::string, std::string> listed;
  auto records = catalog.ListRecords();
  EXPECT_TRUE(records.ok());
  if (records.ok()) {
    for (auto& record : *records) listed[record.id] = EncodeRecord(*record.record);
  }
  return listed;
}

TEST(RadosCatalogTest, ChangesSinceGivesEveryChangeOnce) {
  TemporaryDirectory directory;
  auto catalog = OpenShared(directory.path());
  ASSERT_TRUE(catalog.ok()) << catalog.error().message;
  std::map<std::string, std::string> replica;
  // From nowhere: every record, and where that leaves the replica.
  auto first = (*catalog)->ChangesSince({});
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first->complete);
  EXPECT_FALSE(first->position.catalog.empty());
  Apply(*first, replica);
  CatalogPosition position = first->position;

  std::string a = "00000000-0000-4000-8000-00000000000a";
  std::string b = "00000000-0000-4000-8000-00000000000b";
  ASSERT_TRUE((*catalog)->Create(NewRecord(a)).ok());
  ASSERT_TRUE((*catalog)->Create(NewRecord(b)).ok());
  ASSERT_TRUE((*catalog)
                  ->Update(a,
                           [](ImageRecord& r) {
                             r.status = ImageStatus::kActive;
                             return Ok();
                           })
                  .ok());
  ASSERT_TRUE((*catalog)->Remove(b).ok());
  // A refused update and a failed create change nothing and log nothing.
  EXPECT_EQ((*catalog)->Create(NewRecord(a)).code(), EEXIST);
  EXPECT_EQ((*catalog)->Update(a, [](ImageRecord&) { return Fail(EPERM, "no"); }).code(), EPERM);

  auto changes = (*catalog)->ChangesSince(position);
  ASSERT_TRUE(changes.ok()) << changes.error().message;
  EXPECT_FALSE(changes->complete);
  EXPECT_EQ(changes->position.seq, position.seq + 4);
  ASSERT_EQ(changes->records.size(), 2u);  // each id once, at its current value
  EXPECT_EQ(changes->records[0].first, a);
  EXPECT_EQ(changes->records[1].first, b);
  EXPECT_FALSE(changes->records[1].second.has_value());
  Apply(*changes, replica);
  EXPECT_EQ(replica, Listed(**catalog));

  // Up to date: nothing.
  auto none = (*catalog)->ChangesSince(changes->position);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->records.empty());
  EXPECT_FALSE(none->complete);
  // Another catalog's position, or one ahead of this catalog: everything.
  auto other = (*catalog)->ChangesSince({"another", 1});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->complete);
  auto ahead = (*catalog)->ChangesSince({changes->position.catalog, changes->position.seq + 5});
  ASSERT_TRUE(ahead.ok());
  EXPECT_TRUE(ahead->complete);
}

TEST(RadosCatalogTest, ReplicaBehindTheKeptLogReadsEverythingAgain) {
  TemporaryDirectory directory;
  auto options = TestOptions(directory.path());
  options.changes_kept = 16;
  auto catalog = OpenRadosCatalog(options);
  ASSERT_TRUE(catalog.ok()) << catalog.error().message;
  auto start = (*catalog)->ChangesSince({});
  ASSERT_TRUE(start.ok());
  std::map<std::string, std::string> replica;
  Apply(*start, replica);
  std::string id = "00000000-0000-4000-8000-000000000001";
  ASSERT_TRUE((*catalog)->Create(NewRecord(id)).ok());
  auto near = (*catalog)->ChangesSince(start->position);
  ASSERT_TRUE(near.ok());
  EXPECT_FALSE(near->complete);
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE((*catalog)
                    ->Update(id,
                             [&](ImageRecord& r) {
                               r.size = i;
                               return Ok();
                             })
                    .ok());
  }
  // 16 behind: still from the log. 41 behind: trimmed away, all again.
  auto recent = (*catalog)->ChangesSince({near->position.catalog, near->position.seq + 24});
  ASSERT_TRUE(recent.ok());
  EXPECT_FALSE(recent->complete);
  auto far = (*catalog)->ChangesSince(near->position);
  ASSERT_TRUE(far.ok());
  EXPECT_TRUE(far->complete);
  Apply(*far, replica);
  EXPECT_EQ(replica, Listed(**catalog));
}

TEST(RadosCatalogTest, ConcurrentChangesFromTwoHandlesAreAllLogged) {
  TemporaryDirectory directory;
  auto one = OpenShared(directory.path());
  auto two = OpenShared(directory.path());
  ASSERT_TRUE(one.ok() && two.ok());
  auto start = (*one)->ChangesSince({});
  ASSERT_TRUE(start.ok());
  constexpr int kEach = 25;
  auto create = [](SharedCatalog& catalog, int first) {
    for (int i = first; i < first + kEach; ++i) {
      ASSERT_TRUE(catalog.Create(NewRecord(fmt::format("00000000-0000-4000-8000-{:012}", i))).ok());
    }
  };
  std::thread a(create, std::ref(**one), 0), b(create, std::ref(**two), 100);
  a.join();
  b.join();
  auto changes = (*two)->ChangesSince(start->position);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(changes->position.seq, start->position.seq + 2 * kEach);
  EXPECT_EQ(changes->records.size(), 2u * kEach);
}

TEST(RadosCatalogTest, ManyImagesListInPages) {
  TemporaryDirectory directory;
  auto catalog = OpenTestCatalog(directory.path());
  ASSERT_TRUE(catalog.ok()) << catalog.error().message;
  std::vector<std::string> ids;
  for (int i = 0; i < 2500; ++i) ids.push_back(fmt::format("00000000-0000-4000-8000-{:012}", i));
  for (const auto& id : ids) ASSERT_TRUE((*catalog)->Create(NewRecord(id)).ok());
  auto listed = (*catalog)->ListIds();
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(*listed, ids);
  auto records = (*catalog)->ListRecords();
  ASSERT_TRUE(records.ok()) << records.error().message;
  ASSERT_EQ(records->size(), ids.size());
  EXPECT_EQ(records->back().id, ids.back());
  EXPECT_TRUE(records->back().record.ok());
}

TEST(RadosCatalogTest, UnreachableClusterFailsWithinTheTimeout) {
  TemporaryDirectory directory;
  std::string conf = directory.Join("nowhere.conf");
  FILE* file = std::fopen(conf.c_str(), "w");
  ASSERT_NE(file, nullptr);
  // A monitor address where nothing listens.
  std::fputs("[global]\nmon_host = v2:127.0.0.1:9\nauth_client_required = none\n", file);
  std::fclose(file);
  CephClientOptions client;
  client.ceph_conf = conf;
  client.connect_timeout_seconds = 2;
  auto started = std::chrono::steady_clock::now();
  auto catalog = OpenRadosCatalog({.client = client});
  EXPECT_FALSE(catalog.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
}

}  // namespace
}  // namespace imagefs

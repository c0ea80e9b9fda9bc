// The catalog conformance suite on the rados backend, against the real
// central cluster: each test gets its own RADOS namespace, and "two
// handles" are two separate cluster connections, as two daemons have.
#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include "ceph/cluster.h"
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
  EXPECT_EQ(changes->position.Applied(), position.Applied() + 4);
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
  auto other = (*catalog)->ChangesSince({"another", changes->position.seqs});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->complete);
  CatalogPosition ahead_of_it = changes->position;
  ahead_of_it.seqs.back() += 5;
  auto ahead = (*catalog)->ChangesSince(ahead_of_it);
  ASSERT_TRUE(ahead.ok());
  EXPECT_TRUE(ahead->complete);
  // A position with another number of logs (an older build's): everything.
  auto one_log =
      (*catalog)->ChangesSince({changes->position.catalog, {changes->position.Applied()}});
  ASSERT_TRUE(one_log.ok());
  EXPECT_TRUE(one_log->complete);
}

TEST(RadosCatalogTest, ReplicaBehindTheKeptLogReadsEverythingAgain) {
  TemporaryDirectory directory;
  auto options = TestOptions(directory.path());
  options.changes_kept = 16 * 16;  // 16 in each of the 16 logs
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
  // The id's changes all went to one log. 16 behind in it: still from the
  // log. 41 behind: trimmed away, all again.
  auto now = (*catalog)->ChangesSince(near->position);
  ASSERT_TRUE(now.ok());
  CatalogPosition behind = now->position;
  size_t changed_logs = 0;
  for (size_t log = 0; log < behind.seqs.size(); ++log) {
    if (behind.seqs[log] == near->position.seqs[log]) continue;
    EXPECT_EQ(behind.seqs[log], near->position.seqs[log] + 40);
    behind.seqs[log] -= 16;
    ++changed_logs;
  }
  EXPECT_EQ(changed_logs, 1u);
  auto recent = (*catalog)->ChangesSince(behind);
  ASSERT_TRUE(recent.ok());
  EXPECT_FALSE(recent->complete);
  ASSERT_EQ(recent->records.size(), 1u);
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
  EXPECT_EQ(changes->position.Applied(), start->position.Applied() + 2 * kEach);
  EXPECT_EQ(changes->records.size(), 2u * kEach);
}

// A format-2 catalog (one change log) as a daemon of the previous build
// left it: this build upgrades it on open, keeps its records, removes the
// old log, and leaves the old counter as text that no build parses as a
// number, so that a daemon of the old build still running fails its
// changes instead of logging them where no replica looks.
TEST(RadosCatalogTest, Format2CatalogIsUpgradedAndOldWritersAreStopped) {
  TemporaryDirectory directory;
  auto options = TestOptions(directory.path());
  auto cluster = CephCluster::Connect(options.client, "test");
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  CreateRbdPool(options.client, options.pool);
  auto ioctx = (*cluster)->OpenPool(options.pool, options.name_space);
  ASSERT_TRUE(ioctx.ok()) << ioctx.error().message;
  std::string id = "00000000-0000-4000-8000-000000000002";
  {
    librados::ObjectWriteOperation op;
    op.create(false);
    std::map<std::string, ceph::bufferlist> values;
    values[id].append(EncodeRecord(NewRecord(id)));
    values["~catalog"].append("format-2-catalog");
    values["~seq"].append("2");
    values["~log.0000000000000001"].append(id);
    values["~log.0000000000000002"].append(id);
    op.omap_set(values);
    ceph::bufferlist format;
    format.append("2");
    op.setxattr("imagefs.format", format);
    ASSERT_EQ(ioctx->operate("imagefs.images", &op), 0);
  }
  auto catalog = OpenRadosCatalog(options);
  ASSERT_TRUE(catalog.ok()) << catalog.error().message;
  ASSERT_TRUE((*catalog)->Get(id).ok());
  std::map<std::string, ceph::bufferlist> stored;
  std::set<std::string> keys;
  ASSERT_EQ(ioctx->omap_get_vals2("imagefs.images", "", "~", 100, &stored, nullptr), 0);
  for (auto& [key, value] : stored) keys.insert(key);
  EXPECT_EQ(keys.count("~log.0000000000000001"), 0u);
  EXPECT_EQ(keys.count("~log.0000000000000002"), 0u);
  ASSERT_EQ(keys.count("~seq"), 1u);
  std::string old_counter = stored["~seq"].to_str();
  EXPECT_THROW((void)std::stoull(old_counter), std::invalid_argument) << old_counter;
  ceph::bufferlist format;
  ASSERT_GT(ioctx->getxattr("imagefs.images", "imagefs.format", format), 0);
  EXPECT_EQ(format.to_str(), "3");
  // The catalog keeps its id; a replica from nowhere gets every record,
  // and the next change is in the logs.
  auto all = (*catalog)->ChangesSince({});
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->complete);
  EXPECT_EQ(all->position.catalog, "format-2-catalog");
  ASSERT_EQ(all->records.size(), 1u);
  ASSERT_TRUE((*catalog)->Remove(id).ok());
  auto next = (*catalog)->ChangesSince(all->position);
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->complete);
  ASSERT_EQ(next->records.size(), 1u);
  EXPECT_FALSE(next->records[0].second.has_value());
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

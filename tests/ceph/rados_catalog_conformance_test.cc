// The catalog conformance suite on the rados backend, against the real
// central cluster: each test gets its own RADOS namespace, and "two
// handles" are two separate cluster connections, as two daemons have.
#include <filesystem>

#include "tests/ceph/ceph_test_cluster.h"
#include "tests/conformance/catalog_conformance.h"

namespace imagefs {
namespace {

Result<std::unique_ptr<Catalog>> OpenTestCatalog(const std::string& directory) {
  return OpenRadosCatalog({.client = TestCluster("central"),
                           .pool = "imagefs-conformance",
                           .name_space = std::filesystem::path(directory).filename()});
}

INSTANTIATE_TEST_SUITE_P(Backends, CatalogConformanceTest,
                         ::testing::Values(CatalogBackend{"rados", OpenTestCatalog}),
                         [](const auto& info) { return info.param.name; });

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

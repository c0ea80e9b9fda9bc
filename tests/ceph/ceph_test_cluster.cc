// Where the test clusters are, and pools made for one test binary.
#include "tests/ceph/ceph_test_cluster.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "ceph/cluster.h"

namespace imagefs {

CephClientOptions TestCluster(const std::string& name) {
  const char* dir = std::getenv("IMAGEFS_TEST_CEPH_DIR");
  if (dir == nullptr || *dir == '\0') {
    std::fprintf(stderr,
                 "IMAGEFS_TEST_CEPH_DIR is not set: start clusters with "
                 "scripts/ceph-cluster.sh start DIR central dcn0 dcn1 (ctest does)\n");
    std::abort();
  }
  CephClientOptions options;
  options.ceph_conf = std::string(dir) + "/" + name + "/ceph.conf";
  options.op_timeout_seconds = 30;
  return options;
}

void CreateRbdPool(const CephClientOptions& client, const std::string& pool) {
  auto cluster = CephCluster::Connect(client, "test");
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  int ret = (*cluster)->rados().pool_create(pool.c_str());
  ASSERT_TRUE(ret == 0 || ret == -EEXIST) << "pool_create " << pool << ": " << ret;
  if (ret == -EEXIST) return;
  auto ioctx = (*cluster)->OpenPool(pool);
  ASSERT_TRUE(ioctx.ok()) << ioctx.error().message;
  ASSERT_EQ(ioctx->application_enable("rbd", true), 0);
}

Result<std::unique_ptr<Store>> OpenEmptyRbdStore(const std::string& site, const std::string& pool) {
  CephClientOptions client = TestCluster(site);
  CreateRbdPool(client, pool);
  auto store = OpenRbdStore({.id = site, .client = client, .pool = pool, .chunk_size_mib = 1});
  if (!store.ok()) return store.error();
  auto images = (*store)->ListImages();
  if (!images.ok()) return images.error();
  for (const auto& id : *images) IMAGEFS_RETURN_IF_ERROR((*store)->Remove(id));
  auto temporaries = (*store)->ListTemporaries();
  if (!temporaries.ok()) return temporaries.error();
  for (const auto& temporary : *temporaries) {
    IMAGEFS_RETURN_IF_ERROR((*store)->RemoveTemporary(temporary));
  }
  return store;
}

}  // namespace imagefs

// For tests against the real local clusters that scripts/ceph-cluster.sh
// started (CTest's `ceph` fixture): where they are, and pools made for one
// test binary. Tests only.
#pragma once

#include <memory>
#include <string>

#include "ceph/client_options.h"
#include "store/store.h"

namespace imagefs {

// Client options for cluster `name` (central, dcn0, dcn1) under
// $IMAGEFS_TEST_CEPH_DIR. Aborts the test binary with a message when the
// variable is unset: these tests never pass without a cluster.
CephClientOptions TestCluster(const std::string& name);

// Creates pool `pool` for RBD on the cluster if it does not exist.
void CreateRbdPool(const CephClientOptions& client, const std::string& pool);

// The rbd store `site` on cluster `site`, over pool `pool` (made if
// missing, chunk size 1 MiB), emptied of images and temporaries.
Result<std::unique_ptr<Store>> OpenEmptyRbdStore(const std::string& site, const std::string& pool);

}  // namespace imagefs

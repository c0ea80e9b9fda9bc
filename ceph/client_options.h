// How imagefs reaches one Ceph cluster: the Glance-style settings of an rbd
// store (or of the rados catalog). Plain data, no librados types, so headers
// outside ceph/ can carry it.
#pragma once

#include <string>

namespace imagefs {

struct CephClientOptions {
  std::string ceph_conf = "/etc/ceph/ceph.conf";  // rbd_store_ceph_conf
  std::string user;                 // rbd_store_user, without "client."; empty = client.admin
  std::string keyring;              // empty = what ceph.conf says
  int connect_timeout_seconds = 0;  // rados_connect_timeout; 0 = librados default
  int op_timeout_seconds = 0;       // rados_op_timeout; 0 = wait for the cluster forever
};

}  // namespace imagefs

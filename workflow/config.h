// imagefs configuration: one Glance-compatible INI file.
//
//   [DEFAULT]   enabled_backends = central:file, dcn0:file, dcn1:rbd
//   [glance_store] default_backend = central
//   [central]   filesystem_store_datadir = /var/lib/imagefs/central   (file)
//               rbd_store_ceph_conf, rbd_store_pool, rbd_store_user,
//               rbd_store_keyring, rbd_store_chunk_size,
//               rados_connect_timeout (default 30 s, 0 = librados's 300 s),
//               rados_op_timeout (imagefs, default 60 s: an operation on
//               an unreachable cluster fails after it; 0 = waits)      (rbd)
//               store_description (Glance's; any driver)
//   [os_glance_staging_store] filesystem_store_datadir = /var/lib/imagefs/staging
//   [catalog]   backend = embedded | rados | glance; path = <sqlite file>;
//               glance: os_cloud = <clouds.yaml cloud>, glance_leases =
//               central | local (central's cluster when it is rbd, else an
//               SQLite file), copy_method = imagefs | glance (who copies an
//               active image), lease_path = <state dir>/glance-leases.db,
//               glance_timeout = 30 (seconds);
//               rados_pool, rados_namespace, and rados_ceph_conf,
//               rados_user, rados_keyring (default: the central store's);
//               rados_connect_timeout = 5, rados_op_timeout = 3 (seconds:
//               how soon central counts as unreachable, and the mount
//               serves from its replica); replica_path = <state
//               dir>/catalog-replica.db (rados and glance)
//   [imagefs]   admin_uids = 0, 1000; lease_ttl = 30; staging_max_bytes = 0;
//               workers = 4; copy_chunk_size = 8 (the pipeline's unit, MiB, a
//               multiple of 4);
//               copy_in_flight = 8 (units read and written at once);
//               copy_memory = 128 (MiB all copies and uploads together
//               hold in units; each has at least one);
//               stream_writes = true (data written through the mount goes
//               to the stores as it arrives; false: staged, copied at close);
//               web_download_connect_timeout = 30, web_download_stall_timeout
//               = 60 (seconds: a web-download fails when it cannot connect,
//               or receives under 1 KiB/s for that long);
//               idle_upload_timeout = 600 (seconds: a file closed without
//               data, or an rsync temporary never renamed, is discarded
//               after it is left alone this long);
//               log_level = info (debug, info, warning, error; read again
//               on SIGHUP); outage_timeout = 300 (seconds a copy waits for
//               a target store that stopped answering, then resumes; 0:
//               fails at once); stop_timeout = 45 (seconds SIGTERM waits for
//               running commits before leaving them to recovery);
//               metrics_file = <path> (Prometheus text, written every
//               metrics_interval = 15 seconds; unset: none);
//               placement = (where images belong unless their own
//               user.imagefs.placement says: all, all,-<store>, or stores;
//               unset: nowhere more); placement_parallel = 2 (placement
//               copies per store at once)
//   [image_conversion] output_format = raw (Glance's image_conversion:
//               non-raw uploads and web-downloads are stored as raw;
//               unset: stored as they come)
//   [import_filtering_opts] allowed_schemes = http, https;
//               disallowed_schemes; allowed_hosts; disallowed_hosts;
//               allowed_ports = 80, 443; disallowed_ports (Glance's keys and
//               defaults; an empty value empties a list)
//
// Parsing is a pure function; errors are EINVAL with a message naming the
// file and line. A key imagefs does not know in its own sections
// ([imagefs], [catalog]) is an error; Glance's sections may hold any.
// With no file, DefaultConfig gives the embedded default:
// three `file` stores (central, dcn0, dcn1) and an SQLite catalog.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ceph/client_options.h"
#include "common/result.h"
#include "workflow/image_service.h"
#include "workflow/placement_rule.h"
#include "workflow/web_download.h"

namespace imagefs {

// The defaults of every key are the initial values below, written once.
struct StoreConfig {
  std::string id;
  std::string driver;   // "file" or "rbd"
  std::string datadir;  // file
  // rbd: rados_connect_timeout 30 s, rados_op_timeout 60 s by default.
  CephClientOptions client{.connect_timeout_seconds = 30, .op_timeout_seconds = 60};
  std::string pool = "images";
  uint64_t chunk_size_mib = 8;
  std::string description;  // store_description (any driver)
};

struct CatalogConfig {
  std::string backend = "embedded";
  std::string path;  // embedded
  // rados: the central store's cluster unless rados_ceph_conf says
  // otherwise, with short timeouts of its own.
  CephClientOptions client{.connect_timeout_seconds = 5, .op_timeout_seconds = 3};
  std::string rados_pool;
  std::string rados_namespace;
  ReplicaOptions replica;  // rados, glance: how it follows central or Glance
  // glance: the cloud of clouds.yaml ("": $OS_CLOUD, else the only one),
  // the leases' SQLite file, and how long a call to Glance may take.
  std::string os_cloud;
  std::string lease_path;
  // glance_leases: central (a rados catalog on the central store's
  // cluster, pool rados_pool, namespace glance-leases; the default when
  // central is rbd) or local (SQLite at lease_path; the default else).
  std::string glance_leases;
  // glance: copy_method = imagefs (imagefs writes copies and adds them as
  // locations) or glance (copies through Glance's copy-image).
  std::string copy_method = "imagefs";
  int glance_timeout_seconds = 30;
};

// The image service's default options.
const ImageService::Options& ServiceDefaults();

struct Config {
  std::string state_dir;
  std::vector<StoreConfig> stores;
  std::string central;
  std::string staging_dir;
  // The service's settings default to the service's own defaults
  // (ImageService::Options, PipelineOptions, DownloadOptions): written
  // once, there.
  uint64_t staging_max_bytes = ServiceDefaults().staging_max_bytes;
  CatalogConfig catalog;
  std::vector<uint32_t> admin_uids = ServiceDefaults().admin_uids;
  int lease_ttl_seconds = static_cast<int>(ServiceDefaults().lease_ttl.count());
  int workers = ServiceDefaults().workers;
  uint64_t copy_unit_mib = ServiceDefaults().pipeline.unit_bytes >> 20;
  int copy_in_flight = ServiceDefaults().pipeline.units_in_flight;
  uint64_t copy_memory_mib = ServiceDefaults().copy_memory_bytes >> 20;
  bool stream_writes = ServiceDefaults().stream_writes;
  int download_connect_seconds =
      static_cast<int>(ServiceDefaults().download.connect_timeout.count());
  int download_stall_seconds = static_cast<int>(ServiceDefaults().download.stall.count());
  int idle_upload_seconds = 600;
  std::string log_level = "info";
  int stop_timeout_seconds = 45;
  // How long a copy waits for a target store that stopped answering
  // (ImageService::Options::outage_timeout); 0: it fails at once.
  int outage_timeout_seconds = 300;
  PlacementRule placement = ServiceDefaults().placement;
  int placement_parallel = ServiceDefaults().placement_parallel;
  std::string metrics_file;  // empty: no metrics
  int metrics_interval_seconds = 15;
  std::string conversion_format;  // "raw", or empty: no conversion
  UriFilter import_filter;
};

// $XDG_STATE_HOME/imagefs, else $HOME/.local/state/imagefs, else /var/lib/imagefs.
std::string DefaultStateDir();

Config DefaultConfig(const std::string& state_dir);

// `source` names the text in messages (usually the file path).
Result<Config> ParseConfig(std::string_view text, std::string_view source,
                           const std::string& state_dir);
Result<Config> LoadConfigFile(const std::string& path, const std::string& state_dir);

// Several files read as one, in order: a key in a later file replaces the
// same key of an earlier one, so that a glance-api.conf can supply the
// stores ([DEFAULT] enabled_backends, [glance_store], the store sections,
// [os_glance_staging_store]) and an imagefs file the rest. Keys imagefs
// does not read are not looked at. A message names the file and line of
// the key it is about.
struct ConfigText {
  std::string text;
  std::string source;  // names it in messages
};
Result<Config> ParseConfigFiles(const std::vector<ConfigText>& files, const std::string& state_dir);
Result<Config> LoadConfigFiles(const std::vector<std::string>& paths, const std::string& state_dir);

}  // namespace imagefs

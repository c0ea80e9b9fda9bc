// Builds the image service a configuration describes: stores, catalog, options.
#include "workflow/service_factory.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "catalog/catalog.h"
#include "ceph/client_ledger.h"
#include "common/uuid.h"
#include "store/store.h"

namespace imagefs {
namespace {

// The daemon's identity: "<host>:<uuid>", made once and kept in the state
// directory, so that leases of a crashed run are recognised after restart.
Result<std::string> DaemonId(const std::string& state_dir) {
  std::string path = state_dir + "/daemon-id";
  std::ifstream in(path);
  std::string id;
  if (in && std::getline(in, id) && !id.empty()) return id;
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  id = fmt::format("{}:{}", host, NewUuid());
  std::error_code error;
  std::filesystem::create_directories(state_dir, error);
  std::ofstream out(path);
  if (!(out << id << "\n")) return Fail(EIO, "cannot write {}", path);
  return id;
}

// The directory a catalog's file goes in; a failure here shows when the
// file is opened, with the reason.
void MakeParentDirectory(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
}

}  // namespace

Result<std::unique_ptr<ImageService>> BuildImageService(const Config& config) {
  ImageService::Options options;
  // Before any connection: the last run's Ceph clients, to fence if it
  // died holding images open, and this run's from now on.
  std::error_code made;
  std::filesystem::create_directories(config.state_dir, made);
  ClientLedger::Open(config.state_dir);
  for (const auto& store_config : config.stores) {
    Result<std::unique_ptr<Store>> store = Fail(EINVAL, "store {}: no driver", store_config.id);
    if (store_config.driver == "rbd") {
      store = OpenRbdStore({.id = store_config.id,
                            .client = store_config.client,
                            .pool = store_config.pool,
                            .chunk_size_mib = store_config.chunk_size_mib});
    } else {
      store = OpenFileStore(store_config.id, store_config.datadir);
    }
    if (!store.ok()) return store.error();
    options.stores.push_back(std::move(store).value());
    options.store_descriptions[store_config.id] = store_config.description;
  }
  Result<std::unique_ptr<Catalog>> catalog = Fail(EINVAL, "no catalog");
  if (config.catalog.backend == "rados") {
    RadosCatalogOptions rados{.client = config.catalog.client,
                              .pool = config.catalog.rados_pool,
                              .name_space = config.catalog.rados_namespace};
    MakeParentDirectory(config.catalog.replica.replica_path);
    catalog =
        OpenReplicatedCatalog([rados] { return OpenRadosCatalog(rados); }, config.catalog.replica);
  } else if (config.catalog.backend == "glance") {
    auto cloud = LoadCloud(config.catalog.os_cloud);
    if (!cloud.ok()) return cloud.error();
    GlanceCatalogOptions glance{.cloud = *cloud, .lease_path = config.catalog.lease_path};
    glance.http.timeout = std::chrono::seconds(config.catalog.glance_timeout_seconds);
    glance.http.cacert = cloud->cacert;
    glance.http.verify = cloud->verify;
    glance.own_uid = ::geteuid();
    glance.glance_copies = config.catalog.copy_method == "glance";
    if (config.catalog.glance_leases == "central") {
      RadosCatalogOptions rados{.client = config.catalog.client,
                                .pool = config.catalog.rados_pool,
                                .name_space = "glance-leases"};
      glance.open_leases = [rados]() -> Result<std::unique_ptr<Catalog>> {
        auto opened = OpenRadosCatalog(rados);
        if (!opened.ok()) return opened.error();
        return std::unique_ptr<Catalog>(std::move(opened).value());
      };
    }
    MakeParentDirectory(glance.lease_path);
    // Served through a replica, as the rados catalog is: inspections answer
    // while Glance does not.
    ReplicaOptions replica = config.catalog.replica;
    replica.authority = "Glance";
    replica.traits = GlanceCatalogTraits(glance);
    replica.follow_every = std::chrono::seconds(1);
    // A busy glance-api (one worker copying an image) answers a GET in
    // seconds: inspections wait for it that long before the replica
    // answers for it.
    replica.inspect_wait = std::chrono::seconds(5);
    MakeParentDirectory(replica.replica_path);
    catalog = OpenReplicatedCatalog([glance] { return OpenGlanceCatalog(glance); }, replica);
  } else {
    MakeParentDirectory(config.catalog.path);
    catalog = OpenSqliteCatalog(config.catalog.path);
  }
  if (!catalog.ok()) return catalog.error();
  options.catalog = std::move(catalog).value();
  options.central = config.central;
  options.staging_dir = config.staging_dir;
  options.staging_max_bytes = config.staging_max_bytes;
  options.admin_uids = config.admin_uids;
  options.lease_ttl = std::chrono::seconds(config.lease_ttl_seconds);
  options.workers = config.workers;
  options.copy_memory_bytes = config.copy_memory_mib << 20;
  options.placement = config.placement;
  options.placement_parallel = config.placement_parallel;
  options.pipeline.unit_bytes = config.copy_unit_mib << 20;
  options.pipeline.units_in_flight = config.copy_in_flight;
  options.stream_writes = config.stream_writes;
  options.outage_timeout = std::chrono::seconds(config.outage_timeout_seconds);
  options.download.connect_timeout = std::chrono::seconds(config.download_connect_seconds);
  options.download.stall = std::chrono::seconds(config.download_stall_seconds);
  options.import_filter = config.import_filter;
  options.convert_to_raw = config.conversion_format == "raw";
  auto daemon_id = DaemonId(config.state_dir);
  if (!daemon_id.ok()) return daemon_id.error();
  options.daemon_id = *daemon_id;
  return ImageService::Create(std::move(options));
}

}  // namespace imagefs

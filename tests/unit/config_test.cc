// Unit tests of the configuration parser: every key, default and refusal.
#include "workflow/config.h"

#include <gtest/gtest.h>

namespace imagefs {
namespace {

TEST(ConfigTest, GlanceStyleMultiStoreConfig) {
  auto config = ParseConfig(R"(
[DEFAULT]
enabled_backends = central:file, dcn0:rbd
[glance_store]
default_backend = central
[central]
filesystem_store_datadir = /srv/central
[dcn0]
rbd_store_ceph_conf = /etc/ceph/dcn0.conf
rbd_store_user = openstack
rbd_store_chunk_size = 4
[os_glance_staging_store]
filesystem_store_datadir = /srv/staging
[imagefs]
admin_uids = 0, 1000
lease_ttl = 20
stream_writes = no
web_download_stall_timeout = 5
)",
                            "test.conf", "/state");
  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_EQ(config->stores.size(), 2u);
  EXPECT_EQ(config->stores[0].id, "central");
  EXPECT_EQ(config->stores[0].datadir, "/srv/central");
  EXPECT_EQ(config->stores[1].driver, "rbd");
  EXPECT_EQ(config->stores[1].client.ceph_conf, "/etc/ceph/dcn0.conf");
  EXPECT_EQ(config->stores[1].pool, "images");
  EXPECT_EQ(config->stores[1].chunk_size_mib, 4u);
  EXPECT_EQ(config->central, "central");
  EXPECT_EQ(config->staging_dir, "/srv/staging");
  EXPECT_EQ(config->catalog.path, "/state/catalog.db");
  EXPECT_EQ(config->admin_uids, (std::vector<uint32_t>{0, 1000}));
  EXPECT_EQ(config->lease_ttl_seconds, 20);
  EXPECT_FALSE(config->stream_writes);
  EXPECT_EQ(config->download_stall_seconds, 5);
  EXPECT_EQ(config->download_connect_seconds, 30);
}

struct BadConfig {
  const char* text;
  const char* message_part;
};

void PrintTo(const BadConfig& config, std::ostream* out) { *out << config.message_part; }

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, RefusedWithTheLine) {
  auto config = ParseConfig(GetParam().text, "bad.conf", "/state");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.code(), EINVAL);
  EXPECT_NE(config.error().message.find(GetParam().message_part), std::string::npos)
      << config.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Errors, BadConfigTest,
    ::testing::Values(
        BadConfig{"[DEFAULT]\nenabled_backends = os_glance_x:file\n", "bad.conf:2"},
        BadConfig{"[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = a\n"
                  "[a]\nfilesystem_store_datadir=/x\n[imagefs]\nweb_download_stall_timeout = 0\n",
                  "bad.conf:8: [imagefs] web_download_stall_timeout: must be 1..3600"},
        BadConfig{"[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = a\n"
                  "[a]\nfilesystem_store_datadir=/x\n[imagefs]\nstream_writes = maybe\n",
                  "'maybe' is not true or false"},
        BadConfig{"[DEFAULT]\nenabled_backends = a:ftp\n", "driver 'ftp'"},
        BadConfig{"[DEFAULT]\nenabled_backends = a:file\n[a]\nfilesystem_store_datadir=/x\n",
                  "default_backend"},
        BadConfig{"[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = b\n"
                  "[a]\nfilesystem_store_datadir=/x\n",
                  "bad.conf:4"},
        BadConfig{"[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = a\n",
                  "filesystem_store_datadir"},
        BadConfig{"[DEFAULT]\nenabled_backends = a:rbd\n[glance_store]\ndefault_backend = a\n"
                  "[a]\nrbd_store_chunk_size = big\n",
                  "bad.conf:6"},
        BadConfig{"[DEFAULT\nenabled_backends = a:file\n", "bad.conf:1"},
        BadConfig{
            "[DEFAULT]\nenabled_backends = a:file, a:file\n[a]\nfilesystem_store_datadir=/x\n",
            "listed twice"}));

TEST(ConfigTest, TheDocumentedExampleIsValid) {
  auto config = LoadConfigFile(IMAGEFS_SOURCE_DIR "/docs/imagefs.conf.example", "/state");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->stores.size(), 3u);
  EXPECT_EQ(config->staging_dir, "/var/lib/imagefs/staging");
  EXPECT_EQ(config->lease_ttl_seconds, 30);
}

TEST(ConfigTest, CephExampleIsValid) {
  auto config = LoadConfigFile(IMAGEFS_SOURCE_DIR "/docs/imagefs-ceph.conf.example", "/state");
  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_EQ(config->stores.size(), 3u);
  for (const auto& store : config->stores) {
    EXPECT_EQ(store.driver, "rbd") << store.id;
    EXPECT_EQ(store.client.user, "openstack") << store.id;
    EXPECT_EQ(store.client.ceph_conf, "/etc/ceph/" + store.id + ".conf");
  }
  EXPECT_EQ(config->stores[1].client.connect_timeout_seconds, 30);  // the default
  EXPECT_EQ(config->stores[1].client.op_timeout_seconds, 60);
  EXPECT_EQ(config->catalog.backend, "rados");
  EXPECT_EQ(config->catalog.rados_pool, "imagefs");
  // The catalog connects as the central store does.
  EXPECT_EQ(config->catalog.client.ceph_conf, "/etc/ceph/central.conf");
  EXPECT_EQ(config->catalog.client.keyring, "/etc/ceph/central.client.openstack.keyring");
  // ... with short timeouts of its own, and a replica in the state dir.
  EXPECT_EQ(config->catalog.client.connect_timeout_seconds, 5);
  EXPECT_EQ(config->catalog.client.op_timeout_seconds, 3);
  EXPECT_EQ(config->catalog.replica.replica_path, "/state/catalog-replica.db");
}

TEST(ConfigTest, CatalogTimeoutsAndReplicaAreSettable) {
  auto config = ParseConfig(
      "[DEFAULT]\nenabled_backends = a:rbd\n[glance_store]\ndefault_backend = a\n"
      "[a]\nrados_op_timeout = 60\n"
      "[catalog]\nbackend = rados\nrados_op_timeout = 7\nreplica_path = /r/replica.db\n",
      "c.conf", "/state");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->stores[0].client.op_timeout_seconds, 60);
  EXPECT_EQ(config->catalog.client.op_timeout_seconds, 7);
  EXPECT_EQ(config->catalog.replica.replica_path, "/r/replica.db");
  auto zero = ParseConfig(
      "[DEFAULT]\nenabled_backends = a:rbd\n[glance_store]\ndefault_backend = a\n"
      "[catalog]\nbackend = rados\nrados_op_timeout = 0\n",
      "c.conf", "/state");
  EXPECT_EQ(zero.code(), EINVAL);  // the catalog must never wait forever
}

constexpr char kOneStore[] =
    "[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = a\n"
    "[a]\nfilesystem_store_datadir=/x\n";

TEST(ConfigTest, DefaultsAreThoseOfGlance) {
  auto config = ParseConfig(kOneStore, "c.conf", "/state");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->import_filter.allowed_schemes, (std::vector<std::string>{"http", "https"}));
  EXPECT_EQ(config->import_filter.allowed_ports, (std::vector<uint32_t>{80, 443}));
  EXPECT_TRUE(config->import_filter.disallowed_hosts.empty());
  EXPECT_EQ(config->conversion_format, "");
  EXPECT_EQ(config->idle_upload_seconds, 600);
  EXPECT_EQ(config->admin_uids, (std::vector<uint32_t>{0}));
  EXPECT_EQ(config->outage_timeout_seconds, 300);
  EXPECT_EQ(config->placement, PlacementRule{});  // images are placed nowhere more
  EXPECT_EQ(config->placement_parallel, 2);
  EXPECT_EQ(config->copy_memory_mib, 128u);
}

TEST(ConfigTest, FilterConversionAndIdleKeys) {
  auto config = ParseConfig(std::string(kOneStore) +
                                "[imagefs]\nidle_upload_timeout = 5\nadmin_uids = 0, 1000\n"
                                "outage_timeout = 0\nplacement = all,-a\nplacement_parallel = 3\n"
                                "[image_conversion]\noutput_format = raw\n"
                                "[import_filtering_opts]\nallowed_ports =\n"
                                "disallowed_hosts = Metadata.Internal, 169.254.169.254\n",
                            "c.conf", "/state");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->idle_upload_seconds, 5);
  EXPECT_EQ(config->outage_timeout_seconds, 0);  // copies do not wait
  EXPECT_EQ(config->placement.Format(), "all,-a");
  EXPECT_EQ(config->placement_parallel, 3);
  EXPECT_EQ(config->admin_uids, (std::vector<uint32_t>{0, 1000}));
  EXPECT_EQ(config->conversion_format, "raw");
  EXPECT_TRUE(config->import_filter.allowed_ports.empty());  // present and empty: no port rule
  EXPECT_EQ(config->import_filter.disallowed_hosts,
            (std::vector<std::string>{"metadata.internal", "169.254.169.254"}));
  for (const auto& [bad, says] : std::vector<std::pair<std::string, std::string>>{
           {"[image_conversion]\noutput_format = qcow2\n", "'qcow2' is not supported (raw)"},
           {"[import_filtering_opts]\nallowed_ports = 80, 70000\n", "'70000' is not a port"},
           {"[imagefs]\nidle_upload_timeout = 0\n", "must be 1..86400 seconds"},
           {"[imagefs]\noutage_timeout = -1\n", "must be 0..86400 seconds"},
           {"[imagefs]\nplacement = all,a\n", "'all' with other stores named"},
           {"[imagefs]\nplacement = dcn0\n", "no store dcn0 is configured"},
           {"[imagefs]\nplacement_parallel = 0\n", "must be 1..64"},
           {"[imagefs]\ncopy_memory = 4\n", "must be 8..65536 MiB"},
           {"[imagefs]\ncopy_chunk_size = 6\n", "must be a multiple of 4"},
           {"[imagefs]\nadmin_uids = root\n", "'root' is not a uid"},
       }) {
    auto refused = ParseConfig(std::string(kOneStore) + bad, "c.conf", "/state");
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.code(), EINVAL);
    EXPECT_NE(refused.error().message.find(says), std::string::npos) << refused.error().message;
    EXPECT_NE(refused.error().message.find("c.conf:"), std::string::npos) << "names the line";
  }
}

TEST(ConfigTest, DefaultHasThreeFileStores) {
  Config config = DefaultConfig("/state");
  ASSERT_EQ(config.stores.size(), 3u);
  EXPECT_EQ(config.central, "central");
  EXPECT_EQ(config.stores[1].id, "dcn0");
  EXPECT_EQ(config.stores[2].datadir, "/state/stores/dcn1");
  EXPECT_EQ(config.catalog.backend, "embedded");
}

// A glance-api.conf supplies the stores, imagefs's file the catalog; the
// rest of Glance's keys are never read, and a later file's key wins.
TEST(ConfigTest, GlanceApiConfAndImagefsFileReadAsOne) {
  ConfigText glance{R"([DEFAULT]
bind_port = 9292
enabled_backends = central:rbd, dcn0:rbd
show_multiple_locations = True
[glance_store]
default_backend = central
[central]
rbd_store_ceph_conf = /etc/ceph/central.conf
rbd_store_pool = images
[dcn0]
rbd_store_ceph_conf = /etc/ceph/dcn0.conf
[keystone_authtoken]
password = not-ours
[database]
connection = mysql+pymysql://glance@db/glance
)",
                    "/etc/glance/glance-api.conf"};
  ConfigText imagefs{
      "[catalog]\nbackend = glance\nos_cloud = edge\n[dcn0]\nrbd_store_pool = edge\n",
      "/etc/imagefs/glance.conf"};
  auto config = ParseConfigFiles({glance, imagefs}, "/state");
  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_EQ(config->stores.size(), 2u);
  EXPECT_EQ(config->stores[0].client.ceph_conf, "/etc/ceph/central.conf");
  EXPECT_EQ(config->stores[1].pool, "edge");  // the later file's
  EXPECT_EQ(config->catalog.backend, "glance");
  EXPECT_EQ(config->catalog.os_cloud, "edge");
  // Central is rbd: the leases go to its cluster, shared by every site.
  EXPECT_EQ(config->catalog.glance_leases, "central");
  EXPECT_EQ(config->catalog.client.ceph_conf, "/etc/ceph/central.conf");
  EXPECT_EQ(config->catalog.rados_pool, "imagefs");
  // Inspections answer from a replica while Glance does not.
  EXPECT_EQ(config->catalog.replica.replica_path, "/state/catalog-replica.db");
  // An error names the file the key came from.
  ConfigText bad{"[catalog]\nglance_leases = everywhere\n", "/etc/imagefs/local.conf"};
  auto refused = ParseConfigFiles({glance, imagefs, bad}, "/state");
  ASSERT_EQ(refused.code(), EINVAL);
  EXPECT_NE(refused.error().message.find("/etc/imagefs/local.conf:2"), std::string::npos)
      << refused.error().message;
}

// Found by config_fuzzer: a section named "" ("[]") in a file merged with
// another reached boost's put_child, which asserts on an empty path.
TEST(ConfigTest, EmptySectionAndKeyNamesMergeLikeAnyOther) {
  ConfigText stores{R"([DEFAULT]
enabled_backends = central:file
[glance_store]
default_backend = central
[central]
filesystem_store_datadir = /srv/central
[]
x = first
)",
                    "a.conf"};
  ConfigText more{"[]\nx = second\ny = 2\n", "b.conf"};
  auto config = ParseConfigFiles({stores, more}, "/state");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->stores[0].datadir, "/srv/central");
}

// A Glance catalog over one file store, central; a test adds [catalog]
// keys at the end.
constexpr char kGlanceOverFileCentral[] = R"([DEFAULT]
enabled_backends = central:file
[glance_store]
default_backend = central
[central]
filesystem_store_datadir = /srv/central
[catalog]
backend = glance
)";

TEST(ConfigTest, GlanceLeasesOnCentralNeedAnRbdCentral) {
  std::string text = kGlanceOverFileCentral;
  auto local = ParseConfig(text, "c.conf", "/state");
  ASSERT_TRUE(local.ok()) << local.error().message;
  EXPECT_EQ(local->catalog.glance_leases, "local");
  EXPECT_EQ(local->catalog.lease_path, "/state/glance-leases.db");
  EXPECT_EQ(ParseConfig(text + "glance_leases = central\n", "c.conf", "/state").code(), EINVAL);
}

TEST(ConfigTest, CopyMethodIsImagefsOrGlance) {
  std::string text = kGlanceOverFileCentral;
  EXPECT_EQ(ParseConfig(text, "c.conf", "/state")->catalog.copy_method, "imagefs");
  auto glance = ParseConfig(text + "copy_method = glance\n", "c.conf", "/state");
  ASSERT_TRUE(glance.ok()) << glance.error().message;
  EXPECT_EQ(glance->catalog.copy_method, "glance");
  auto bad = ParseConfig(text + "copy_method = rsync\n", "c.conf", "/state");
  ASSERT_EQ(bad.code(), EINVAL);
  EXPECT_NE(bad.error().message.find("c.conf:9"), std::string::npos) << bad.error().message;
}

// A misspelt key of imagefs's own sections is an error naming its line;
// Glance's sections may hold keys imagefs does not read.
TEST(ConfigTest, UnknownKeysOfImagefsSectionsAreRefused) {
  std::string stores = R"([DEFAULT]
enabled_backends = central:file
bind_port = 9292
[glance_store]
default_backend = central
stores = file
[central]
filesystem_store_datadir = /srv/central
)";
  auto fine = ParseConfig(stores +
                              "[catalog]\nbackend = embedded\n[imagefs]\nstate_dir = /s\n"
                              "lease_ttl = 10\n[image_conversion]\noutput_format = raw\n",
                          "c.conf", "/state");
  ASSERT_TRUE(fine.ok()) << fine.error().message;
  auto misspelt = ParseConfig(stores + "[imagefs]\nlease_tll = 10\n", "c.conf", "/state");
  ASSERT_EQ(misspelt.code(), EINVAL);
  EXPECT_NE(misspelt.error().message.find("c.conf:10: [imagefs] lease_tll"), std::string::npos)
      << misspelt.error().message;
  EXPECT_EQ(
      ParseConfig(stores + "[catalog]\nbackend = glance\nos_clod = x\n", "c.conf", "/state").code(),
      EINVAL);
}

}  // namespace
}  // namespace imagefs

// Unit tests of image records: encode/decode round trips, Glance's fields.
#include "catalog/image_record.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace imagefs {
namespace {

ImageRecord FullRecord() {
  ImageRecord record;
  record.id = "0d7e3a52-6c1b-4c8e-9b53-3f0a1e2d4c5b";
  record.name = "cirros";
  record.status = ImageStatus::kActive;
  record.owner = 1000;
  record.disk_format = "qcow2";
  record.container_format = "bare";
  record.size = 12345;
  record.checksum = "d41d8cd98f00b204e9800998ecf8427e";
  record.os_hash_algo = "sha512";
  record.os_hash_value = "cf83e1357eefb8bdf1542850d66d8007";
  record.chunks_xxh3 = "99aa06d3014798d86001c324468d497f";
  record.created_at = 1'700'000'000'123'456'789;
  record.updated_at = 1'700'000'100'000'000'000;
  record.active_at = 1'700'000'050'000'000'000;
  record.locations = {{"central", "file:///srv/central/x"}, {"dcn0", "rbd://f/images/x/snap"}};
  record.importing_to_stores = {"dcn1"};
  record.failed_import = {"dcn2"};
  record.properties = {{"hw_disk_bus", "scsi"}};
  return record;
}

TEST(ImageRecordTest, EncodeDecodeRoundTripKeepsEveryField) {
  ImageRecord record = FullRecord();
  auto decoded = DecodeRecord(EncodeRecord(record));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, record);
}

TEST(ImageRecordTest, QueuedRecordWithoutSizeRoundTrips) {
  ImageRecord record;
  record.id = "0d7e3a52-6c1b-4c8e-9b53-3f0a1e2d4c5b";
  auto decoded = DecodeRecord(EncodeRecord(record));
  ASSERT_TRUE(decoded.ok());
  EXPECT_FALSE(decoded->size.has_value());
  EXPECT_EQ(decoded->status, ImageStatus::kQueued);
}

TEST(ImageRecordTest, NewerFormatIsRefused) {
  std::string encoded = EncodeRecord(FullRecord());
  auto at = encoded.find("\"format\":1");
  ASSERT_NE(at, std::string::npos);
  encoded.replace(at, 10, "\"format\":99");
  auto decoded = DecodeRecord(encoded);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.code(), ENOTSUP);
}

TEST(ImageRecordTest, MalformedInputIsEinval) {
  for (const char* bad : {"", "[]", "{", "{\"format\":1}", "{\"format\":1,\"id\":3}",
                          "{\"format\":1,\"id\":\"x\",\"status\":\"bogus\",\"owner\":0}"}) {
    auto decoded = DecodeRecord(bad);
    ASSERT_FALSE(decoded.ok()) << bad;
    EXPECT_EQ(decoded.code(), EINVAL) << bad;
  }
}

TEST(ImageRecordTest, GlancePropertiesUseGlanceNames) {
  ImageRecord record = FullRecord();
  EXPECT_EQ(GlanceProperty(record, "stores"), "central,dcn0");
  EXPECT_EQ(GlanceProperty(record, "os_glance_importing_to_stores"), "dcn1");
  EXPECT_EQ(GlanceProperty(record, "os_glance_failed_import"), "dcn2");
  EXPECT_EQ(GlanceProperty(record, "size"), "12345");
  EXPECT_EQ(GlanceProperty(record, "created_at"), "2023-11-14T22:13:20Z");
  EXPECT_EQ(GlanceProperty(record, "hw_disk_bus"), "scsi");
  EXPECT_EQ(GlanceProperty(record, "locations"),
            R"([{"metadata":{"store":"central"},"url":"file:///srv/central/x"},)"
            R"({"metadata":{"store":"dcn0"},"url":"rbd://f/images/x/snap"}])");
  EXPECT_FALSE(GlanceProperty(record, "nope").has_value());
}

TEST(ImageRecordTest, ReservedPropertiesAreRefused) {
  ImageRecord record = FullRecord();
  for (const char* name : {"status", "checksum", "size", "stores", "locations", "id",
                           "os_hash_value", "os_glance_failed_import", "owner"}) {
    EXPECT_TRUE(IsReservedProperty(name)) << name;
    EXPECT_EQ(SetUserProperty(record, name, "x").code(), EPERM) << name;
  }
  EXPECT_TRUE(SetUserProperty(record, "name", "new").ok());
  EXPECT_EQ(record.name, "new");
  EXPECT_TRUE(SetUserProperty(record, "hw_rng_model", "virtio").ok());
  EXPECT_EQ(record.properties.at("hw_rng_model"), "virtio");
}

TEST(ImageRecordTest, FormatsAreSetOnlyWhileQueued) {
  ImageRecord record = FullRecord();
  record.status = ImageStatus::kQueued;
  EXPECT_EQ(SetUserProperty(record, "disk_format", "floppy").code(), EINVAL);
  EXPECT_TRUE(SetUserProperty(record, "disk_format", "qcow2").ok());
  EXPECT_TRUE(SetUserProperty(record, "container_format", "bare").ok());
  record.status = ImageStatus::kActive;  // the data says what it is now
  EXPECT_EQ(SetUserProperty(record, "disk_format", "raw").code(), EPERM);
  EXPECT_EQ(SetUserProperty(record, "container_format", "ovf").code(), EPERM);
  EXPECT_EQ(record.disk_format, "qcow2");
}

TEST(ImageRecordTest, GuardsAreFieldsWithTheirRules) {
  ImageRecord record = FullRecord();
  EXPECT_EQ(*GlanceProperty(record, "visibility"), "shared");
  EXPECT_EQ(*GlanceProperty(record, "protected"), "false");
  EXPECT_EQ(*GlanceProperty(record, "os_hidden"), "false");
  EXPECT_TRUE(SetUserProperty(record, "protected", "True").ok());
  EXPECT_TRUE(SetUserProperty(record, "os_hidden", "true").ok());
  EXPECT_TRUE(SetUserProperty(record, "visibility", "community").ok());
  EXPECT_TRUE(record.is_protected && record.os_hidden && record.ReadableByAll());
  EXPECT_EQ(SetUserProperty(record, "protected", "yes please").code(), EINVAL);
  EXPECT_EQ(SetUserProperty(record, "visibility", "everyone").code(), EINVAL);
  EXPECT_TRUE(SetUserProperty(record, "visibility", "private").ok());
  EXPECT_FALSE(record.ReadableByAll());
  EXPECT_TRUE(record.properties.empty() || !record.properties.count("protected"));
  EXPECT_TRUE(IsSettableField("protected") && IsSettableField("visibility"));
  // They survive the catalog.
  record.virtual_size = 1 << 30;
  auto decoded = DecodeRecord(EncodeRecord(record));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, record);
  EXPECT_EQ(*GlanceProperty(*decoded, "virtual_size"), "1073741824");
}

TEST(ImageRecordTest, FileNameFallsBackToIdForUnusableNames) {
  ImageRecord record = FullRecord();
  EXPECT_EQ(record.FileName(), "cirros");
  for (const char* bad : {"", ".", "..", "a/b"}) {
    record.name = bad;
    EXPECT_EQ(record.FileName(), record.id) << bad;
  }
}

// Found by the record decoder fuzzer: numbers that are floats or out of
// range are refused, not converted (undefined for floats; an owner of -1
// would have become uid 4294967295).
TEST(ImageRecordTest, NumbersOutOfRangeAreEinval) {
  using nlohmann::json;
  std::string base = EncodeRecord(FullRecord());
  auto with = [&](const std::string& key, const std::string& value) {
    json record = json::parse(base);
    record[key] = json::parse(value);
    return DecodeRecord(record.dump());
  };
  EXPECT_EQ(with("owner", "-1").code(), EINVAL);
  EXPECT_EQ(with("owner", "4294967296").code(), EINVAL);
  EXPECT_EQ(with("owner", "1000.5").code(), EINVAL);
  EXPECT_EQ(with("updated_at", "1e300").code(), EINVAL);
  EXPECT_EQ(with("created_at", "18446744073709551615").code(), EINVAL);
  EXPECT_EQ(with("size", "-5").code(), EINVAL);
  EXPECT_EQ(with("format", "1e30").code(), EINVAL);
  auto fine = with("owner", "4294967295");
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ(fine->owner, 4294967295u);
}

}  // namespace
}  // namespace imagefs

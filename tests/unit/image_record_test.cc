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

// The import and delete transitions (image_record.h), one test each: the
// only code that moves status, locations, importing and failed stores.

ImageRecord Queued() {
  ImageRecord record;
  record.id = "00000000-0000-4000-8000-000000000001";
  return record;
}

VerifiedData Data() { return {4096, "md5", "sha512", "chunks", "raw", 4096}; }

ImageRecord Active(const std::vector<std::string>& stores) {
  ImageRecord record = Queued();
  for (const auto& store : stores) record.CopyPublished({store, "url-" + store}, Data());
  return record;
}

using Stores = std::vector<std::string>;

TEST(ImageRecordTransitionTest, UploadStartedMovesOnlyAQueuedImage) {
  ImageRecord record = Queued();
  record.UploadStarted();
  EXPECT_EQ(record.status, ImageStatus::kUploading);
  ImageRecord active = Active({"central"});
  active.UploadStarted();
  EXPECT_EQ(active.status, ImageStatus::kActive);
}

TEST(ImageRecordTransitionTest, UploadAbandonedQueuesAgainWithTheStoreFailed) {
  ImageRecord record = Queued();
  record.UploadStarted();
  record.UploadAbandoned("central");
  EXPECT_EQ(record.status, ImageStatus::kQueued);
  EXPECT_EQ(record.failed_import, Stores{"central"});
  // An image no longer uploading (recovery settled it) is left alone.
  ImageRecord active = Active({"central"});
  active.UploadAbandoned("dcn0");
  EXPECT_EQ(active.status, ImageStatus::kActive);
  EXPECT_TRUE(active.failed_import.empty());
}

TEST(ImageRecordTransitionTest, ImportStartedReplacesImportingAndClearsTheirFailures) {
  ImageRecord record = Active({"central"});
  record.failed_import = {"dcn0", "dcn1"};
  record.importing_to_stores = {"dcn2"};
  record.ImportStarted({"dcn0"}, /*upload=*/false);
  EXPECT_EQ(record.importing_to_stores, Stores{"dcn0"});
  EXPECT_EQ(record.failed_import, Stores{"dcn1"});
  EXPECT_EQ(record.status, ImageStatus::kActive);
  ImageRecord upload = Queued();
  upload.ImportStarted({"central", "dcn0"}, /*upload=*/true);
  EXPECT_EQ(upload.status, ImageStatus::kImporting);
}

TEST(ImageRecordTransitionTest, CopyFoundPublishedLeavesTheImportLists) {
  ImageRecord record = Active({"central", "dcn1"});
  record.ImportStarted({"dcn0", "dcn1"}, false);
  record.ImportFailed("dcn0");
  record.CopyFoundPublished("dcn1");
  record.CopyFoundPublished("dcn0");
  EXPECT_TRUE(record.importing_to_stores.empty());
  EXPECT_TRUE(record.failed_import.empty());
  EXPECT_EQ(record.StoreIds(), (Stores{"central", "dcn1"}));  // locations untouched
}

TEST(ImageRecordTransitionTest, ImportFailedMovesTheStoreToFailedOnce) {
  ImageRecord record = Active({"central"});
  record.ImportStarted({"dcn0", "dcn1"}, false);
  record.ImportFailed("dcn0");
  record.ImportFailed("dcn0");
  EXPECT_EQ(record.importing_to_stores, Stores{"dcn1"});
  EXPECT_EQ(record.failed_import, Stores{"dcn0"});
  EXPECT_FALSE(record.ImportFailedIfImporting("dcn2"));
  EXPECT_EQ(record.failed_import, Stores{"dcn0"});
  EXPECT_TRUE(record.ImportFailedIfImporting("dcn1"));
  EXPECT_EQ(record.failed_import, (Stores{"dcn0", "dcn1"}));
  EXPECT_TRUE(record.importing_to_stores.empty());
}

TEST(ImageRecordTransitionTest, CopyPublishedMakesActiveAndTheFirstSetsTheData) {
  ImageRecord record = Queued();
  record.disk_format = "qcow2";  // converted: raw is what the store holds
  record.ImportStarted({"central", "dcn0"}, true);
  VerifiedData data = Data();
  data.name = "disk.qcow2";  // the upload's file name: the unnamed image's name
  record.CopyPublished({"central", "rbd://a"}, data);
  EXPECT_EQ(record.status, ImageStatus::kActive);
  EXPECT_EQ(record.name, "disk.qcow2");
  EXPECT_EQ(record.StoreIds(), Stores{"central"});
  EXPECT_EQ(record.importing_to_stores, Stores{"dcn0"});
  EXPECT_EQ(record.size, 4096u);
  EXPECT_EQ(record.checksum, "md5");
  EXPECT_EQ(record.os_hash_algo, "sha512");
  EXPECT_EQ(record.os_hash_value, "sha512");
  EXPECT_EQ(record.chunks_xxh3, "chunks");
  EXPECT_EQ(record.disk_format, "raw");
  EXPECT_EQ(record.virtual_size, 4096u);
  EXPECT_GT(record.active_at, 0);
  int64_t first_active = record.active_at;
  // A later copy changes no data field; an old image gets the chunk digest.
  record.chunks_xxh3.clear();
  VerifiedData other = Data();
  other.md5 = "other";
  other.name = "other.raw";
  record.CopyPublished({"dcn0", "rbd://b"}, other);
  EXPECT_EQ(record.StoreIds(), (Stores{"central", "dcn0"}));
  EXPECT_EQ(record.checksum, "md5");
  EXPECT_EQ(record.name, "disk.qcow2");
  EXPECT_EQ(record.chunks_xxh3, "chunks");
  EXPECT_EQ(record.active_at, first_active);
  EXPECT_TRUE(record.importing_to_stores.empty());
}

TEST(ImageRecordTransitionTest, ImportEndedDropsWhatStillImportsWithoutFailingIt) {
  // A copy rolled back (must-succeed): the others leave importing, unfailed.
  ImageRecord copy = Active({"central"});
  copy.ImportStarted({"dcn0", "dcn1"}, false);
  copy.ImportFailed("dcn1");
  copy.ImportEnded(/*upload=*/false);
  EXPECT_TRUE(copy.importing_to_stores.empty());
  EXPECT_EQ(copy.failed_import, Stores{"dcn1"});
  EXPECT_EQ(copy.status, ImageStatus::kActive);
  // An upload that published nothing: queued, every target failed.
  ImageRecord upload = Queued();
  upload.ImportStarted({"central", "dcn0"}, true);
  upload.ImportEnded(/*upload=*/true);
  EXPECT_EQ(upload.status, ImageStatus::kQueued);
  EXPECT_EQ(upload.failed_import, (Stores{"central", "dcn0"}));
}

TEST(ImageRecordTransitionTest, ImportInterruptedFailsWhatImportedAndFixesTheStatus) {
  ImageRecord upload = Queued();
  upload.ImportStarted({"central"}, true);
  upload.ImportInterrupted();
  EXPECT_EQ(upload.status, ImageStatus::kQueued);
  EXPECT_EQ(upload.failed_import, Stores{"central"});
  ImageRecord uploading = Queued();
  uploading.UploadStarted();
  uploading.ImportInterrupted();
  EXPECT_EQ(uploading.status, ImageStatus::kQueued);
  ImageRecord copying = Active({"central"});
  copying.ImportStarted({"dcn0"}, false);
  copying.ImportInterrupted();
  EXPECT_EQ(copying.status, ImageStatus::kActive);
  EXPECT_EQ(copying.failed_import, Stores{"dcn0"});
  EXPECT_TRUE(copying.importing_to_stores.empty());
  ImageRecord half = Queued();
  half.ImportStarted({"central", "dcn0"}, true);
  half.CopyPublished({"central", "rbd://a"}, Data());
  half.status = ImageStatus::kImporting;  // as a record of an older build may be
  half.ImportInterrupted();
  EXPECT_EQ(half.status, ImageStatus::kActive);
}

TEST(ImageRecordTransitionTest, CopiesLostDropsTheirLocations) {
  ImageRecord record = Active({"central", "dcn0", "dcn1"});
  EXPECT_EQ(record.CopiesLost({"dcn0", "dcn2"}), Stores{"dcn0"});
  EXPECT_EQ(record.StoreIds(), (Stores{"central", "dcn1"}));
  ImageRecord only = Active({"central"});
  EXPECT_EQ(only.CopiesLost({"central"}), Stores{"central"});
  only.ImportInterrupted();
  EXPECT_EQ(only.status, ImageStatus::kQueued);
}

TEST(ImageRecordTransitionTest, DeleteCopyKeepsTheRules) {
  ImageRecord record = Active({"central", "dcn0"});
  EXPECT_EQ(record.DeleteCopy("dcn1", "central").code(), ENOENT);
  EXPECT_EQ(record.DeleteCopy("central", "central").code(), EPERM);
  auto removed = record.DeleteCopy("dcn0", "central");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->url, "url-dcn0");
  EXPECT_EQ(record.StoreIds(), Stores{"central"});
  EXPECT_EQ(record.DeleteCopy("central", "central").code(), EPERM);  // the last copy
  EXPECT_EQ(record.StoreIds(), Stores{"central"});
}

TEST(ImageRecordTransitionTest, CopyRestoredAndUnpublishedAreIdempotent) {
  ImageRecord record = Active({"central", "dcn0"});
  Location dcn0 = *record.FindLocation("dcn0");
  record.CopyUnpublished(dcn0);
  record.CopyUnpublished(dcn0);
  EXPECT_EQ(record.StoreIds(), Stores{"central"});
  record.CopyRestored(dcn0);
  record.CopyRestored(dcn0);
  EXPECT_EQ(record.StoreIds(), (Stores{"central", "dcn0"}));
}

}  // namespace
}  // namespace imagefs

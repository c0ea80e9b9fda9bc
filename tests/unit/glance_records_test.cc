// Unit tests of Glance's images as records and of changes as JSON
// patches (catalog/glance_records.h), and of HTTP answers as errno values
// (cloud/http_client.h).
#include "catalog/glance_records.h"

#include <gtest/gtest.h>

#include "cloud/http_client.h"

namespace imagefs {
namespace {

using nlohmann::json;

// An image as glance-api 25 answers GET /v2/images/<id>, with
// show_multiple_locations.
json ActiveImage() {
  return json::parse(R"({
    "id": "72db6f61-890b-4855-958e-c460fbf646f1", "name": "cirros", "status": "active",
    "disk_format": "raw", "container_format": "bare", "visibility": "shared",
    "size": 3145728, "virtual_size": 3145728, "checksum": "c1887f0c970afa48194adf7f5c504696",
    "protected": false, "min_ram": 0, "min_disk": 1, "owner": "a446f902",
    "os_hidden": false, "os_hash_algo": "sha512", "os_hash_value": "69dae201",
    "created_at": "2026-12-06T05:20:20Z", "updated_at": "2026-12-06T05:21:00Z",
    "locations": [
      {"url": "rbd://fsid0/images/72db6f61-890b-4855-958e-c460fbf646f1/snap",
       "metadata": {"store": "central"}},
      {"url": "rbd://fsid1/images/72db6f61-890b-4855-958e-c460fbf646f1/snap",
       "metadata": {"store": "dcn0"}}],
    "direct_url": "rbd://fsid0/images/72db6f61-890b-4855-958e-c460fbf646f1/snap",
    "tags": [], "file": "/v2/images/72db6f61-890b-4855-958e-c460fbf646f1/file",
    "schema": "/v2/schemas/image", "stores": "central,dcn0",
    "os_glance_importing_to_stores": "dcn1", "os_glance_failed_import": "",
    "os_glance_import_task": "1f0e", "hw_disk_bus": "scsi"
  })");
}

TEST(GlanceRecordsTest, AnImageIsARecordWithItsLocationsAndProperties) {
  auto record = RecordOfGlanceImage(ActiveImage(), {"a446f902", 1000});
  ASSERT_TRUE(record.ok()) << record.error().message;
  EXPECT_EQ(record->id, "72db6f61-890b-4855-958e-c460fbf646f1");
  EXPECT_EQ(record->status, ImageStatus::kActive);
  EXPECT_EQ(record->owner, 1000u);  // the token's project
  EXPECT_EQ(record->size, 3145728u);
  EXPECT_EQ(record->checksum, "c1887f0c970afa48194adf7f5c504696");
  EXPECT_EQ(record->os_hash_algo, "sha512");
  ASSERT_EQ(record->locations.size(), 2u);
  EXPECT_EQ(record->locations[1].store, "dcn0");
  EXPECT_EQ(record->StoreIds(), (std::vector<std::string>{"central", "dcn0"}));
  EXPECT_EQ(record->importing_to_stores, std::vector<std::string>{"dcn1"});
  EXPECT_TRUE(record->failed_import.empty());
  EXPECT_EQ(record->created_at, int64_t{1796534420} * 1'000'000'000);
  EXPECT_EQ(record->active_at, record->created_at);  // the files' mtime never moves
  // Custom properties, min_ram and min_disk among them; nothing Glance
  // keeps for itself.
  EXPECT_EQ(record->properties, (std::map<std::string, std::string>{
                                    {"hw_disk_bus", "scsi"}, {"min_disk", "1"}, {"min_ram", "0"}}));
}

TEST(GlanceRecordsTest, StatusesAndOwnersOfOtherProjects) {
  json image = ActiveImage();
  image["owner"] = "other";
  image["status"] = "saving";
  auto saving = RecordOfGlanceImage(image, {"a446f902", 1000});
  ASSERT_TRUE(saving.ok());
  EXPECT_EQ(saving->status, ImageStatus::kUploading);
  EXPECT_EQ(saving->owner, 65534u);
  image["status"] = "killed";
  EXPECT_EQ(RecordOfGlanceImage(image, {})->status, ImageStatus::kQueued);
  image["status"] = "pending_delete";
  EXPECT_EQ(RecordOfGlanceImage(image, {}).code(), ENOENT);
  EXPECT_EQ(RecordOfGlanceImage(json::object(), {}).code(), EIO);
  json queued = json::parse(R"({"id": "x", "status": "queued", "name": null, "size": null,
                                "disk_format": null, "locations": []})");
  auto record = RecordOfGlanceImage(queued, {});
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->name, "");
  EXPECT_FALSE(record->size);
  EXPECT_EQ(record->visibility, "shared");
}

TEST(GlanceRecordsTest, AChangeIsAPatchOfWhatChangedOnly) {
  ImageRecord before = *RecordOfGlanceImage(ActiveImage(), {"a446f902", 0});
  ImageRecord after = before;
  after.name = "cirros-0.6";
  after.is_protected = true;
  after.properties["os_distro"] = "cirros";
  after.properties["min_ram"] = "512";
  after.properties.erase("hw_disk_bus");
  after.properties["a/b"] = "slash";
  auto change = GlanceChangeOf(before, {}, after);
  ASSERT_TRUE(change.ok()) << change.error().message;
  EXPECT_EQ(change->patch, json::parse(R"([
    {"op": "replace", "path": "/name", "value": "cirros-0.6"},
    {"op": "replace", "path": "/protected", "value": true},
    {"op": "add", "path": "/a~1b", "value": "slash"},
    {"op": "replace", "path": "/min_ram", "value": 512},
    {"op": "add", "path": "/os_distro", "value": "cirros"},
    {"op": "remove", "path": "/hw_disk_bus"}])"));
  EXPECT_EQ(change->own, OwnState{});
  EXPECT_TRUE(GlanceChangeOf(before, {}, before)->patch.empty());
}

// An upload through the mount: imagefs's status and lists stay with
// imagefs until the verified copy is Glance's first location, which
// carries the validation data and the formats Glance needs.
TEST(GlanceRecordsTest, TheFirstLocationMakesTheImageActive) {
  json queued = json::parse(R"({"id": "q", "status": "queued", "locations": [],
                                "disk_format": null, "container_format": null})");
  ImageRecord glance = *RecordOfGlanceImage(queued, {});
  ImageRecord uploading = glance;
  uploading.UploadStarted();
  uploading.ImportStarted({"central", "dcn0"}, /*upload=*/true);
  auto started = GlanceChangeOf(glance, {}, uploading);
  ASSERT_TRUE(started.ok()) << started.error().message;
  EXPECT_TRUE(started->patch.empty());  // nothing Glance can hold
  EXPECT_EQ(started->own.status, ImageStatus::kImporting);
  EXPECT_EQ(started->own.importing_to_stores, (std::vector<std::string>{"central", "dcn0"}));
  EXPECT_EQ(WithOwnState(glance, started->own), uploading);  // what the mount shows

  ImageRecord published = uploading;
  VerifiedData data{3, "md5hex", "sha512hex", "chunks", "raw", 3, "disk.raw"};
  published.CopyPublished({"central", "rbd://f/images/q/snap"}, data);
  auto change = GlanceChangeOf(glance, started->own, published);
  ASSERT_TRUE(change.ok()) << change.error().message;
  // One PATCH: the upload's name and imagefs's own fields go with its data.
  EXPECT_EQ(change->patch, json::parse(R"([
    {"op": "replace", "path": "/name", "value": "disk.raw"},
    {"op": "replace", "path": "/disk_format", "value": "raw"},
    {"op": "replace", "path": "/container_format", "value": "bare"},
    {"op": "add", "path": "/imagefs_chunks_xxh3", "value": "chunks"},
    {"op": "add", "path": "/imagefs_virtual_size", "value": "3"},
    {"op": "add", "path": "/locations/-", "value": {
      "url": "rbd://f/images/q/snap", "metadata": {"store": "central"},
      "validation_data": {"checksum": "md5hex", "os_hash_algo": "sha512",
                          "os_hash_value": "sha512hex"}}}])"));
  EXPECT_FALSE(change->own.status);  // Glance says active from now on
  EXPECT_EQ(change->own.importing_to_stores, std::vector<std::string>{"dcn0"});
}

// The chunk digest, a writer's mtime and the inspected virtual size are
// Glance properties: a restarted daemon and every other mount read them
// back, and they are not the image's custom properties.
TEST(GlanceRecordsTest, ImagefsFieldsLiveInGlanceAsProperties) {
  json image = ActiveImage();
  image["virtual_size"] = nullptr;
  image["imagefs_chunks_xxh3"] = "c1";
  image["imagefs_mtime"] = "1700000000123456789";
  image["imagefs_virtual_size"] = "4096";
  ImageRecord glance = *RecordOfGlanceImage(image, {});
  EXPECT_EQ(glance.chunks_xxh3, "c1");
  EXPECT_EQ(glance.data_mtime, 1700000000123456789);
  EXPECT_EQ(glance.virtual_size, 4096u);
  EXPECT_FALSE(glance.properties.count("imagefs_chunks_xxh3"));
  EXPECT_FALSE(glance.properties.count("imagefs_mtime"));
  EXPECT_FALSE(glance.properties.count("imagefs_virtual_size"));
  // A writer's new mtime replaces it; a cleared one is removed.
  ImageRecord after = glance;
  after.data_mtime = 5;
  EXPECT_EQ(GlanceChangeOf(glance, {}, after)->patch,
            json::parse(R"([{"op": "replace", "path": "/imagefs_mtime", "value": "5"}])"));
  after.data_mtime = 0;
  EXPECT_EQ(GlanceChangeOf(glance, {}, after)->patch,
            json::parse(R"([{"op": "remove", "path": "/imagefs_mtime"}])"));
  // Glance's own virtual_size wins over the property; not a number: none.
  image["virtual_size"] = 8192u;
  image["imagefs_mtime"] = "soon";
  ImageRecord sized = *RecordOfGlanceImage(image, {});
  EXPECT_EQ(sized.virtual_size, 8192u);
  EXPECT_EQ(sized.data_mtime, 0);
  // A file dated before 1970 keeps its mtime.
  image["imagefs_mtime"] = "-86400000000001";
  EXPECT_EQ(RecordOfGlanceImage(image, {})->data_mtime, -86400000000001);
}

TEST(GlanceRecordsTest, LocationsGoByIndexAndLaterOnesWithoutValidationData) {
  ImageRecord glance = *RecordOfGlanceImage(ActiveImage(), {});
  ImageRecord after = glance;
  after.CopyUnpublished(glance.locations[1]);
  after.CopyUnpublished(glance.locations[0]);
  after.locations.push_back({"dcn1", "rbd://fsid2/images/x/snap"});
  auto change = GlanceChangeOf(glance, {}, after);
  ASSERT_TRUE(change.ok()) << change.error().message;
  EXPECT_EQ(change->patch, json::parse(R"([
    {"op": "remove", "path": "/locations/1"},
    {"op": "remove", "path": "/locations/0"},
    {"op": "add", "path": "/locations/-", "value": {
      "url": "rbd://fsid2/images/x/snap", "metadata": {"store": "dcn1"}}}])"));
}

// Size and digests go to Glance only as a first location's validation data.
TEST(GlanceRecordsTest, DigestsChangedWithoutTheFirstLocationAreRefused) {
  ImageRecord glance = *RecordOfGlanceImage(ActiveImage(), {});
  ImageRecord after = glance;
  after.checksum = "other";
  EXPECT_EQ(GlanceChangeOf(glance, {}, after).code(), EOPNOTSUPP);
}

TEST(GlanceRecordsTest, OwnStateJoinsGlancesLists) {
  ImageRecord glance = *RecordOfGlanceImage(ActiveImage(), {});  // importing dcn1 (Glance's)
  OwnState own;
  own.status = ImageStatus::kImporting;
  own.importing_to_stores = {"dcn2"};
  own.failed_import = {"dcn3"};
  ImageRecord seen = WithOwnState(glance, own);
  EXPECT_EQ(seen.status, ImageStatus::kActive);  // Glance's active wins
  EXPECT_EQ(seen.importing_to_stores, (std::vector<std::string>{"dcn1", "dcn2"}));
  EXPECT_EQ(seen.failed_import, std::vector<std::string>{"dcn3"});
  // A store that leaves imagefs's list leaves the own state, not Glance's.
  ImageRecord after = seen;
  after.ImportFailed("dcn2");
  auto change = GlanceChangeOf(glance, own, after);
  ASSERT_TRUE(change.ok());
  EXPECT_TRUE(change->patch.empty());
  EXPECT_TRUE(change->own.importing_to_stores.empty());
  EXPECT_EQ(change->own.failed_import, (std::vector<std::string>{"dcn3", "dcn2"}));
}

TEST(GlanceRecordsTest, CreateSendsTheIdAndWhatIsSet) {
  ImageRecord record;
  record.id = "4f1c9a2e-6b3d-4e8a-9c17-5d2e8b0f3a61";
  EXPECT_EQ(GlanceCreateFields(record),
            json::parse(R"({"id": "4f1c9a2e-6b3d-4e8a-9c17-5d2e8b0f3a61",
                            "visibility": "shared"})"));
  record.name = "n";
  record.properties["min_disk"] = "2";
  EXPECT_EQ(GlanceCreateFields(record)["min_disk"], 2);
}

TEST(HttpAnswersTest, StatusesAreErrnoValuesWithTheServicesReason) {
  EXPECT_EQ(ErrnoOfStatus(200), 0);
  EXPECT_EQ(ErrnoOfStatus(204), 0);
  EXPECT_EQ(ErrnoOfStatus(401), EACCES);
  EXPECT_EQ(ErrnoOfStatus(403), EACCES);
  EXPECT_EQ(ErrnoOfStatus(404), ENOENT);
  EXPECT_EQ(ErrnoOfStatus(409), EBUSY);
  EXPECT_EQ(ErrnoOfStatus(413), EFBIG);
  EXPECT_EQ(ErrnoOfStatus(500), EIO);
  EXPECT_EQ(ErrnoOfStatus(503), EIO);
  HttpResponse glance{403, {}, "403 Forbidden\n\nAttribute 'os_glance_x' is reserved.\n\n   "};
  Error refused = ErrorOfResponse(glance, "glance: change image x");
  EXPECT_EQ(refused.code, EACCES);
  EXPECT_EQ(refused.message,
            "glance: change image x: HTTP 403: Attribute 'os_glance_x' is reserved.");
  HttpResponse keystone{
      401,
      {},
      R"({"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}})"};
  EXPECT_EQ(ErrorOfResponse(keystone, "keystone").message,
            "keystone: HTTP 401: The request you have made requires authentication.");
  EXPECT_EQ(ErrorOfResponse(HttpResponse{500, {}, ""}, "x").message, "x: HTTP 500");
}

}  // namespace
}  // namespace imagefs

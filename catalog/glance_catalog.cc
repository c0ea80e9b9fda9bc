// The Glance catalog (catalog.h, OpenGlanceCatalog): records are a real
// Glance's images; leases live in a catalog of imagefs's (rados or SQLite).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <thread>

#include "catalog/catalog.h"
#include "catalog/glance_records.h"
#include "cloud/glance_client.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/time.h"

namespace imagefs {
namespace {

class GlanceCatalog final : public SharedCatalog {
 public:
  GlanceCatalog(const GlanceCatalogOptions& options, std::unique_ptr<Catalog> leases)
      : options_(options),
        http_(options.http),
        identity_(OpenIdentity(options.cloud, http_)),
        glance_(*identity_, http_),
        leases_(std::move(leases)) {}

  Status Create(const ImageRecord& record) override {
    auto created = glance_.CreateImage(GlanceCreateFields(record));
    if (!created.ok()) return created.error();
    auto created_record = RecordOf(*created);
    if (!created_record.ok()) return created_record.error();
    return Ok();
  }

  Result<ImageRecord> Get(std::string_view id) override {
    auto record = GetFromGlance(id);
    if (!record.ok()) return record.error();
    return WithOwn(*record);
  }

  Result<std::vector<std::string>> ListIds() override {
    auto listed = ListRecords();
    if (!listed.ok()) return listed.error();
    std::vector<std::string> ids;
    for (const auto& entry : *listed) ids.push_back(entry.id);
    return ids;
  }

  Result<std::vector<ListedRecord>> ListRecords() override { return ListFromGlance(""); }

  // Glance keeps no log of changes; its listing filtered by updated_at is
  // one. Each round asks for the images changed since the newest change
  // seen (less a margin: Glance's times have whole seconds, and a change
  // may commit after a later one was listed), and every `full_every` for
  // all of them, which is how deletions (absent from such a listing)
  // reach the replica. The position holds those two times, in seconds:
  // {newest change seen, last full listing}.
  Result<CatalogChanges> ChangesSince(const CatalogPosition& from) override {
    auto credentials = identity_->Current();
    if (!credentials.ok()) return credentials.error();
    CatalogChanges changes;
    changes.position.catalog = "glance " + credentials->image_endpoint;
    int64_t now = NowNanos() / kSecond;
    bool full = from.catalog != changes.position.catalog || from.seqs.size() != 2 ||
                now - static_cast<int64_t>(from.seqs[1]) >= options_.full_listing_every.count();
    int64_t newest = full ? 0 : static_cast<int64_t>(from.seqs[0]);
    std::string filter;
    if (!full) {
      filter = "updated_at=gte:" + FormatIsoTime((newest - kChangeMargin) * kSecond);
    }
    auto listed = ListFromGlance(filter);
    if (!listed.ok()) return listed.error();
    changes.complete = full;
    changes.names_every_change = full;
    for (const auto& entry : *listed) {
      if (!entry.record.ok()) continue;  // not one imagefs can show
      newest = std::max(newest, entry.record->updated_at / kSecond);
      changes.records.emplace_back(entry.id, EncodeRecord(*entry.record));
    }
    changes.position.seqs = {static_cast<uint64_t>(newest),
                             full ? static_cast<uint64_t>(now) : from.seqs[1]};
    return changes;
  }

  // Glance has no conditional update: the record is read, changed and the
  // difference sent as one JSON patch naming only what changed, so that
  // changes of other fields made meanwhile (by Glance or another client)
  // stay. imagefs's own changes of one image are serialised by its lease;
  // what Glance cannot hold is kept here (OwnState), and only when this
  // change changed it.
  //
  // A change of imagefs's own state alone sends nothing to Glance: it is
  // decided on Glance's record as this catalog read or stored it at most
  // kSeenFor ago (an upload marks itself started, then importing, then
  // ended: three reads fewer). Whatever would go to Glance, or is refused,
  // is decided again on a fresh read.
  Result<ImageRecord> Update(std::string_view id, const Mutation& mutate) override {
    OwnState own = OwnOf(id);
    if (auto seen = SeenLately(id)) {
      ImageRecord after = WithOwnState(*seen, own);
      if (mutate(after).ok()) {
        auto change = GlanceChangeOf(*seen, own, after);
        if (change.ok() && change->patch.empty()) {
          KeepOwn(id, own, change->own);
          return WithOwnState(*seen, change->own);
        }
      }
    }
    auto glance = GetFromGlance(id);
    if (!glance.ok()) return glance.error();
    own = OwnOf(id);
    ImageRecord after = WithOwnState(*glance, own);
    IMAGEFS_RETURN_IF_ERROR(mutate(after));
    auto change = GlanceChangeOf(*glance, own, after);
    if (!change.ok()) return change.error();
    ImageRecord stored = *glance;
    if (!change->patch.empty()) {
      auto patched = glance_.PatchImage(std::string(id), change->patch);
      if (!patched.ok()) {
        // Glance's 403 is a refusal of what was asked: EPERM.
        if (patched.code() == EACCES) return Error{EPERM, patched.error().message};
        return patched.error();
      }
      auto record = RecordOf(*patched);
      if (!record.ok()) return record.error();
      stored = *record;
      Saw(stored);
    }
    KeepOwn(id, own, change->own);
    return WithOwnState(stored, change->own);
  }

  Status Remove(std::string_view id) override {
    IMAGEFS_RETURN_IF_ERROR(glance_.DeleteImage(std::string(id)));
    MutexLock lock(&mutex_);
    own_.erase(std::string(id));
    seen_.erase(std::string(id));
    return Ok();
  }

  // Whether Glance answers this identity: one image listed at most.
  Status Probe() {
    auto listed = glance_.Call("GET", "/v2/images?limit=1", "", "", "list images");
    if (!listed.ok()) return listed.error();
    return Ok();
  }

  CatalogTraits Traits() const override { return GlanceCatalogTraits(options_); }

  // POST /v2/images/<id>/import, method copy-image, then Glance's own
  // import lists say when each store is done (in `stores`) or failed (in
  // os_glance_failed_import).
  Status CopyItself(std::string_view id, const std::vector<std::string>& stores,
                    bool all_must_succeed) override {
    std::string image(id);
    nlohmann::json body{{"method", {{"name", "copy-image"}}},
                        {"stores", stores},
                        {"all_stores_must_succeed", all_must_succeed}};
    std::string what = fmt::format("copy-image of image {} to {}", id, fmt::join(stores, ","));
    auto asked = glance_.Call("POST", "/v2/images/" + image + "/import", body.dump(),
                              "application/json", what);
    if (!asked.ok()) return asked.error();
    auto deadline = std::chrono::steady_clock::now() + options_.copy_timeout;
    while (true) {
      auto record = GetFromGlance(id);
      if (!record.ok()) return record.error();
      std::vector<std::string> done, failed;
      bool running = false;
      for (const auto& store : stores) {
        if (record->HasStore(store)) {
          done.push_back(store);
        } else if (std::find(record->failed_import.begin(), record->failed_import.end(), store) !=
                   record->failed_import.end()) {
          failed.push_back(store);
        } else {
          running = true;
        }
      }
      if (!running) {
        if (failed.empty() || (!all_must_succeed && !done.empty())) {
          Log(LogLevel::kInfo, "image {}: Glance copied it to {}{}", id, fmt::join(done, ","),
              failed.empty() ? "" : fmt::format("; {} failed", fmt::join(failed, ",")));
          return Ok();
        }
        return Fail(EIO, "image {}: Glance's copy-image to {} failed", id, fmt::join(failed, ","));
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return Fail(EIO, "image {}: Glance's copy-image to {} did not end within {} s", id,
                    fmt::join(stores, ","), options_.copy_timeout.count());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  // Glance refuses locations of the schemes it restricts (file,
  // filesystem, swift+config, sql: glance/common/store_utils.py).
  Status CheckLocation(std::string_view id, std::string_view url) override {
    for (std::string_view scheme : {"file:", "filesystem:", "swift+config:", "sql:"}) {
      if (url.starts_with(scheme)) {
        return Fail(EOPNOTSUPP,
                    "image {}: Glance accepts no {}// location ({}); imagefs writes data into "
                    "a Glance catalog's rbd stores only",
                    id, scheme, url);
      }
    }
    return Ok();
  }

  Status RemoveCopy(std::string_view id, std::string_view store) override {
    return glance_.DeleteFromStore(std::string(store), std::string(id));
  }

  // Glance's own import lock (os_glance_import_task, held while its
  // copy-image or import of the image runs) keeps imagefs off the image
  // too: EBUSY, naming the task.
  Status AcquireLease(const Lease& lease) override {
    auto image = glance_.GetImage(lease.image_id);
    if (image.ok()) {
      std::string task = image->value("os_glance_import_task", "");
      if (!task.empty()) {
        return Fail(EBUSY, "image {}: Glance's import task {} holds it (os_glance_import_task)",
                    lease.image_id, task);
      }
    } else if (image.code() != ENOENT) {  // recovery leases ids whose image is gone
      return image.error();
    }
    return leases_->AcquireLease(lease);
  }
  Status RenewLease(std::string_view image_id, std::string_view holder,
                    int64_t expires_at) override {
    return leases_->RenewLease(image_id, holder, expires_at);
  }
  Status ReleaseLease(std::string_view image_id, std::string_view holder) override {
    return leases_->ReleaseLease(image_id, holder);
  }
  Result<std::optional<Lease>> GetLease(std::string_view image_id) override {
    return leases_->GetLease(image_id);
  }
  Result<std::vector<Lease>> ListStaleLeases(int64_t now) override {
    return leases_->ListStaleLeases(now);
  }

 private:
  static constexpr int64_t kSecond = 1'000'000'000;
  static constexpr int64_t kChangeMargin = 5;  // seconds

  Result<GlanceOwnership> Ownership() {
    auto project = glance_.ProjectId();
    if (!project.ok()) return project.error();
    return GlanceOwnership{*project, options_.own_uid};
  }

  // How long a record read or stored here may decide a change of
  // OwnState alone (Update).
  static constexpr std::chrono::milliseconds kSeenFor{500};

  // Glance's record of the image, as Glance has it (no OwnState).
  Result<ImageRecord> GetFromGlance(std::string_view id) {
    auto image = glance_.GetImage(std::string(id));
    if (!image.ok()) {
      if (image.code() == ENOENT) Forget(id);
      return image.error();
    }
    auto record = RecordOf(*image);
    if (record.ok()) Saw(*record);
    return record;
  }

  void Saw(const ImageRecord& record) {
    auto now = std::chrono::steady_clock::now();
    MutexLock lock(&mutex_);
    if (seen_.size() >= 256) {
      std::erase_if(seen_, [&](const auto& entry) { return now - entry.second.at > kSeenFor; });
    }
    seen_[record.id] = {record, now};
  }
  void Forget(std::string_view id) {
    MutexLock lock(&mutex_);
    seen_.erase(std::string(id));
  }
  std::optional<ImageRecord> SeenLately(std::string_view id) {
    MutexLock lock(&mutex_);
    auto found = seen_.find(std::string(id));
    if (found == seen_.end()) return std::nullopt;
    if (std::chrono::steady_clock::now() - found->second.at > kSeenFor) return std::nullopt;
    return found->second.record;
  }

  // Keeps `after` as the image's OwnState, where it changed from `before`.
  void KeepOwn(std::string_view id, const OwnState& before, const OwnState& after) {
    if (after == before) return;
    MutexLock lock(&mutex_);
    if (after == OwnState{}) {
      own_.erase(std::string(id));
    } else {
      own_[std::string(id)] = after;
    }
  }

  // The images `filter` selects (all for ""), in id order, with OwnState.
  Result<std::vector<ListedRecord>> ListFromGlance(std::string_view filter) {
    auto images = glance_.ListImages(filter);
    if (!images.ok()) return images.error();
    auto ownership = Ownership();
    if (!ownership.ok()) return ownership.error();
    std::vector<ListedRecord> listed;
    for (const auto& image : *images) {
      auto record = RecordOfGlanceImage(image, *ownership);
      if (!record.ok() && record.code() == ENOENT) continue;  // being deleted
      std::string id = record.ok() ? record->id : image.value("id", "");
      listed.push_back({std::move(id), std::move(record)});
    }
    std::sort(listed.begin(), listed.end(),
              [](const ListedRecord& a, const ListedRecord& b) { return a.id < b.id; });
    return WithOwn(std::move(listed));
  }

  OwnState OwnOf(std::string_view id) {
    MutexLock lock(&mutex_);
    auto found = own_.find(std::string(id));
    return found == own_.end() ? OwnState{} : found->second;
  }

  ImageRecord WithOwn(ImageRecord record) {
    OwnState own = OwnOf(record.id);  // before the record is moved from
    return WithOwnState(std::move(record), own);
  }

  std::vector<ListedRecord> WithOwn(std::vector<ListedRecord> listed) {
    MutexLock lock(&mutex_);
    if (own_.empty()) return listed;
    for (auto& entry : listed) {
      auto found = own_.find(entry.id);
      if (entry.record.ok() && found != own_.end()) {
        entry.record = WithOwnState(std::move(entry.record).value(), found->second);
      }
    }
    return listed;
  }

  Result<ImageRecord> RecordOf(const nlohmann::json& image) {
    auto ownership = Ownership();
    if (!ownership.ok()) return ownership.error();
    return RecordOfGlanceImage(image, *ownership);
  }

  const GlanceCatalogOptions options_;
  HttpClient http_;
  std::unique_ptr<Identity> identity_;
  GlanceClient glance_;
  std::unique_ptr<Catalog> leases_;
  Mutex mutex_;
  std::map<std::string, OwnState> own_ GUARDED_BY(mutex_);
  struct Seen {
    ImageRecord record;  // Glance's, without OwnState
    std::chrono::steady_clock::time_point at;
  };
  std::map<std::string, Seen> seen_ GUARDED_BY(mutex_);  // what Update may decide on
};

}  // namespace

CatalogTraits GlanceCatalogTraits(const GlanceCatalogOptions& options) {
  return {.removes_data = true, .copies_itself = options.glance_copies, .shares_stores = true};
}

Result<std::unique_ptr<SharedCatalog>> OpenGlanceCatalog(const GlanceCatalogOptions& options) {
  auto leases = options.open_leases ? options.open_leases() : OpenSqliteCatalog(options.lease_path);
  if (!leases.ok()) return leases.error();
  auto catalog = std::make_unique<GlanceCatalog>(options, std::move(leases).value());
  // One page of one image proves the cloud answers and the credentials
  // hold; the whole listing waits for the first `ls`.
  IMAGEFS_RETURN_IF_ERROR(catalog->Probe());
  Log(LogLevel::kInfo, "catalog: Glance of cloud {} ({})", options.cloud.name,
      options.cloud.source);
  return std::unique_ptr<SharedCatalog>(std::move(catalog));
}

}  // namespace imagefs

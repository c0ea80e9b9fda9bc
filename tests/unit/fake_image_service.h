// FakeImageService: an in-memory ImageService for the FUSE layer's unit
// tests (fs/image_tree.h, fs/open_files.h). Records live in a map the test
// arranges; writes stage in a temporary directory; a commit makes the
// image active in the written store at once; everything answers on the
// caller's thread. Calls are recorded for the tests to check.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/uuid.h"
#include "workflow/image_service.h"

namespace imagefs {

class FakeImageService final : public ImageService {
 public:
  explicit FakeImageService(std::string staging_dir) : staging_dir_(std::move(staging_dir)) {}

  // The record of an active image with copies in `sites`, owned by `owner`.
  ImageRecord& AddActive(const std::string& id, std::vector<std::string> sites,
                         uint32_t owner = 1000, uint64_t size = 3) {
    ImageRecord& record = records[id];
    record.id = id;
    record.owner = owner;
    record.status = ImageStatus::kActive;
    record.size = size;
    for (const auto& site : sites) record.locations.push_back({site, "file:///" + site});
    copies[id] = std::string(size, 'x');
    return record;
  }

  std::map<std::string, ImageRecord> records;
  std::map<std::string, std::string> copies;  // image -> its data in every store
  std::vector<std::shared_ptr<StagedWrite>> committed;
  std::vector<std::shared_ptr<StagedWrite>> discarded;
  std::vector<std::string> deleted;  // "<image>" or "<image>/<site>"
  std::vector<std::string> moved;    // "<image>/<from>-><to>"
  std::vector<ImportRequest> imports;
  std::optional<Error> commit_failure;  // the next commits fail with it
  CatalogHealth catalog_health;         // what CatalogState() says

  const std::vector<std::string>& store_ids() const override { return stores_; }
  bool HasStore(std::string_view site) const override {
    return std::find(stores_.begin(), stores_.end(), site) != stores_.end();
  }
  bool IsAuthorized(const Caller& caller, const ImageRecord& record) const override {
    return caller.uid == 0 || caller.uid == record.owner;
  }

  Result<ImageRecord> GetImage(std::string_view id) override {
    auto it = records.find(std::string(id));
    if (it == records.end()) return Fail(ENOENT, "image {}: not found", id);
    return it->second;
  }
  Result<std::vector<ListedRecord>> ListImageRecords() override {
    std::vector<ListedRecord> listed;
    for (const auto& [id, record] : records) listed.push_back({id, record});
    return listed;
  }

  CatalogHealth CatalogState() override { return catalog_health; }
  std::string ImportProgress(std::string_view) override { return "{}"; }
  std::string PlacementOf(const ImageRecord&) override { return ""; }
  std::string PlacementStateOf(const ImageRecord&) override { return "{}"; }
  std::vector<std::pair<std::string, std::string>> StoreInfo(std::string_view site) override {
    return {{"id", std::string(site)}, {"type", "fake"}};
  }
  void MeasureStore(std::string_view site, Measured done) override {
    if (site.empty()) site = stores_.front();
    done(StoreCapacity{.total_bytes = uint64_t{1} << 30,
                       .available_bytes = site == "central" ? uint64_t{1} << 29 : 0});
  }

  Status CreateImage(const Caller& caller, std::string_view id) override {
    if (!IsUuid(id)) return Fail(EINVAL, "'{}' is not an image id", id);
    if (records.count(std::string(id))) return Fail(EEXIST, "image {} exists", id);
    ImageRecord& record = records[std::string(id)];
    record.id = id;
    record.owner = caller.uid;
    return Ok();
  }
  Status SetProperty(const Caller& caller, std::string_view id, std::string_view name,
                     std::string_view value) override {
    auto it = records.find(std::string(id));
    if (it == records.end()) return Fail(ENOENT, "image {}: not found", id);
    if (!IsAuthorized(caller, it->second)) return Fail(EACCES, "image {}: not yours", id);
    return SetUserProperty(it->second, name, value);
  }
  Status RemoveProperty(const Caller&, std::string_view id, std::string_view name) override {
    auto it = records.find(std::string(id));
    if (it == records.end()) return Fail(ENOENT, "image {}: not found", id);
    if (it->second.properties.erase(std::string(name)) == 0) return Fail(ENODATA, "no {}", name);
    return Ok();
  }

  Status StartImport(const Caller&, std::string_view, const ImportRequest& request,
                     Done done) override {
    imports.push_back(request);
    if (done) done(Ok());
    return Ok();
  }

  Result<std::shared_ptr<StagedWrite>> BeginWrite(const Caller& caller, std::string_view id,
                                                  std::string_view site) override {
    auto record = GetImage(id);
    if (!record.ok()) return record.error();
    if (!IsAuthorized(caller, *record)) return Fail(EACCES, "image {}: not yours", id);
    if (record->HasStore(site)) return Fail(EEXIST, "image {}: {} holds a copy", id, site);
    return StagedWrite::Create(staging_dir_, std::string(id), std::string(site), nullptr, budget_);
  }
  void CommitWrite(std::shared_ptr<StagedWrite> write, Done done) override {
    write->MarkCommitted();
    committed.push_back(write);
    if (commit_failure) return done(*commit_failure);
    ImageRecord& record = records[write->image_id()];
    record.status = ImageStatus::kActive;
    record.size = write->Size();
    record.locations.push_back({write->site(), "file:///" + write->site()});
    done(Ok());
  }

  void DiscardWrite(std::shared_ptr<StagedWrite> write, Done done) override {
    write->Discard();
    discarded.push_back(write);
    if (done) done(Ok());
  }

  void DeleteCopy(const Caller&, std::string_view id, std::string_view site, Done done) override {
    deleted.push_back(fmt::format("{}/{}", id, site));
    done(Ok());
  }
  Status SetFileTime(const Caller&, std::string_view id, int64_t nanos) override {
    auto it = records.find(std::string(id));
    if (it == records.end()) return Fail(ENOENT, "image {}: not found", id);
    it->second.data_mtime = nanos;
    return Ok();
  }
  void MoveCopy(const Caller&, std::string_view id, std::string_view from, std::string_view to,
                Done done) override {
    moved.push_back(fmt::format("{}/{}->{}", id, from, to));
    done(Ok());
  }
  void DeleteImage(const Caller&, std::string_view id, Done done) override {
    deleted.push_back(std::string(id));
    records.erase(std::string(id));
    done(Ok());
  }

  Result<std::unique_ptr<StoreReader>> OpenCopy(const Caller&, std::string_view id,
                                                std::string_view site) override {
    auto record = GetImage(id);
    if (!record.ok()) return record.error();
    if (!record->HasStore(site)) return Fail(ENOENT, "image {}: no copy in {}", id, site);
    return std::unique_ptr<StoreReader>(std::make_unique<Reader>(copies[std::string(id)]));
  }
  void OpenCopyAsync(const Caller& caller, std::string_view id, std::string_view site,
                     Opened done) override {
    done(OpenCopy(caller, id, site));
  }
  void RunAtStore(std::string_view, std::function<void()> job) override { job(); }
  void RunAtCatalog(std::function<void()> job) override { job(); }
  void RunForInspection(std::function<void()> job) override { job(); }
  void ReturnIdleMemory() override {}

  Status Recover() override { return Ok(); }
  void RecoverInBackground(Done done) override {
    if (done) done(Ok());
  }
  void Shutdown() override {}

 private:
  class Reader final : public StoreReader {
   public:
    explicit Reader(std::string data) : data_(std::move(data)) {}
    uint64_t size() const override { return data_.size(); }
    Result<size_t> ReadAt(uint64_t offset, std::span<char> buffer) override {
      if (offset >= data_.size()) return 0;
      size_t count = std::min<size_t>(buffer.size(), data_.size() - offset);
      std::copy_n(data_.data() + offset, count, buffer.data());
      return count;
    }
    void ReadAtAsync(uint64_t offset, std::span<char> buffer, ReadDone done) override {
      done(ReadAt(offset, buffer));
    }
    Result<std::vector<Extent>> DataExtents() override {
      return std::vector<Extent>{{0, data_.size()}};
    }

   private:
    std::string data_;
  };

  std::string staging_dir_;
  StagingBudget budget_{0};
  std::vector<std::string> stores_{"central", "dcn0"};
};

}  // namespace imagefs

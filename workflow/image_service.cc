// ImageServiceImpl: the public interface of the image service, built from
// its pieces (workflow/service_core.h draws them): it checks, plans on the
// caller's thread, and runs the rest on the service's threads.
#include "workflow/image_service.h"

#include <filesystem>

#include "common/log.h"
#include "common/time.h"
#include "common/uuid.h"
#include "workflow/deletes.h"
#include "workflow/import_planner.h"
#include "workflow/import_runner.h"
#include "workflow/placement.h"
#include "workflow/recovery.h"
#include "workflow/service_core.h"

namespace imagefs {
namespace {

class ImageServiceImpl final : public ImageService {
 public:
  explicit ImageServiceImpl(Options options)
      : core_(std::move(options)),
        planner_(core_),
        runner_(core_),
        deletes_(core_),
        recovery_(core_),
        placement_(core_, [this](const std::string& id, const std::vector<std::string>& stores,
                                 Placement::StoreFailed failed, Done done) {
          return StartPlacementCopy(id, stores, std::move(failed), std::move(done));
        }) {
    recovery_.StartSweeper();
    placement_.Start();
  }
  ~ImageServiceImpl() override { Shutdown(); }

  const std::vector<std::string>& store_ids() const override { return core_.store_ids(); }
  bool HasStore(std::string_view site) const override { return core_.HasStore(site); }

  std::vector<std::pair<std::string, std::string>> StoreInfo(std::string_view site) override {
    if (!core_.HasStore(site)) return {};
    StoreFacts facts = core_.StoreAt(site).Facts();
    auto description = core_.options().store_descriptions.find(std::string(site));
    std::vector<std::pair<std::string, std::string>> info{
        {"id", std::string(site)},
        {"type", facts.type},
        {"default", site == core_.options().central ? "true" : "false"},
        {"description", description == core_.options().store_descriptions.end()
                            ? std::string()
                            : description->second}};
    info.insert(info.end(), facts.details.begin(), facts.details.end());
    return info;
  }

  void MeasureStore(std::string_view site, Measured done) override {
    if (site.empty()) site = core_.options().central;
    if (!core_.HasStore(site)) return done(Fail(ENOENT, "no store {}", site));
    core_.RunAtStore(site, [this, site = std::string(site), done = std::move(done)] {
      auto capacity = core_.StoreAt(site).Capacity();
      if (!capacity.ok()) {
        return done(Error{EIO, fmt::format("df of store {}: {}", site, capacity.error().message)});
      }
      done(capacity);
    });
  }
  bool IsAuthorized(const Caller& caller, const ImageRecord& record) const override {
    return core_.IsAuthorized(caller, record);
  }

  Result<ImageRecord> GetImage(std::string_view id) override { return core_.catalog().Inspect(id); }
  Result<std::vector<ListedRecord>> ListImageRecords() override {
    return core_.catalog().InspectAll();
  }
  CatalogHealth CatalogState() override { return core_.catalog().Health(); }
  std::string ImportProgress(std::string_view id) override {
    return core_.ProgressOf(std::string(id));
  }
  std::string PlacementOf(const ImageRecord& record) override {
    return placement_.RuleOf(record).Format();
  }
  std::string PlacementStateOf(const ImageRecord& record) override {
    return placement_.StateOf(record);
  }

  Status CreateImage(const Caller& caller, std::string_view id) override {
    if (!IsUuid(id)) {
      return Fail(EINVAL, "'{}' is not an image id (lower-case UUID expected)", id);
    }
    ImageRecord record;
    record.id = id;
    record.owner = caller.uid;
    record.created_at = record.updated_at = NowNanos();
    IMAGEFS_RETURN_IF_ERROR(core_.catalog().Create(record));
    Log(LogLevel::kInfo, "image {}: created by uid {}", id, caller.uid);
    return Ok();
  }

  Status SetProperty(const Caller& caller, std::string_view id, std::string_view name,
                     std::string_view value) override {
    auto updated = core_.catalog().Update(id, [&](ImageRecord& record) -> Status {
      if (IsReservedProperty(name)) {
        return Fail(EPERM, "image {}: property '{}' is reserved", id, name);
      }
      IMAGEFS_RETURN_IF_ERROR(core_.CheckAuthorized(caller, record, "set properties of"));
      // Glance's policy: making an image public is for admins.
      if (name == "visibility" && value == "public" && !core_.IsAdmin(caller)) {
        return Fail(EACCES, "image {}: uid {} may not make it public (admins only)", id,
                    caller.uid);
      }
      if (name == kPlacementProperty) {
        auto rule = ParsePlacement(value, core_.store_ids());
        if (!rule.ok()) return Fail(EINVAL, "image {}: {}", id, rule.error().message);
      }
      return SetUserProperty(record, name, value);
    });
    if (!updated.ok()) return updated.error();
    if (name == kPlacementProperty) placement_.Wake();
    return Ok();
  }

  Status SetFileTime(const Caller& caller, std::string_view id, int64_t nanos) override {
    auto updated = core_.catalog().Update(id, [&](ImageRecord& record) -> Status {
      IMAGEFS_RETURN_IF_ERROR(core_.CheckAuthorized(caller, record, "set the file time of"));
      record.data_mtime = nanos;
      return Ok();
    });
    if (!updated.ok()) return updated.error();
    return Ok();
  }

  Status RemoveProperty(const Caller& caller, std::string_view id, std::string_view name) override {
    auto updated = core_.catalog().Update(id, [&](ImageRecord& record) -> Status {
      if (IsReservedProperty(name) || IsSettableField(name)) {
        return Fail(EPERM, "image {}: property '{}' cannot be removed", id, name);
      }
      IMAGEFS_RETURN_IF_ERROR(core_.CheckAuthorized(caller, record, "remove properties of"));
      if (record.properties.erase(std::string(name)) == 0) {
        return Fail(ENODATA, "image {}: no property '{}'", id, name);
      }
      return Ok();
    });
    if (!updated.ok()) return updated.error();
    if (name == kPlacementProperty) placement_.Wake();  // the default applies again
    return Ok();
  }

  Status StartImport(const Caller& caller, std::string_view id, const ImportRequest& request,
                     Done done) override {
    auto planned = planner_.PlanRequest(caller, id, request);
    if (!planned.ok()) return planned.error();
    std::shared_ptr<ImportPlan> plan = std::move(planned).value();
    if (!plan) {
      if (done) done(Ok());
      return Ok();
    }
    bool download = request.method == ImportRequest::Method::kWebDownload;
    if (!download && core_.catalog().Traits().copies_itself) {
      // The catalog copies (Glance's copy-image): imagefs's rules were
      // checked and its lease is held; the catalog's own import lists say
      // what runs.
      Log(LogLevel::kInfo, "image {}: copy-image to {} by the catalog ({})", id,
          fmt::join(plan->targets, ","),
          plan->must_succeed ? "all must succeed" : "failures allowed");
      Run(done, [this, plan = std::move(plan)]() mutable {
        Status copied =
            core_.catalog().CopyItself(plan->image_id, plan->targets, plan->must_succeed);
        plan->Close();
        return copied;
      });
      return Ok();
    }
    return Launch(std::move(plan), download ? request.uri : std::string(), done);
  }

  Result<std::shared_ptr<StagedWrite>> BeginWrite(const Caller& caller, std::string_view id,
                                                  std::string_view site) override {
    return planner_.BeginWrite(caller, id, site);
  }

  void CommitWrite(std::shared_ptr<StagedWrite> write, Done done) override {
    // Refused before it is marked committed: the write stays open, and the
    // mount's stop discards it.
    if (shut_down_.load()) return done(Fail(ESHUTDOWN, "the image service is shut down"));
    if (!write->MarkCommitted()) {
      done(Fail(EBADF, "image {}: data was already committed", write->image_id()));
      return;
    }
    // An image just active is placed at once, not at the next round.
    Done placed = [this, done = std::move(done)](Status status) {
      if (status.ok()) placement_.Wake();
      done(std::move(status));
    };
    Run(placed, [this, write]() mutable {
      auto plan = std::make_unique<ImportPlan>();
      Status prepared = planner_.PlanCommit(write, *plan);
      if (prepared.ok()) prepared = runner_.Begin(*plan);
      if (!prepared.ok() && plan->lease && !plan->lease->lost()) {
        planner_.SettleUnimportedWrite(write->image_id(), write->site());
      }
      Status ran = prepared.ok() ? runner_.Run(*plan) : prepared;
      plan->Close();  // the lease and the data go before the caller hears
      write.reset();
      return ran;
    });
  }

  void DiscardWrite(std::shared_ptr<StagedWrite> write, Done done) override {
    std::string site = write->site();
    core_.RunAtStore(site, [write = std::move(write), done = std::move(done)] {
      write->Discard();
      if (done) done(Ok());
    });
  }

  void DeleteCopy(const Caller& caller, std::string_view id, std::string_view site,
                  Done done) override {
    Run(done, [this, caller, image = std::string(id), site = std::string(site)] {
      return deletes_.DeleteCopy(caller, image, site);
    });
  }

  void MoveCopy(const Caller& caller, std::string_view id, std::string_view from,
                std::string_view to, Done done) override {
    std::string image(id), source(from), target(to);
    auto record = core_.catalog().Get(image);
    if (!record.ok()) return done(record.error());
    if (!record->HasStore(source) || !core_.HasStore(target)) {
      return done(Fail(ENOENT, "image {}: move from {} to {}: no such copy or store", image, source,
                       target));
    }
    if (source == core_.options().central) {
      return done(Fail(EPERM,
                       "image {}: the copy in {} cannot move: a copy always stays at central "
                       "(copy it to {} instead)",
                       image, source, target));
    }
    if (Status allowed = core_.CheckAuthorized(caller, *record, "move"); !allowed.ok()) {
      return done(allowed);
    }
    auto remove_source = [this, caller, image, source, target, done](Status copied) {
      if (!copied.ok()) return done(copied);
      Run(done, [this, caller, image, source, target] {
        Log(LogLevel::kInfo, "image {}: moving from {} to {}: copied, removing the source", image,
            source, target);
        return deletes_.DeleteCopy(caller, image, source);
      });
    };
    if (record->HasStore(target)) return remove_source(Ok());
    ImportRequest request;
    request.stores = {target};
    request.all_stores_must_succeed = true;
    Status started = StartImport(caller, image, request, remove_source);
    if (!started.ok()) done(started);
  }

  void DeleteImage(const Caller& caller, std::string_view id, Done done) override {
    Run(done,
        [this, caller, image = std::string(id)] { return deletes_.DeleteImage(caller, image); });
  }

  Result<std::unique_ptr<StoreReader>> OpenCopy(const Caller& caller, std::string_view id,
                                                std::string_view site) override {
    auto record = core_.catalog().Inspect(id);
    if (!record.ok()) return record.error();
    if (!record->ReadableByAll() && !core_.IsAuthorized(caller, *record)) {
      return Fail(EACCES, "image {}: uid {} may not read it ({}, owner is uid {})", id, caller.uid,
                  record->visibility, record->owner);
    }
    return core_.OpenPublishedCopy(*record, site);
  }

  void OpenCopyAsync(const Caller& caller, std::string_view id, std::string_view site,
                     Opened done) override {
    RunAtStore(site, [this, caller, id = std::string(id), site = std::string(site),
                      done = std::move(done)] { done(OpenCopy(caller, id, site)); });
  }

  void RunAtStore(std::string_view site, std::function<void()> job) override {
    core_.RunAtStore(site, std::move(job));
  }
  void RunAtCatalog(std::function<void()> job) override { core_.RunAtCatalog(std::move(job)); }
  void RunForInspection(std::function<void()> job) override {
    core_.RunForInspection(std::move(job));
  }
  void ReturnIdleMemory() override { core_.ReturnIdleMemory(); }

  Status Recover() override { return recovery_.RecoverAll(); }
  void RecoverInBackground(Done done) override { recovery_.RecoverInBackground(std::move(done)); }

  void Shutdown() override {
    if (shutting_down_.exchange(true)) return;
    placement_.Stop();
    recovery_.StopSweeper();
    // Changes asked before the stop (a written file's close) still start
    // their commits, which are then waited for.
    core_.JoinCatalogThreads();
    shut_down_ = true;
    core_.JoinThreads();
  }

 private:
  // A placement copy (workflow/placement.h): copy-image to `stores` as the
  // daemon, failures allowed, stores that hold the image left out.
  Status StartPlacementCopy(const std::string& id, const std::vector<std::string>& stores,
                            Placement::StoreFailed failed, Done done) {
    ImportRequest request;
    request.stores = stores;
    request.skip_holders = true;
    Caller daemon{.daemon = true};
    if (core_.catalog().Traits().copies_itself) return StartImport(daemon, id, request, done);
    auto planned = planner_.PlanRequest(daemon, id, request);
    if (!planned.ok()) return planned.error();
    std::shared_ptr<ImportPlan> plan = std::move(planned).value();
    if (!plan) {
      done(Ok());
      return Ok();
    }
    plan->store_failed = std::move(failed);
    plan->wait_for_targets = false;  // placement probes a store that does not answer
    return Launch(std::move(plan), "", done);
  }

  // Begins a planned import (a web-download from `uri` when not empty)
  // and runs it on a worker.
  Status Launch(std::shared_ptr<ImportPlan> plan, const std::string& uri, const Done& done) {
    if (Status begun = runner_.Begin(*plan); !begun.ok()) {
      plan->Close();
      return begun;
    }
    bool download = !uri.empty();
    Log(LogLevel::kInfo, "image {}: {} from {} to {} ({})", plan->image_id,
        download ? "web-download" : "copy-image", download ? uri : plan->source_store,
        fmt::join(plan->targets, ","),
        plan->must_succeed ? "all must succeed" : "failures allowed");
    // The plan goes with the job alone: its lease is released before
    // `done` runs, so the caller's next operation does not find it busy.
    Run(done, [this, plan = std::move(plan), uri]() mutable {
      if (!uri.empty()) planner_.Fetch(*plan, uri);
      Status ran = runner_.Run(*plan);
      plan->Close();
      return ran;
    });
    return Ok();
  }

  // Runs `work` on a worker and tells `done` its status (ESHUTDOWN once
  // the service is shut down).
  void Run(const Done& done, std::function<Status()> work) {
    if (shut_down_.load()) {
      if (done) done(Fail(ESHUTDOWN, "the image service is shut down"));
      return;
    }
    core_.Post([done, work = std::move(work)] {
      Status status = work();
      if (done) done(std::move(status));
    });
  }

  ServiceCore core_;
  ImportPlanner planner_;
  ImportRunner runner_;
  Deletes deletes_;
  Recovery recovery_;
  Placement placement_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> shut_down_{false};  // later jobs get ESHUTDOWN
};

}  // namespace

Result<std::unique_ptr<ImageService>> ImageService::Create(Options options) {
  if (!options.catalog) return Fail(EINVAL, "image service needs a catalog");
  bool has_central = false;
  for (const auto& store : options.stores) has_central |= store->id() == options.central;
  if (!has_central) return Fail(EINVAL, "central store '{}' is not configured", options.central);
  std::vector<std::string> configured;
  for (const auto& store : options.stores) configured.push_back(store->id());
  if (Status placed = options.placement.CheckStores(configured); !placed.ok()) {
    return Fail(EINVAL, "[imagefs] {}", placed.error().message);
  }
  if (options.placement_parallel < 1) return Fail(EINVAL, "placement_parallel must be at least 1");
  std::error_code error;
  std::filesystem::create_directories(options.staging_dir, error);
  if (error) {
    return Fail(EIO, "cannot create staging directory {}: {}", options.staging_dir,
                error.message());
  }
  // Staged data of a previous run has no writer any more.
  for (const auto& entry : std::filesystem::directory_iterator(options.staging_dir, error)) {
    std::filesystem::remove_all(entry.path(), error);
  }
  return std::unique_ptr<ImageService>(std::make_unique<ImageServiceImpl>(std::move(options)));
}

}  // namespace imagefs

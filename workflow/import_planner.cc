// The plan of each import, from each source (workflow/import_planner.h).
#include "workflow/import_planner.h"

#include "common/log.h"
#include "workflow/web_download.h"

namespace imagefs {

Result<std::shared_ptr<ImportPlan>> ImportPlanner::PlanRequest(const Caller& caller,
                                                               std::string_view id,
                                                               const ImportRequest& request) {
  bool download = request.method == ImportRequest::Method::kWebDownload;
  if (download) {
    Status allowed = CheckImportUri(core_.options().import_filter, request.uri);
    if (!allowed.ok()) {
      return Error{allowed.code(), fmt::format("image {}: {}", id, allowed.error().message)};
    }
  }
  std::string_view action = download ? "import into" : "copy";
  return core_.UnderLease(
      id, fmt::format("{} by uid {}", request.uri.empty() ? "copy-image" : request.uri, caller.uid),
      [&](const ImageRecord& record) { return core_.CheckAuthorized(caller, record, action); },
      [&](LockedImage& locked) { return PlanLocked(locked, request); });
}

Result<std::shared_ptr<ImportPlan>> ImportPlanner::PlanLocked(LockedImage& locked,
                                                              const ImportRequest& request) {
  bool download = request.method == ImportRequest::Method::kWebDownload;
  const ImageRecord& record = locked.record;
  const std::string& id = record.id;
  if (download && record.status != ImageStatus::kQueued) {
    return Fail(EINVAL, "image {}: web-download needs a queued image (status {})", id,
                StatusName(record.status));
  }
  if (!download && record.status != ImageStatus::kActive) {
    return Fail(EINVAL, "image {}: copy-image needs an active image (status {})", id,
                StatusName(record.status));
  }
  auto targets = Targets(record, request);
  if (!targets.ok()) return targets.error();
  if (targets->empty()) {
    Log(LogLevel::kInfo, "image {}: every store already holds a copy", id);
    return std::shared_ptr<ImportPlan>();
  }
  auto plan = std::make_shared<ImportPlan>();
  plan->image_id = id;
  plan->lease = std::move(locked.lease);
  plan->source_store = SourceStore(record);
  plan->targets = CentralFirst(record, std::move(targets).value());
  // A catalog that copies itself publishes its own copies.
  if (download || !core_.catalog().Traits().copies_itself) {
    IMAGEFS_RETURN_IF_ERROR(CheckPublishable(id, plan->targets));
  }
  plan->must_succeed = request.all_stores_must_succeed;
  if (!download) plan->expected = DigestOf(record);  // a download defines the image
  return plan;
}

Status ImportPlanner::CheckPublishable(const std::string& id,
                                       const std::vector<std::string>& targets) const {
  for (const auto& site : targets) {
    IMAGEFS_RETURN_IF_ERROR(core_.catalog().CheckLocation(id, core_.StoreAt(site).LocationUrl(id)));
  }
  return Ok();
}

// The stores a request asks for: all stores skips those holding the image;
// an explicit one holding it is EEXIST.
Result<std::vector<std::string>> ImportPlanner::Targets(const ImageRecord& record,
                                                        const ImportRequest& request) const {
  std::vector<std::string> targets;
  if (request.all_stores) {
    for (const auto& site : core_.store_ids()) {
      if (!record.HasStore(site)) targets.push_back(site);
    }
    return targets;
  }
  std::vector<std::string> wanted = request.stores;
  if (wanted.empty()) wanted.push_back(core_.central());
  for (const auto& site : wanted) {
    if (!core_.HasStore(site)) {
      return Fail(ENOENT, "image {}: store {} is not configured", record.id, site);
    }
    if (record.HasStore(site) && request.skip_holders) continue;
    if (record.HasStore(site)) {
      return Fail(EEXIST, "image {}: store {} already holds a copy", record.id, site);
    }
    AddUnique(targets, site);
  }
  return targets;
}

Result<std::shared_ptr<StagedWrite>> ImportPlanner::BeginWrite(const Caller& caller,
                                                               std::string_view id,
                                                               std::string_view site) {
  if (!core_.HasStore(site)) {
    return Fail(ENOENT, "image {}: store {} is not configured", id, site);
  }
  return core_.UnderLease(
      id, fmt::format("write into {} by uid {}", site, caller.uid),
      [&](const ImageRecord& record) -> Status {
        IMAGEFS_RETURN_IF_ERROR(core_.CheckAuthorized(caller, record, "write into"));
        if (record.HasStore(site)) {
          return Fail(EEXIST, "image {}: store {} already holds a copy", id, site);
        }
        return Ok();
      },
      [&](LockedImage& locked) { return BeginWriteLocked(locked, site); });
}

Result<std::shared_ptr<StagedWrite>> ImportPlanner::BeginWriteLocked(LockedImage& locked,
                                                                     std::string_view site) {
  const ImageRecord& record = locked.record;
  const std::string& id = record.id;
  bool upload = record.status == ImageStatus::kQueued;
  if (!upload && record.status != ImageStatus::kActive) {
    return Fail(EBUSY, "image {}: status is {}", id, StatusName(record.status));
  }
  if (!upload && core_.catalog().Traits().copies_itself) {
    return Fail(EOPNOTSUPP,
                "image {}: copies go through the catalog (copy_method = glance), which takes no "
                "data written; copy with setfattr -n user.glance.import -v "
                "'{{\"method\":{{\"name\":\"copy-image\"}},\"stores\":[\"{}\"]}}'",
                id, site);
  }
  IMAGEFS_RETURN_IF_ERROR(CheckPublishable(id, CentralFirst(record, {std::string(site)})));
  auto staged = StagedWrite::Create(core_.options().staging_dir, std::string(id), std::string(site),
                                    std::move(locked.lease), core_.budget());
  if (!staged.ok()) return staged.error();
  // The write is visible at once, to this mount and every other one: an
  // upload as status uploading, a copy in os_glance_importing_to_stores.
  auto started = core_.catalog().Update(id, [&](ImageRecord& current) -> Status {
    if (upload) {
      current.UploadStarted();
    } else {
      current.ImportStarted({std::string(site)}, /*upload=*/false);
    }
    return Ok();
  });
  if (!started.ok()) {
    (*staged)->Discard();  // releases the lease; the record was not changed
    return started.error();
  }
  (*staged)->SetAbandonHook([this, image = std::string(id), site = std::string(site)] {
    SettleUnimportedWrite(image, site);
  });
  if (core_.options().stream_writes) {
    std::optional<Digest> expected;
    if (!upload) expected = DigestOf(record);
    (*staged)->SetStreamFactory(StreamFactoryFor(
        std::string(id), CentralFirst(record, {std::string(site)}), upload, expected));
  }
  return staged;
}

void ImportPlanner::SettleUnimportedWrite(const std::string& id, const std::string& site) {
  auto settled = core_.catalog().Update(id, [&](ImageRecord& record) -> Status {
    record.UploadAbandoned(site);
    record.ImportFailedIfImporting(site);
    return Ok();
  });
  if (!settled.ok()) Log(LogLevel::kWarning, "{}", settled.error().message);
}

std::string ImportPlanner::SourceStore(const ImageRecord& record) const {
  if (record.HasStore(core_.central())) return core_.central();
  return record.locations.empty() ? core_.central() : record.locations.front().store;
}

// Central first: an image must reach central before any edge.
std::vector<std::string> ImportPlanner::CentralFirst(const ImageRecord& record,
                                                     std::vector<std::string> targets) const {
  const std::string& central = core_.central();
  bool wanted = std::find(targets.begin(), targets.end(), central) != targets.end();
  if (wanted || !record.HasStore(central)) {
    EraseValue(targets, central);
    targets.insert(targets.begin(), central);
  }
  return targets;
}

// The pipeline of a write through a file, into `targets` (central first).
// A copy's (`expected`: the image's data) is made at the image's size, and
// a target that stops answering is an outage, as in a copy store to store:
// the data is still hashed, and the commit waits for that store and
// resumes in it (ImportRunner::FinishStream).
Result<StagedWrite::Stream> ImportPlanner::StartStream(const std::string& id,
                                                       const std::vector<std::string>& targets,
                                                       const std::optional<Digest>& expected) {
  bool by_chunks = expected && !expected->chunks.empty();
  uint64_t size = expected ? expected->size : 0;
  PipelineOptions options =
      core_.pipeline_options(/*full_digest=*/!by_chunks, id, targets, /*total=*/size);
  if (expected && core_.options().outage_timeout.count() > 0) {
    options.stall_after = core_.options().stall_after;
    options.hash_through_outages = true;
  }
  std::vector<std::unique_ptr<StoreWriter>> writers;
  for (const auto& site : targets) {
    auto writer = core_.StoreAt(site).CreateWriter(id, size);
    if (!writer.ok()) {
      for (auto& made : writers) made->Discard();  // the stream does not start
      return writer.error();
    }
    writers.push_back(std::move(writer).value());
  }
  return StagedWrite::Stream{
      targets,
      std::make_unique<Pipeline>(std::move(writers), std::move(options), core_.hash_executor())};
}

// The stream factory of an upload or download into `targets`: data that
// will be converted to raw is staged from its first bytes on, as the
// conversion reads it back at random.
StagedWrite::StreamFactory ImportPlanner::StreamFactoryFor(std::string id,
                                                           std::vector<std::string> targets,
                                                           bool upload,
                                                           std::optional<Digest> expected) {
  return [this, id = std::move(id), targets = std::move(targets), upload, expected](
             uint64_t offset, std::span<const char> data) -> Result<StagedWrite::Stream> {
    if (upload && core_.options().convert_to_raw && offset == 0) {
      std::string_view format = FormatOfMagic(data);
      if (NeedsConversionToRaw(format)) {
        return Fail(ECANCELED, "data starts as {}, to be converted to raw", format);
      }
    }
    return StartStream(id, targets, expected);
  };
}

void ImportPlanner::Fetch(ImportPlan& plan, const std::string& uri) {
  const auto& options = core_.options();
  auto staged = StagedWrite::Create(options.staging_dir, plan.image_id, plan.targets.front(),
                                    nullptr, core_.budget());
  if (!staged.ok()) {
    plan.source_failure = staged.error();
    return;
  }
  plan.staged = *staged;
  plan.staged->SetStreamFactory(
      StreamFactoryFor(plan.image_id, plan.targets, /*upload=*/true, std::nullopt));
  auto fetched = Download(
      uri, options.download, options.import_filter,
      [&](uint64_t offset, std::span<const char> data) {
        if (plan.lease->lost()) {
          return Status(Fail(EIO, "image {}: import lease lost while downloading", plan.image_id));
        }
        return plan.staged->Write(offset, data);
      });
  if (!fetched.ok()) {
    plan.source_failure = fetched.error();
    plan.stream = plan.staged->TakeStream();  // its temporaries go with the plan
    return;
  }
  Log(LogLevel::kInfo, "image {}: {} bytes downloaded from {}", plan.image_id, *fetched, uri);
  auto record = core_.catalog().Get(plan.image_id);
  Status inspected = record.ok() ? InspectData(*plan.staged, *record, plan) : record.error();
  if (!inspected.ok()) plan.source_failure = inspected.error();
  plan.stream = plan.staged->TakeStream();
}

// What an upload's or download's data really is: refused when it is
// unsafe, or not the format its disk_format says; staged whole when it is
// to be converted to raw (the runner converts it).
Status ImportPlanner::InspectData(StagedWrite& write, const ImageRecord& record, ImportPlan& plan) {
  const std::string& id = write.image_id();
  auto format = InspectImage(write.Size(), [&](uint64_t offset, std::span<char> out) {
    return write.ReadData(offset, out);
  });
  if (!format.ok()) {
    return Fail(format.code() == EINVAL ? EIO : format.code(),
                "image {}: data written into {} refused: {}; nothing published", id, write.site(),
                format.error().message);
  }
  if (!record.disk_format.empty() && !FormatMatchesLabel(format->name, record.disk_format)) {
    return Fail(EIO, "image {}: data is {}, disk_format is {}; nothing published", id, format->name,
                record.disk_format);
  }
  plan.format = *format;
  if (core_.options().convert_to_raw && NeedsConversionToRaw(format->name)) {
    IMAGEFS_RETURN_IF_ERROR(write.StageAll(fmt::format("{} data to convert to raw", format->name)));
    plan.convert = true;
  }
  return Ok();
}

Status ImportPlanner::PlanCommit(const std::shared_ptr<StagedWrite>& staged, ImportPlan& plan) {
  StagedWrite& write = *staged;
  const std::string& id = write.image_id();
  plan.image_id = id;
  plan.lease = write.TakeLease();
  plan.staged = staged;  // the import's source, alive even if the file is released
  // Refused: the stream goes with the plan, which discards it.
  auto refuse = [&](Error why) {
    plan.stream = write.TakeStream();
    return why;
  };
  if (auto failure = write.failure()) {
    return refuse(Fail(failure->code,
                       "image {}: data written into {} is incomplete ({}); not imported", id,
                       write.site(), failure->message));
  }
  if (!plan.lease || plan.lease->lost()) {
    return refuse(Fail(EIO, "image {}: the import lease was lost before commit", id));
  }
  auto record = core_.catalog().Get(id);
  if (!record.ok()) return refuse(record.error());
  plan.required_store = write.site();
  plan.expected = DigestOf(*record);
  plan.source_store = SourceStore(*record);  // a copy's, should its store stop answering
  if (record->status == ImageStatus::kActive) {
    if (write.Size() != record->size.value_or(0)) {
      return refuse(Fail(EIO,
                         "image {}: data written into {} is {} bytes, the image is {}; not copied",
                         id, write.site(), write.Size(), record->size.value_or(0)));
    }
  } else {
    plan.expected.reset();  // an upload: the data defines the image
    if (!write.copy_source()) {
      Status inspected = InspectData(write, *record, plan);
      if (!inspected.ok()) return refuse(inspected.error());
    }
  }
  plan.stream = write.TakeStream();  // goes with the plan, whatever happens
  plan.targets = CentralFirst(*record, {write.site()});
  if (plan.stream) plan.targets = plan.stream->sites;
  auto copy_source = write.copy_source();
  std::string how = plan.stream ? " (streamed)" : "";
  if (copy_source) {
    how = fmt::format(" (server-side, from image {} in {})", copy_source->image_id,
                      copy_source->site);
  }
  Log(LogLevel::kInfo, "image {}: {} of {} bytes written into {}{}, importing to {}", id,
      plan.expected ? "copy" : "upload", write.Size(), write.site(), how,
      fmt::join(plan.targets, ","));
  return Ok();
}

}  // namespace imagefs

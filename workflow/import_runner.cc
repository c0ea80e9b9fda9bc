// Runs an import's plan: write, verify, publish, roll back (workflow/import_runner.h).
#include "workflow/import_runner.h"

#include <unistd.h>

#include <algorithm>

#include "common/log.h"
#include "common/metrics.h"
#include "common/uuid.h"
#include "store/posix_file.h"
#include "workflow/image_conversion.h"
#include "workflow/resume_record.h"
#include "workflow/target_writers.h"

namespace imagefs {
namespace {

// What the plan's verified data says of the image, for its record.
VerifiedData VerifiedDataOf(const ImportPlan& plan) {
  const Digest& digest = *plan.expected;
  VerifiedData data{digest.size, digest.md5, digest.sha512, digest.chunks};
  if (plan.format) {
    data.disk_format = plan.format->name;
    data.virtual_size = plan.format->virtual_size;
  }
  if (plan.staged && !plan.staged->file_name().empty()) data.name = plan.staged->file_name();
  return data;
}

}  // namespace

ScratchFile::~ScratchFile() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

std::function<Status()> ImportPlan::LeaseCheck() const {
  return [this]() -> Status {
    if (!lease->lost()) return Ok();
    return Fail(EIO, "image {}: import lease lost while copying", image_id);
  };
}

void ImportPlan::Close() {
  if (stream && stream->pipeline) stream->pipeline->Discard();  // unfinished
  stream.reset();
  if (lease) lease->Release();
  lease.reset();
  staged.reset();
}

ImportPlan::~ImportPlan() {
  if ((stream && stream->pipeline) || lease) {
    Log(LogLevel::kError, "image {}: import plan dropped without Close; left for recovery",
        image_id);
  }
}

std::optional<Digest> DigestOf(const ImageRecord& record) {
  if (!record.size || record.checksum.empty() || record.os_hash_value.empty()) return std::nullopt;
  return Digest{*record.size, record.checksum, record.os_hash_value, record.chunks_xxh3};
}

Status ImportRunner::Begin(const ImportPlan& plan) {
  bool upload = !plan.expected;
  auto started = core_.catalog().Update(plan.image_id, [&](ImageRecord& record) -> Status {
    record.ImportStarted(plan.targets, upload);
    return Ok();
  });
  if (!started.ok()) return started.error();
  return Ok();
}

Status ImportRunner::Run(ImportPlan& plan) {
  bool upload = !plan.expected;
  OperationTimer timer(upload ? "upload" : "copy");
  for (const auto& site : plan.targets) {
    Metrics::Get().Count(Metric::kImportsStarted, {{"store", site}});
  }
  std::optional<Error> failure;          // what the caller's operation reports
  std::vector<WrittenCopy> unpublished;  // must-succeed: held until all are verified
  Copies copies;
  std::unique_ptr<StoreReader> source;  // a pull's, for copies that resume
  if (plan.convert && !plan.source_failure) {
    Status converted = Convert(plan);
    if (!converted.ok()) plan.source_failure = converted.error();
  }
  if (plan.stream || plan.source_failure) {
    copies = FinishStream(plan);
  } else if (auto opened = OpenSource(plan); opened.ok()) {
    source = std::move(opened).value();
    copies = PullCopies(plan, *source);
  } else {
    failure = opened.error();
  }
  // Copies waiting for their store come last: the others are published
  // first, not held up by them.
  std::vector<size_t> order;
  for (int waiting = 0; waiting < 2; ++waiting) {
    for (size_t i = 0; i < copies.size(); ++i) {
      if ((copies[i].ok() && copies[i]->outage) == (waiting == 1)) order.push_back(i);
    }
  }
  if (!upload && !plan.must_succeed) PublishTogether(plan, copies);
  for (size_t i : order) {
    const std::string& site = plan.targets[i];
    bool first_of_upload = upload && i == 0;
    auto& copy = copies[i];
    if (copy.ok() && copy->published) continue;  // by PublishTogether
    if (copy.ok() && copy->outage && !source) {
      // Streamed through a file: it resumes from the image's published copy.
      auto opened = core_.StoreAt(plan.source_store).OpenReader(plan.image_id);
      if (opened.ok()) {
        source = std::move(opened).value();
      } else {
        copy->writer->Discard();
        copy = opened.error();
      }
    }
    if (copy.ok() && copy->outage) copy = Resume(plan, *source, std::move(copy).value());
    Status done = copy.ok() ? Ok() : Status(copy.error());
    if (done.ok() && plan.must_succeed) {
      // Stays in importing_to_stores until the update that publishes
      // every copy: a reader who waits for that list to empty must see
      // the outcome, never a store that left it unpublished.
      unpublished.push_back(std::move(copy).value());
    } else if (done.ok()) {
      done = Publish(plan, *copy);
    }
    if (done.ok()) continue;
    RecordFailure(plan, site, done.error());
    if (site == plan.required_store || plan.must_succeed || first_of_upload) {
      failure = done.error();
    }
    // Without central (the first copy of an upload) no edge may get it;
    // with must-succeed one failure fails all.
    if (plan.must_succeed || first_of_upload) break;
  }
  if (plan.must_succeed && !failure) {
    Status published = PublishAll(plan, unpublished);
    if (!published.ok()) failure = published.error();
  }
  DiscardUnpublished(copies, unpublished);
  End(plan, upload);
  core_.EndProgress(plan.image_id);
  CountOutcomes(plan);
  if (!failure) return Ok();
  int code = failure->code == ENOSPC ? ENOSPC : EIO;
  return Error{code, failure->message};
}

void ImportRunner::DiscardUnpublished(Copies& copies, std::vector<WrittenCopy>& unpublished) {
  for (auto& copy : copies) {
    if (!copy.ok() || !copy->writer) continue;
    if (copy->outage) {
      // Never resumed (the import stopped first): its store did not
      // answer, so its temporary is left to recovery.
      copy->writer->Leave();
    } else {
      copy->writer->Discard();  // nothing once published
    }
  }
  for (auto& copy : unpublished) copy.writer->Discard();
  unpublished.clear();
}

Status ImportRunner::PublishAll(ImportPlan& plan, std::vector<WrittenCopy>& copies) {
  const std::string& id = plan.image_id;
  std::vector<Location> published;
  Status status = Ok();
  for (auto& copy : copies) {
    auto url = copy.writer->Publish();
    if (!url.ok()) {
      RecordFailure(plan, copy.store, url.error());
      status = url.error();
      break;
    }
    published.push_back({copy.store, *url});
  }
  if (status.ok()) {
    VerifiedData data = VerifiedDataOf(plan);
    auto updated = core_.catalog().Update(id, [&](ImageRecord& record) -> Status {
      for (const auto& location : published) record.CopyPublished(location, data);
      return Ok();
    });
    if (!updated.ok()) status = updated.error();
  }
  if (!status.ok()) {
    for (const auto& location : published) core_.RemoveQuietly(location.store, id);
    return status;
  }
  for (const auto& location : published) Published(plan, location.store);
  Log(LogLevel::kInfo, "image {}: copies in {} published", id, fmt::join(plan.targets, ","));
  return Ok();
}

void ImportRunner::End(const ImportPlan& plan, bool upload) {
  auto ended = core_.catalog().Update(plan.image_id, [&](ImageRecord& record) -> Status {
    record.ImportEnded(upload);
    return Ok();
  });
  if (!ended.ok()) Log(LogLevel::kError, "{}", ended.error().message);
}

// Converts the staged data to raw in the staging area: the import's
// source from then on, and what the record describes.
Status ImportRunner::Convert(ImportPlan& plan) {
  ScratchFile raw(
      fmt::format("{}/{}.{}.raw", core_.options().staging_dir, plan.image_id, NewUuid()));
  Log(LogLevel::kInfo, "image {}: converting {} data to raw", plan.image_id, plan.format->name);
  Status converted = ConvertToRaw(plan.format->name, plan.staged->path(), raw.path());
  if (!converted.ok()) {
    return Fail(converted.code(), "image {}: conversion to raw failed: {}", plan.image_id,
                converted.error().message);
  }
  auto reader = OpenFileReader(raw.path());
  if (!reader.ok()) return reader.error();
  Log(LogLevel::kInfo, "image {}: converted {} ({} bytes) to raw ({} bytes)", plan.image_id,
      plan.format->name, plan.staged->Size(), (*reader)->size());
  plan.format = ImageFormat{"raw", (*reader)->size()};
  plan.converted.emplace(std::move(raw));
  return Ok();
}

// Pulls the source into every target (workflow/pipeline.h); one result per
// target, in the order of plan.targets. Each ok copy is finished, not
// published.
ImportRunner::Copies ImportRunner::PullCopies(ImportPlan& plan, StoreReader& source) {
  const std::string& id = plan.image_id;
  // A copy of an image whose data is known (its digest) can wait for a
  // store that stops answering, and resume.
  bool resumable = plan.expected.has_value() && core_.options().outage_timeout.count() > 0;
  uint64_t unit_bytes = PipelineUnitBytes(core_.options().pipeline);
  Copies copies;
  std::vector<std::unique_ptr<StoreWriter>> writers;
  std::vector<ResumeRecord> records;  // of the writers
  // Each target's writer on its store's threads: one that does not answer
  // within stall_after is an outage like a stall, and holds up no other.
  std::vector<std::shared_ptr<ResumeRecord>> opened_records;
  std::vector<OpenWriter> opens;
  for (const auto& site : plan.targets) {
    auto record = std::make_shared<ResumeRecord>(
        ResumeRecord{id, resumable ? *plan.expected : Digest{}, unit_bytes});
    opened_records.push_back(record);
    opens.push_back([this, id, site, resumable, record, size = source.size()] {
      return OpenTarget(id, site, resumable ? record.get() : nullptr, size);
    });
  }
  auto opened =
      OpenTargetWriters(core_, plan.targets, std::move(opens),
                        resumable ? std::optional(core_.options().stall_after) : std::nullopt);
  std::vector<size_t> unanswered;  // targets whose store did not answer the open
  for (size_t i = 0; i < opened.size(); ++i) {
    if (opened[i].ok()) {
      writers.push_back(std::move(opened[i]).value());
      records.push_back(std::move(*opened_records[i]));
      copies.emplace_back(WrittenCopy{plan.targets[i], nullptr});
      continue;
    }
    if (IsUnreachable(opened[i].code())) {
      // A temporary opened late is left behind: the sweeper looks at the
      // image's temporaries once this import has ended.
      core_.MarkUnsettled(id);
      if (resumable && plan.wait_for_targets) unanswered.push_back(i);
    }
    copies.emplace_back(opened[i].error());
  }
  // Those wait for their store, as a copy whose store stops answering
  // does, and start once it answers (Resume); the others go on first.
  auto waiting = [&](Copies copies) {
    for (size_t i : unanswered) {
      WrittenCopy copy{plan.targets[i], nullptr};
      copy.outage = copies[i].error();
      copies[i] = std::move(copy);
    }
    return copies;
  };
  if (writers.empty()) return waiting(std::move(copies));
  std::vector<std::string> sites;  // of the writers
  for (size_t i = 0; i < copies.size(); ++i) {
    if (copies[i].ok()) sites.push_back(plan.targets[i]);
  }
  PipelineOptions options =
      core_.pipeline_options(/*full_digest=*/!plan.ByChunks(), id, sites, source.size());
  options.check = plan.LeaseCheck();
  std::shared_ptr<ResumeSaver> saver;
  if (resumable) {
    options.stall_after = core_.options().stall_after;
    std::vector<StoreWriter*> raw;
    for (const auto& writer : writers) raw.push_back(writer.get());
    for (const auto& record : records) options.skip.push_back(record.acknowledged);
    saver = ResumeSaver::Make(std::move(raw), std::move(records));
    options.acknowledged = [saver](size_t w, uint64_t unit) { saver->Acknowledged(w, unit); };
  }
  Pipeline pipeline(std::move(writers), options, core_.hash_executor());
  PipelineOutcome outcome = pipeline.Pull(source);
  if (saver) saver->Stop();
  writers = pipeline.TakeWriters();
  size_t w = 0;
  for (auto& copy : copies) {
    if (!copy.ok()) continue;
    copy->writer = std::move(writers[w]);
    if (resumable) copy->NoteOutage(outcome.writers[w], outcome.acknowledged[w]);
    ++w;
  }
  return waiting(FinishCopies(plan, outcome, std::move(copies)));
}

// The same for data streamed into the stores as it was written or
// downloaded; a source that failed fails every target.
ImportRunner::Copies ImportRunner::FinishStream(ImportPlan& plan) {
  if (plan.source_failure) {
    if (plan.stream && plan.stream->pipeline)
      plan.stream->pipeline->Discard();  // its temporaries go
    plan.stream.reset();
    Copies failed;
    for (size_t i = 0; i < plan.targets.size(); ++i) failed.emplace_back(*plan.source_failure);
    return failed;
  }
  StagedWrite::Stream& stream = *plan.stream;
  uint64_t size = plan.staged ? plan.staged->Size() : stream.pipeline->position();
  PipelineOutcome outcome = stream.pipeline->Finish(size);
  auto writers = stream.pipeline->TakeWriters();
  stream.pipeline.reset();
  // A copy's target that stopped answering is waited for and resumed in,
  // from the image's published copy, as in a copy store to store.
  bool resumable =
      plan.expected && core_.options().outage_timeout.count() > 0 && !plan.source_store.empty();
  Copies copies;
  for (size_t i = 0; i < writers.size(); ++i) {
    WrittenCopy copy{stream.sites[i], std::move(writers[i])};
    if (resumable) copy.NoteOutage(outcome.writers[i], outcome.acknowledged[i]);
    copies.emplace_back(std::move(copy));
  }
  return FinishCopies(plan, outcome, std::move(copies));
}

// Compares the digest of what was written with the image (an upload's
// defines it) and finishes each copy that is ok; outcome.writers holds one
// status per ok entry of `copies`, in order.
ImportRunner::Copies ImportRunner::FinishCopies(ImportPlan& plan, const PipelineOutcome& outcome,
                                                Copies copies) {
  bool by_chunks = plan.ByChunks();
  std::optional<Error> common;  // what fails every copy
  bool differs = false;         // the data is not the image's: no copy resumes
  if (!outcome.source.ok()) {
    common = outcome.source.error();
  } else if (plan.expected) {
    const Digest& got = *outcome.source;
    Digest& want = *plan.expected;
    bool same =
        got.size == want.size &&
        (by_chunks ? got.chunks == want.chunks : got.md5 == want.md5 && got.sha512 == want.sha512);
    if (!same) {
      differs = true;
      common = Error{EIO, fmt::format("image {}: data for store {} does not match the image "
                                      "(size {} vs {}, {} differs); nothing published",
                                      plan.image_id, fmt::join(plan.targets, ","), got.size,
                                      want.size, by_chunks ? "chunk digest" : "md5/sha512")};
    } else if (!by_chunks) {
      want.chunks = got.chunks;  // the data is the image's: so is its chunk digest
    }
  } else {
    plan.expected = *outcome.source;  // an upload: the data defines the image
  }
  size_t w = 0;
  for (auto& copy : copies) {
    if (!copy.ok()) continue;
    Status status = common ? Status(*common) : outcome.writers[w];
    ++w;
    if (copy->outage && !differs) continue;  // it waits and resumes (Resume)
    if (status.ok()) status = copy->writer->Finish(plan.expected->size);
    if (!status.ok()) {
      copy->writer->Discard();  // its temporary goes
      copy = status.error();
    }
  }
  return copies;
}

Result<std::unique_ptr<StoreReader>> ImportRunner::OpenSource(const ImportPlan& plan) {
  if (plan.converted) return OpenFileReader(plan.converted->path());
  if (plan.staged) {
    // A server-side copy reads the published copy it names.
    if (auto source = plan.staged->copy_source()) {
      auto record = core_.catalog().Get(source->image_id);
      if (!record.ok()) return record.error();
      return core_.OpenPublishedCopy(*record, source->site);
    }
    return plan.staged->OpenReader();
  }
  return core_.StoreAt(plan.source_store).OpenReader(plan.image_id);
}

// Copies of one pass verified together (allow-failure) are published
// together: each renamed, then one record update adds every location, so
// that the catalog is asked once (Glance: one GET and one PATCH), not once
// per store. A copy that fails to publish is left to the caller's loop,
// which records its failure; a single one is published by Publish.
void ImportRunner::PublishTogether(ImportPlan& plan, Copies& copies) {
  const std::string& id = plan.image_id;
  std::vector<size_t> ready;
  for (size_t i = 0; i < copies.size(); ++i) {
    if (copies[i].ok() && !copies[i]->outage && copies[i]->writer) ready.push_back(i);
  }
  if (ready.size() < 2) return;
  std::vector<std::pair<size_t, Location>> renamed;
  for (size_t i : ready) {
    WrittenCopy& copy = *copies[i];
    auto url = copy.writer->Publish();
    if (!url.ok() && url.code() == EEXIST && CopiedByOthers(plan, copy.store)) {
      Published(plan, copy.store);
      copy.published = true;
    } else if (!url.ok()) {
      copy.writer->Discard();
      copies[i] = url.error();
    } else {
      renamed.emplace_back(i, Location{copy.store, *url});
    }
  }
  if (renamed.empty()) return;
  VerifiedData data = VerifiedDataOf(plan);
  auto updated = core_.catalog().Update(id, [&](ImageRecord& record) -> Status {
    for (const auto& [i, location] : renamed) record.CopyPublished(location, data);
    return Ok();
  });
  for (const auto& [i, location] : renamed) {
    if (!updated.ok()) {
      core_.RemoveQuietly(location.store, id);
      copies[i] = updated.error();
      continue;
    }
    Published(plan, location.store);
    copies[i]->published = true;
    Log(LogLevel::kInfo, "image {}: copy in {} published at {}", id, location.store, location.url);
  }
}

// Publishes one verified copy and records its location.
Status ImportRunner::Publish(ImportPlan& plan, WrittenCopy& copy) {
  auto url = copy.writer->Publish();
  if (!url.ok() && url.code() == EEXIST && CopiedByOthers(plan, copy.store)) {
    // Glance's own copy-image of this image to this store came first
    // (it holds no imagefs lease): the store has the image, and this
    // copy's temporary goes with the unpublished writer.
    Published(plan, copy.store);
    return Ok();
  }
  if (!url.ok()) return url.error();
  VerifiedData data = VerifiedDataOf(plan);
  auto updated = core_.catalog().Update(plan.image_id, [&](ImageRecord& record) -> Status {
    record.CopyPublished({copy.store, *url}, data);
    return Ok();
  });
  if (!updated.ok()) {
    core_.RemoveQuietly(copy.store, plan.image_id);
    return updated.error();
  }
  Published(plan, copy.store);
  Log(LogLevel::kInfo, "image {}: copy in {} published at {}", plan.image_id, copy.store, *url);
  return Ok();
}

bool ImportRunner::CopiedByOthers(const ImportPlan& plan, const std::string& store) {
  auto record = core_.catalog().Get(plan.image_id);
  if (!record.ok() || !record->HasStore(store)) return false;
  // Settles the store's place in the import lists, as a publish would.
  auto settled = core_.catalog().Update(plan.image_id, [&](ImageRecord& current) -> Status {
    current.CopyFoundPublished(store);
    return Ok();
  });
  if (!settled.ok()) Log(LogLevel::kWarning, "{}", settled.error().message);
  Log(LogLevel::kInfo, "image {}: the catalog's own copy in {} came first; imagefs's is discarded",
      plan.image_id, store);
  return true;
}

void ImportRunner::CountOutcomes(const ImportPlan& plan) {
  for (const auto& site : plan.targets) {
    bool published =
        std::find(plan.published.begin(), plan.published.end(), site) != plan.published.end();
    Metrics::Get().Count(published ? Metric::kImportsSucceeded : Metric::kImportsFailed,
                         {{"store", site}});
    if (published && plan.expected) {
      Metrics::Get().Count(Metric::kCopiedBytes, {{"store", site}},
                           static_cast<double>(plan.expected->size));
    }
  }
}

// A target's copy is published: it leaves the progress, which shows what
// still copies or waits.
void ImportRunner::Published(ImportPlan& plan, const std::string& store) {
  plan.published.push_back(store);
  core_.EndProgress(plan.image_id, store);
}

void ImportRunner::RecordFailure(const ImportPlan& plan, const std::string& site,
                                 const Error& error) {
  Log(LogLevel::kError, "image {}: import to store {} failed: {}", plan.image_id, site,
      error.message);
  auto updated = core_.catalog().Update(plan.image_id, [&](ImageRecord& record) -> Status {
    record.ImportFailed(site);
    return Ok();
  });
  if (!updated.ok()) Log(LogLevel::kError, "{}", updated.error().message);
  core_.EndProgress(plan.image_id, site);  // in the failed list now
  if (plan.store_failed) plan.store_failed(site, error);
  // A store that did not answer may keep the copy's temporary (its writer
  // leaves it rather than time out again): clean up once it answers.
  if (error.code == ETIMEDOUT) core_.MarkUnsettled(plan.image_id);
}

}  // namespace imagefs

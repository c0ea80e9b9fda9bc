// Waits for a copy's target that stopped answering, and resumes the copy
// where the target's acknowledged units end (workflow/import_runner.h).
#include <algorithm>
#include <chrono>
#include <thread>

#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "workflow/import_runner.h"
#include "workflow/resume_record.h"
#include "workflow/target_writers.h"

namespace imagefs {

Result<std::unique_ptr<StoreWriter>> ImportRunner::OpenTarget(const std::string& id,
                                                              const std::string& site,
                                                              ResumeRecord* record, uint64_t size) {
  if (record) {
    auto writer = ReopenResumable(id, site, *record);
    if (writer.ok()) return writer;
  }
  return core_.StoreAt(site).CreateWriter(id, size);
}

// A temporary of this image in `site` whose resume record goes on with
// this copy (a copy that gave up, or died with its daemon): the one with
// the most units acknowledged, reopened; `record` gets its units. ENOENT
// when there is none (the caller creates a new temporary).
Result<std::unique_ptr<StoreWriter>> ImportRunner::ReopenResumable(const std::string& id,
                                                                   const std::string& site,
                                                                   ResumeRecord& record) {
  Store& store = core_.StoreAt(site);
  auto temporaries = store.ListTemporaries();
  if (!temporaries.ok()) return temporaries.error();
  std::optional<std::pair<StoreTemporary, ResumeRecord>> best;
  for (const auto& temporary : *temporaries) {
    if (temporary.image_id != id) continue;
    auto text = store.ResumeRecord(temporary);
    if (!text.ok() || text->empty()) continue;
    auto found = ResumeRecord::Decode(*text);
    if (!found.ok() || !found->Resumes(id, record.digest, record.unit_bytes)) continue;
    if (!best || found->UnitsAcknowledged() > best->second.UnitsAcknowledged()) {
      best.emplace(temporary, std::move(found).value());
    }
  }
  if (!best) return Fail(ENOENT, "image {}: no copy into {} to resume", id, site);
  auto writer = store.ReopenWriter(id, best->first.name);
  if (!writer.ok()) {
    Log(LogLevel::kWarning, "image {}: copy into {} cannot resume in {}: {}", id, site,
        best->first.name, writer.error().message);
    // EEXIST: finished already, never published (its writer died between
    // the two). It holds nothing to go on with, and the lease is ours.
    if (writer.code() == EEXIST) {
      Status removed = store.RemoveTemporary(best->first);
      if (!removed.ok()) {
        Log(LogLevel::kWarning, "store {}: cannot remove {}: {}", site, best->first.name,
            removed.error().message);
      }
    }
    return writer.error();
  }
  uint64_t units = (record.digest.size + record.unit_bytes - 1) / record.unit_bytes;
  Log(LogLevel::kInfo,
      "image {}: copy into {} resumes in {}, {} of {} units there already (saved {})", id, site,
      best->first.name, best->second.UnitsAcknowledged(), units,
      FormatIsoTime(best->second.saved_at));
  record.acknowledged = std::move(best->second.acknowledged);
  return writer;
}

Result<ImportRunner::WrittenCopy> ImportRunner::Resume(ImportPlan& plan, StoreReader& source,
                                                       WrittenCopy copy) {
  constexpr auto kProbeEvery = std::chrono::seconds(1);
  const std::string& id = plan.image_id;
  Store& store = core_.StoreAt(copy.store);
  std::string temporary;  // none: the store did not answer when the copy began
  if (copy.writer) {
    temporary = copy.writer->temporary();
    copy.writer->Leave();  // its writes in flight may still land: the same data
    copy.writer.reset();
  }
  auto units_of = [&](const std::vector<bool>& units) {
    return std::count(units.begin(), units.end(), true);
  };
  while (true) {
    // An outage: wait for the store, renewing its connection each round.
    auto started = std::chrono::steady_clock::now();
    int64_t since = NowNanos();
    std::string why = copy.outage->message;
    Metrics::Get().Count(Metric::kOutages, {{"store", copy.store}});
    core_.SetWaiting(id, copy.store, since, why);
    Log(LogLevel::kWarning,
        "image {}: copy into {} waits for the store (up to {} s, outage_timeout): {}; {} units "
        "acknowledged",
        id, copy.store, core_.options().outage_timeout.count(), why, units_of(copy.acknowledged));
    std::unique_ptr<StoreWriter> writer;
    while (!writer) {
      if (plan.lease->lost()) return Fail(EIO, "image {}: import lease lost while waiting", id);
      if (std::chrono::steady_clock::now() - started > core_.options().outage_timeout) {
        core_.SetWaiting(id, copy.store, 0, "");
        return Fail(ETIMEDOUT, "image {}: store {} did not answer for {} s (outage_timeout): {}",
                    id, copy.store, core_.options().outage_timeout.count(), why);
      }
      std::this_thread::sleep_for(kProbeEvery);
      // A new connection each round: a link that came back is used at
      // once, not after the old connection's back-off.
      Status answered = store.Reconnect();
      if (!answered.ok()) {
        why = answered.error().message;
        core_.SetWaiting(id, copy.store, since, why);
        continue;
      }
      bool fresh = temporary.empty();  // not opened when the copy began
      ResumeRecord found{id, *plan.expected, PipelineUnitBytes(core_.options().pipeline)};
      auto reopened = fresh ? OpenTarget(id, copy.store, &found, source.size())
                            : store.ReopenWriter(id, temporary);
      if (reopened.ok()) {
        writer = std::move(reopened).value();
        temporary = writer->temporary();
        if (fresh) copy.acknowledged = std::move(found.acknowledged);
      } else if (IsUnreachable(reopened.code())) {
        why = reopened.error().message;
        core_.SetWaiting(id, copy.store, since, why);
      } else {
        core_.SetWaiting(id, copy.store, 0, "");
        return reopened.error();
      }
    }
    double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    Metrics::Get().Count(Metric::kOutageSeconds, {{"store", copy.store}}, waited);
    Log(LogLevel::kInfo, "image {}: store {} answers again after {:.1f} s; the copy resumes", id,
        copy.store, waited);
    // The whole source is read and hashed again (locally): the digest
    // covers every byte; only what the store lacks crosses to it.
    PipelineOptions options =
        core_.pipeline_options(/*full_digest=*/!plan.ByChunks(), id, {copy.store}, source.size());
    options.check = plan.LeaseCheck();
    options.stall_after = core_.options().stall_after;
    options.skip = {copy.acknowledged};
    auto saver = ResumeSaver::Make(
        {writer.get()},
        {ResumeRecord{id, *plan.expected, PipelineUnitBytes(options), copy.acknowledged}});
    options.acknowledged = [saver](size_t w, uint64_t unit) { saver->Acknowledged(w, unit); };
    std::vector<std::unique_ptr<StoreWriter>> writers;
    writers.push_back(std::move(writer));
    Pipeline pipeline(std::move(writers), options, core_.hash_executor());
    PipelineOutcome outcome = pipeline.Pull(source);
    saver->Stop();
    writers = pipeline.TakeWriters();
    const Status& status = outcome.writers[0];
    auto& acknowledged = outcome.acknowledged[0];
    if (acknowledged.size() < copy.acknowledged.size()) {
      acknowledged.resize(copy.acknowledged.size(), false);
    }
    for (size_t unit = 0; unit < copy.acknowledged.size(); ++unit) {
      if (copy.acknowledged[unit]) acknowledged[unit] = true;
    }
    if (!status.ok() && IsUnreachable(status.code())) {
      // Another outage: wait again, from what is acknowledged now.
      writers[0]->Leave();
      copy.outage = status.error();
      copy.acknowledged = std::move(acknowledged);
      continue;
    }
    copy.outage.reset();
    copy.writer = std::move(writers[0]);
    Copies one;
    one.emplace_back(std::move(copy));
    Copies finished = FinishCopies(plan, outcome, std::move(one));
    return std::move(finished[0]);
  }
}

}  // namespace imagefs

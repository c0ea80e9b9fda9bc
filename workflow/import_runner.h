// ImportRunner: runs an import's plan to its end, whatever its source (a
// copy-image, a file written through the mount, a web-download; the plan is
// ImportPlanner's):
//
//   Begin: record importing_to_stores = targets (before the caller hears
//          that the import started)
//     -> convert (data staged to be stored as raw)
//     -> write every target in one pass: the data already streamed into
//        them (finish the pipeline), or a pull of the source into them
//     -> verify: size and md5+sha512 (or the chunk digest) against the
//        image; an upload's data defines the image
//     -> a copy's target that stopped answering (an outage: no write
//        acknowledged for stall_after), or did not answer when the copy
//        began (its temporary not opened within stall_after; placement's
//        copies fail so instead), waits, after the other targets are
//        published: its connection is renewed each second until it answers,
//        up to outage_timeout, then the copy resumes in its temporary,
//        sending only the units the target did not acknowledge (all of
//        the source is read and verified again, locally); an outage past
//        outage_timeout is a failure
//     -> for each target, central first:
//          ok:  allow-failure: publish (rename, then one update adds the
//               location and takes the target out of importing_to_stores;
//               active after the first); a copy's targets verified
//               together are renamed, then recorded in one update
//               must-succeed: keep unpublished until every target is ok
//          err: the temporary goes; one update moves the target from
//               importing_to_stores to os_glance_failed_import;
//               must-succeed or central's copy of an upload: stop
//     -> must-succeed, all ok: publish all (a failed publish removes the
//        ones already published), one update adds every location
//     -> end: importing_to_stores cleared; an upload that reached no store
//        is queued again
//
// Thread safety: Run is called on a worker thread with the plan's lease
// held; several plans run at once (of different images).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/image_format.h"
#include "workflow/resume_record.h"
#include "workflow/service_core.h"

namespace imagefs {

// A file of the staging area that goes with its owner.
class ScratchFile {
 public:
  explicit ScratchFile(std::string path) : path_(std::move(path)) {}
  ScratchFile(ScratchFile&& other) noexcept : path_(std::exchange(other.path_, "")) {}
  ScratchFile& operator=(ScratchFile&&) = delete;
  ~ScratchFile();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Everything one import needs. It ends with Close, on the service's
// threads (it may wait on the stores and the catalog); destroying it frees
// memory and the local staging file.
struct ImportPlan {
  ImportPlan() = default;
  ImportPlan(const ImportPlan&) = delete;
  ~ImportPlan();
  // An unfinished stream is discarded (its temporaries go first), then the
  // lease is released and the staged data let go. Once is enough.
  void Close();

  std::string image_id;
  std::unique_ptr<HeldLease> lease;
  std::shared_ptr<StagedWrite> staged;  // source when the data came through a file
  std::string source_store;             // source when copying store to store
  std::vector<std::string> targets;     // central first
  bool must_succeed = false;
  std::optional<Digest> expected;             // unset for an upload: the first copy defines it
  std::string required_store;                 // a failure there fails the caller's operation
  std::optional<StagedWrite::Stream> stream;  // the data already went to the stores
  std::optional<Error> source_failure;        // the source failed (a download, a conversion)
  // An upload's or download's data as inspected (store/image_format.h);
  // with conversion, `staged` is converted to raw into `converted` first.
  std::optional<ImageFormat> format;
  bool convert = false;
  std::optional<ScratchFile> converted;
  std::vector<std::string> published;  // the targets whose copy was published
  // Hears each target whose copy failed (placement: why, for its state).
  std::function<void(const std::string& store, const Error& error)> store_failed;
  // A copy's target whose store does not answer when the copy begins waits
  // for it (outage_timeout), as one that stops answering does. Placement
  // probes its stores itself and fails such a copy at once.
  bool wait_for_targets = true;

  // A copy verified by the image's chunk digest: only data is hashed, in
  // parallel; else by md5 and sha512 over every byte.
  bool ByChunks() const { return expected && !expected->chunks.empty(); }
  // A pipeline's check that the lease still holds.
  std::function<Status()> LeaseCheck() const;
};

// The digest an image's record holds, if it has data.
std::optional<Digest> DigestOf(const ImageRecord& record);

class ImportRunner {
 public:
  explicit ImportRunner(ServiceCore& core) : core_(core) {}

  // Records the plan's targets as importing (an upload: status importing).
  Status Begin(const ImportPlan& plan);
  // Runs a begun import to its end; EIO (ENOSPC) when the caller's
  // operation failed.
  Status Run(ImportPlan& plan);

 private:
  struct WrittenCopy {
    std::string store;
    std::unique_ptr<StoreWriter> writer;
    // Set when its store stopped answering mid-copy, or did not answer
    // when the copy began (no writer then): the copy waits and resumes
    // (Resume), sending what the store did not acknowledge.
    std::optional<Error> outage;
    std::vector<bool> acknowledged;  // by unit index (PipelineOutcome)
    bool published = false;          // by PublishTogether
    // Its writer (set) ended with `status`: an outage when that says its
    // store did not answer and the temporary can be reopened; `units` are
    // what the store acknowledged.
    void NoteOutage(const Status& status, const std::vector<bool>& units) {
      if (status.ok() || !IsUnreachable(status.code()) || writer->temporary().empty()) return;
      outage = status.error();
      acknowledged = units;
    }
  };
  using Copies = std::vector<Result<WrittenCopy>>;

  Status Convert(ImportPlan& plan);
  Copies PullCopies(ImportPlan& plan, StoreReader& source);
  // The writer of a copy's target in `site`: a temporary of this image
  // there that `record` resumes (record gets its units), else (or with no
  // record) a new one.
  Result<std::unique_ptr<StoreWriter>> OpenTarget(const std::string& id, const std::string& site,
                                                  ResumeRecord* record, uint64_t size);
  // The writer of a temporary in `site` a copy of this image can resume
  // (its resume record), with the units it has put into `record`; ENOENT
  // when there is none.
  Result<std::unique_ptr<StoreWriter>> ReopenResumable(const std::string& id,
                                                       const std::string& site,
                                                       ResumeRecord& record);
  // Waits for the store of a copy whose outage is set, then goes on with
  // its temporary from the units it acknowledged: the copy finished (not
  // published), or why not.
  Result<WrittenCopy> Resume(ImportPlan& plan, StoreReader& source, WrittenCopy copy);
  Copies FinishStream(ImportPlan& plan);
  Copies FinishCopies(ImportPlan& plan, const PipelineOutcome& outcome, Copies copies);
  // Discards every writer that was not published (their temporaries go).
  static void DiscardUnpublished(Copies& copies, std::vector<WrittenCopy>& unpublished);
  Result<std::unique_ptr<StoreReader>> OpenSource(const ImportPlan& plan);
  // Publishes a verified copy; a store the catalog's own import reached
  // first (publishing finds the image there, EEXIST, and the record lists
  // the store) counts as published, and this copy is discarded.
  Status Publish(ImportPlan& plan, WrittenCopy& copy);
  // Publishes the copies verified together, recording them in one update.
  void PublishTogether(ImportPlan& plan, Copies& copies);
  // Whether the record now lists `store` (settling its import lists, and
  // logging that the catalog's own copy came first).
  bool CopiedByOthers(const ImportPlan& plan, const std::string& store);
  // Must-succeed: publishes every verified copy in one record update.
  Status PublishAll(ImportPlan& plan, std::vector<WrittenCopy>& copies);
  void Published(ImportPlan& plan, const std::string& store);
  void RecordFailure(const ImportPlan& plan, const std::string& site, const Error& error);
  // Each target's outcome into the metrics (common/metrics.h).
  void CountOutcomes(const ImportPlan& plan);
  // `upload`: the data defined the image (plan.expected was unset).
  void End(const ImportPlan& plan, bool upload);

  ServiceCore& core_;
};

}  // namespace imagefs

// ImportPlanner: what an import will do (workflow/import_runner.h runs it),
// from each of its sources:
//
//   copy-image / web-download request  PlanRequest: checks, lease, targets
//                                      (all stores skips holders, an
//                                      explicit holder is EEXIST; central
//                                      first); Fetch then streams a
//                                      download into the targets
//   a file written into stores/<site>/ BeginWrite: lease, status uploading
//                                      (or importing_to_stores), the write's
//                                      pipeline factory; PlanCommit at close:
//                                      inspection of an upload's data (and
//                                      conversion), the targets
//
// Data to be converted to raw is staged from its first byte (the
// conversion reads it back at random); everything else streams into the
// stores as it arrives.
//
// Thread safety: any thread; each call works on its own plan or write.
// Errors: as ImageService's StartImport, BeginWrite and CommitWrite.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "workflow/import_request.h"
#include "workflow/import_runner.h"

namespace imagefs {

class ImportPlanner {
 public:
  explicit ImportPlanner(ServiceCore& core) : core_(core) {}

  // The plan of a copy-image or web-download request, its lease held; null
  // when every store asked for already holds the image.
  Result<std::shared_ptr<ImportPlan>> PlanRequest(const Caller& caller, std::string_view id,
                                                  const ImportRequest& request);
  // Web-download: streams (or stages) the URI's data into the plan's
  // targets; a failure becomes the plan's source failure.
  void Fetch(ImportPlan& plan, const std::string& uri);

  Result<std::shared_ptr<StagedWrite>> BeginWrite(const Caller& caller, std::string_view id,
                                                  std::string_view site);
  // The plan of a committed write. On error `plan` still holds what must
  // go with it (the lease, the stream's temporaries).
  Status PlanCommit(const std::shared_ptr<StagedWrite>& write, ImportPlan& plan);
  // A write that never became an import (abandoned, or refused at
  // commit), its lease still held: an upload leaves the image queued
  // again, and the store is listed as failed.
  void SettleUnimportedWrite(const std::string& id, const std::string& site);

 private:
  // PlanRequest's and BeginWrite's work once the lease is held; each
  // takes the lease along when it succeeds.
  Result<std::shared_ptr<ImportPlan>> PlanLocked(LockedImage& locked, const ImportRequest& request);
  Result<std::shared_ptr<StagedWrite>> BeginWriteLocked(LockedImage& locked, std::string_view site);
  // Whether the catalog takes a copy in each of `targets` (Glance refuses
  // file:// locations), asked before any data is written.
  Status CheckPublishable(const std::string& id, const std::vector<std::string>& targets) const;
  std::string SourceStore(const ImageRecord& record) const;
  std::vector<std::string> CentralFirst(const ImageRecord& record,
                                        std::vector<std::string> targets) const;
  Result<std::vector<std::string>> Targets(const ImageRecord& record,
                                           const ImportRequest& request) const;
  // `expected`: a copy's, the image's data (none: an upload's).
  Result<StagedWrite::Stream> StartStream(const std::string& id,
                                          const std::vector<std::string>& targets,
                                          const std::optional<Digest>& expected);
  StagedWrite::StreamFactory StreamFactoryFor(std::string id, std::vector<std::string> targets,
                                              bool upload, std::optional<Digest> expected);
  Status InspectData(StagedWrite& write, const ImageRecord& record, ImportPlan& plan);

  ServiceCore& core_;
};

}  // namespace imagefs

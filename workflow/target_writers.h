// OpenTargetWriters: the writers of a copy's targets, opened at once, each
// on its store's threads (ServiceCore::RunAtStore), so that a target that
// does not answer holds up neither the others nor the caller longer than
// `wait`:
//
//   post one open per target -> wait for all, or until `wait` passes
//     (for a target whose store acknowledged another copy's write since,
//     `wait` from that answer: a busy link answers late, not never)
//     -> answered: its writer (or its error)
//     -> not answered: ETIMEDOUT; the open goes on there, and the writer
//        it makes, if any, is left there (StoreWriter::Leave): a reopened
//        temporary keeps its resume record for the next try, and recovery
//        removes one without a record
//
// Thread safety: any thread; `open` runs on the store's threads and must
// own everything it touches (it may outlive the call).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/store.h"
#include "workflow/service_core.h"

namespace imagefs {

using OpenWriter = std::function<Result<std::unique_ptr<StoreWriter>>()>;

// `open[i]` opens the writer into `sites[i]`; one result per site, in
// order. Without `wait`, it waits for every store.
std::vector<Result<std::unique_ptr<StoreWriter>>> OpenTargetWriters(
    ServiceCore& core, const std::vector<std::string>& sites, std::vector<OpenWriter> open,
    std::optional<std::chrono::milliseconds> wait);

}  // namespace imagefs

// BuildImageService: the running service a configuration describes. It
// opens every store (rbd stores connect in the background) and the
// catalog, and gives the daemon its identity (kept in the state directory).
//
// Errors: those of opening a store or the catalog (EINVAL for a bad store
// setting, ENOTSUP for a catalog of a newer format, EIO...).
#pragma once

#include <memory>

#include "common/result.h"
#include "workflow/config.h"
#include "workflow/image_service.h"

namespace imagefs {

Result<std::unique_ptr<ImageService>> BuildImageService(const Config& config);

}  // namespace imagefs

// A Glance image-import request body, as set through
// `setfattr -n user.glance.import -v '<json>'`:
//   {"method": {"name": "copy-image" | "web-download", "uri": "..."},
//    "stores": [...], "all_stores": bool, "all_stores_must_succeed": bool}
//
// ParseImportRequest fails with EINVAL for malformed JSON, an unknown method,
// wrong types, or both "stores" and "all_stores": true. Pure function.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace imagefs {

struct ImportRequest {
  enum class Method { kCopyImage, kWebDownload };
  Method method = Method::kCopyImage;
  std::string uri;  // web-download only
  std::vector<std::string> stores;
  bool all_stores = false;
  // The CLI's default is false: allow failure.
  bool all_stores_must_succeed = false;
  // imagefs's own, never in Glance's body (placement): a named store that
  // holds the image is left out, as all_stores leaves it out, instead of
  // EEXIST.
  bool skip_holders = false;
};

Result<ImportRequest> ParseImportRequest(std::string_view json);

}  // namespace imagefs

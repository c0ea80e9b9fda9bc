// The user.glance.import request, parsed from Glance's JSON (workflow/import_request.h).
#include "workflow/import_request.h"

#include <nlohmann/json.hpp>

namespace imagefs {

Result<ImportRequest> ParseImportRequest(std::string_view text) {
  using nlohmann::json;
  json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return Fail(EINVAL, "import request is not a JSON object");
  }
  ImportRequest request;
  try {
    const json& method = body.at("method");
    std::string name = method.at("name").get<std::string>();
    if (name == "copy-image") {
      request.method = ImportRequest::Method::kCopyImage;
    } else if (name == "web-download") {
      request.method = ImportRequest::Method::kWebDownload;
      request.uri = method.at("uri").get<std::string>();
    } else {
      return Fail(EINVAL, "import method '{}' is not supported (copy-image, web-download)", name);
    }
    if (body.contains("stores")) request.stores = body.at("stores").get<std::vector<std::string>>();
    request.all_stores = body.value("all_stores", false);
    request.all_stores_must_succeed = body.value("all_stores_must_succeed", false);
  } catch (const json::exception& e) {
    return Fail(EINVAL, "import request is malformed: {}", e.what());
  }
  if (request.all_stores && !request.stores.empty()) {
    return Fail(EINVAL, "import request names both 'stores' and 'all_stores'");
  }
  return request;
}

}  // namespace imagefs

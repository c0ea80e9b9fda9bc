// Glance API v2 calls (cloud/glance_client.h).
#include "cloud/glance_client.h"

#include <fmt/format.h>

#include <thread>

namespace imagefs {

using nlohmann::json;

Result<HttpResponse> GlanceClient::Call(const std::string& method, const std::string& path,
                                        const std::string& body, const std::string& content_type,
                                        const std::string& what) {
  bool idempotent = method == "GET" || method == "DELETE" || method == "HEAD";
  int attempts = idempotent ? 3 : 1;
  bool renewed = false;
  int attempt = 0;  // calls that counted: a 401 answered with a new token does not
  while (true) {
    auto credentials = identity_.Current();
    if (!credentials.ok()) return credentials.error();
    HttpRequest request{
        method, credentials->image_endpoint + path, {"Accept: application/json"}, body};
    if (!credentials->token.empty()) {
      request.headers.push_back("X-Auth-Token: " + credentials->token);
    }
    if (!content_type.empty()) request.headers.push_back("Content-Type: " + content_type);
    auto response = http_.Send(request);
    bool again = false;
    if (response.ok() && response->status == 401 && !renewed && !credentials->token.empty()) {
      identity_.Invalidate(credentials->token);
      renewed = true;
      continue;  // once, with a new token
    }
    ++attempt;
    // A refused connection is not tried again: Glance is not there, and
    // the caller hears so at once. A timeout or a 5xx may pass.
    if (!response.ok()) {
      again = response.code() != EHOSTUNREACH;
    } else if (response->status >= 500) {
      again = true;
    }
    if (!again || attempt >= attempts) {
      if (!response.ok())
        return Fail(response.code(), "glance: {}: {}", what, response.error().message);
      if (!response->ok()) return ErrorOfResponse(*response, "glance: " + what);
      return response;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(attempt == 1 ? 100 : 300));
  }
}

Result<json> GlanceClient::JsonOf(const Result<HttpResponse>& response, const std::string& what) {
  if (!response.ok()) return response.error();
  if (response->body.empty()) return json::object();
  auto parsed = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Fail(EIO, "glance: {}: the answer is not JSON", what);
  return parsed;
}

Result<std::vector<json>> GlanceClient::ListImages(std::string_view filter, int page) {
  std::vector<json> images;
  std::string path =
      fmt::format("/v2/images?limit={}{}{}", page, filter.empty() ? "" : "&", filter);
  while (!path.empty()) {
    auto listed = JsonOf(Call("GET", path, "", "", "list images"), "list images");
    if (!listed.ok()) return listed.error();
    if (!listed->contains("images") || !(*listed)["images"].is_array()) {
      return Fail(EIO, "glance: list images: no 'images' in the answer");
    }
    for (auto& image : (*listed)["images"]) images.push_back(std::move(image));
    // `next` is "/v2/images?marker=<last id>&limit=<n>" with the filter,
    // while more remain.
    path = listed->value("next", "");
  }
  return images;
}

Result<json> GlanceClient::GetImage(const std::string& id) {
  std::string what = fmt::format("image {}", id);
  return JsonOf(Call("GET", "/v2/images/" + id, "", "", what), what);
}

Result<json> GlanceClient::CreateImage(const json& fields) {
  std::string what = fmt::format("create image {}", fields.value("id", ""));
  auto created = JsonOf(Call("POST", "/v2/images", fields.dump(), "application/json", what), what);
  if (!created.ok() && created.code() == EBUSY) return Error{EEXIST, created.error().message};
  return created;
}

Result<json> GlanceClient::PatchImage(const std::string& id, const json& operations) {
  std::string what = fmt::format("change image {}", id);
  return JsonOf(Call("PATCH", "/v2/images/" + id, operations.dump(),
                     "application/openstack-images-v2.1-json-patch", what),
                what);
}

Status GlanceClient::DeleteImage(const std::string& id) {
  auto deleted = Call("DELETE", "/v2/images/" + id, "", "", fmt::format("delete image {}", id));
  if (!deleted.ok()) return deleted.error();
  return Ok();
}

Status GlanceClient::DeleteFromStore(const std::string& store, const std::string& id) {
  auto deleted = Call("DELETE", fmt::format("/v2/stores/{}/{}", store, id), "", "",
                      fmt::format("delete image {} from store {}", id, store));
  if (!deleted.ok()) return deleted.error();
  return Ok();
}

Result<std::string> GlanceClient::ProjectId() {
  auto credentials = identity_.Current();
  if (!credentials.ok()) return credentials.error();
  return credentials->project_id;
}

}  // namespace imagefs

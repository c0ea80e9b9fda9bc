// GlanceClient: the calls imagefs makes to Glance's API v2.
//
// Every call sends the identity's token (X-Auth-Token). A 401 invalidates
// it and the call is made once more with a new one; a 401 after that is
// EACCES. Idempotent calls (GET, DELETE) are tried up to three times when
// Glance times out or answers 5xx (after 0.1 s, then 0.3 s), not when it
// refuses the connection (EHOSTUNREACH at once); changes (POST, PATCH) are
// sent once, since Glance may have applied them.
//
// Thread safety: every method from any thread.
// Errors: ErrorOfResponse's errno for an HTTP status (cloud/http_client.h),
// with Glance's explanation in the message; HttpClient's when Glance does
// not answer. Messages name the call and the image, never a token.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cloud/http_client.h"
#include "cloud/identity.h"
#include "common/result.h"

namespace imagefs {

class GlanceClient {
 public:
  // `identity` and `http` must outlive the client.
  GlanceClient(Identity& identity, HttpClient& http) : identity_(identity), http_(http) {}

  // Every image the token may see (GET /v2/images, `page` at a time,
  // following `next`), or those `filter` selects: "updated_at=gte:<time>".
  Result<std::vector<nlohmann::json>> ListImages(std::string_view filter = "", int page = 500);
  Result<nlohmann::json> GetImage(const std::string& id);
  // POST /v2/images: `fields` may carry the id. 409: EEXIST.
  Result<nlohmann::json> CreateImage(const nlohmann::json& fields);
  // PATCH /v2/images/<id> with a JSON patch (a list of operations).
  Result<nlohmann::json> PatchImage(const std::string& id, const nlohmann::json& operations);
  Status DeleteImage(const std::string& id);
  // DELETE /v2/stores/<store>/<id>: Glance removes that store's copy.
  Status DeleteFromStore(const std::string& store, const std::string& id);
  // The project the token is scoped to ("" with auth_type none).
  Result<std::string> ProjectId();

  // One call; `what` names it in messages. Public for the calls above and
  // for tests.
  Result<HttpResponse> Call(const std::string& method, const std::string& path,
                            const std::string& body, const std::string& content_type,
                            const std::string& what);

 private:
  Result<nlohmann::json> JsonOf(const Result<HttpResponse>& response, const std::string& what);

  Identity& identity_;
  HttpClient& http_;
};

}  // namespace imagefs

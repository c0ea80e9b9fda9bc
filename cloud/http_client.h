// HttpClient: requests to an OpenStack service over libcurl.
//
// Contract:
// - Thread safety: Send may be called from any thread at the same time;
//   each call borrows one of the client's curl handles (so connections are
//   kept and reused) and gives it back.
// - Ownership: the client owns its handles; responses are copies.
// - Errors: Send fails only when no HTTP answer came: EHOSTUNREACH the
//   server could not be reached (refused, no route, name not found), EIO a
//   timeout or a broken transfer, EACCES a TLS certificate that does not
//   verify. Any HTTP status is a response; ErrnoOfStatus maps it.
// - Secrets: request and response bodies and headers are never logged; a
//   failure's message names the method and the URL only.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace imagefs {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;

  bool ok() const { return status >= 200 && status < 300; }
  // The header's value, "" when absent.
  std::string Header(const std::string& lower_case_name) const;
};

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{30000};  // the whole request
  std::string cacert;                        // a CA bundle; "" the system's
  bool verify = true;                        // verify the server's certificate
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  Result<HttpResponse> Send(const HttpRequest& request);

 private:
  class Handles;
  HttpOptions options_;
  std::unique_ptr<Handles> handles_;
};

// The errno an HTTP status stands for, by the rules of docs/contract.md
// ("Glance as the catalog"): 401 and 403 EACCES, 404 ENOENT, 409 EBUSY,
// 413 EFBIG, 400 and 415 EINVAL, 5xx and anything else EIO; 0 for 2xx.
int ErrnoOfStatus(long status);

// The error of a response that is not 2xx: ErrnoOfStatus, with a message
// naming `what` and the status, and the service's own explanation when its
// body carries one (Glance and Keystone put it in JSON or in the text).
Error ErrorOfResponse(const HttpResponse& response, std::string_view what);

}  // namespace imagefs

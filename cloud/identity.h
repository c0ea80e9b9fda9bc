// Identity: who imagefs is to the cloud, and where its image service is.
//
// - auth_type password: a Keystone v3 token (POST /v3/auth/tokens), scoped
//   to the cloud's project. The image endpoint is the token's service
//   catalog entry of type `image` for the cloud's interface (and region,
//   when one is named), unless image_endpoint_override names it.
// - auth_type none: no token; the endpoint is auth.endpoint.
// - A token is renewed before it expires (when less than a fifth of its
//   life, at most 5 minutes, is left) and when a service refused it
//   (Invalidate, after a 401).
//
// Thread safety: every method from any thread. One thread renews at a
// time; the others wait for its token (no lock is held while it asks).
// Errors: Keystone's answer as an errno (ErrorOfResponse: 401 EACCES for
// a wrong password), EHOSTUNREACH/EIO when it does not answer, ENOENT no
// image endpoint in the catalog. The password and tokens are never logged.
#pragma once

#include <memory>
#include <string>

#include "cloud/clouds_yaml.h"
#include "cloud/http_client.h"
#include "common/result.h"

namespace imagefs {

struct Credentials {
  std::string token;           // "" for auth_type none
  std::string image_endpoint;  // without a version: "https://glance:9292"
  std::string project_id;      // the token's project ("" for none)
};

class Identity {
 public:
  virtual ~Identity() = default;
  // The current credentials, renewed first when the token is near its end.
  virtual Result<Credentials> Current() = 0;
  // A service refused `token` (401): the next Current() asks for a new one.
  virtual void Invalidate(const std::string& token) = 0;
  // How many tokens were issued (for tests and metrics).
  virtual int tokens_issued() const = 0;
};

// `http` must outlive the identity.
std::unique_ptr<Identity> OpenIdentity(const CloudConfig& cloud, HttpClient& http);

// The image service's root from an endpoint URL: trailing slashes and a
// version ("/v2", "/v2.15") taken away, as glanceclient does.
std::string ImageServiceRoot(std::string endpoint);

}  // namespace imagefs

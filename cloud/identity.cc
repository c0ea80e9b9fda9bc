// Keystone v3 tokens and the image endpoint (cloud/identity.h).
#include "cloud/identity.h"

#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>

#include "common/log.h"
#include "common/mutex.h"
#include "common/time.h"

namespace imagefs {
namespace {

using nlohmann::json;

json NameOrId(const std::string& name, const std::string& id) {
  return id.empty() ? json{{"name", name}} : json{{"id", id}};
}

json PasswordBody(const CloudConfig& cloud) {
  json user = NameOrId(cloud.username, cloud.user_id);
  user["password"] = cloud.password;
  if (cloud.user_id.empty()) {
    user["domain"] = NameOrId(cloud.user_domain_name.empty() ? "Default" : cloud.user_domain_name,
                              cloud.user_domain_id);
  }
  json project = NameOrId(cloud.project_name, cloud.project_id);
  if (cloud.project_id.empty()) {
    project["domain"] =
        NameOrId(cloud.project_domain_name.empty() ? "Default" : cloud.project_domain_name,
                 cloud.project_domain_id);
  }
  return {{"auth",
           {{"identity", {{"methods", {"password"}}, {"password", {{"user", user}}}}},
            {"scope", {{"project", project}}}}}};
}

class NoAuthIdentity final : public Identity {
 public:
  explicit NoAuthIdentity(const CloudConfig& cloud)
      : endpoint_(ImageServiceRoot(cloud.image_endpoint_override.empty()
                                       ? cloud.endpoint
                                       : cloud.image_endpoint_override)) {}
  Result<Credentials> Current() override { return Credentials{"", endpoint_, ""}; }
  void Invalidate(const std::string&) override {}
  int tokens_issued() const override { return 0; }

 private:
  const std::string endpoint_;
};

class KeystoneIdentity final : public Identity {
 public:
  KeystoneIdentity(CloudConfig cloud, HttpClient& http) : cloud_(std::move(cloud)), http_(http) {}

  Result<Credentials> Current() override EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    while (true) {
      if (current_ && Fresh()) return *current_;
      if (!renewing_) break;
      renewed_.Wait();
    }
    renewing_ = true;
    lock.Unlock();
    auto issued = Issue();
    lock.Lock();
    renewing_ = false;
    renewed_.SignalAll();
    if (!issued.ok()) return issued.error();
    current_ = issued->first;
    issued_at_ = NowNanos();
    expires_at_ = issued->second;
    ++tokens_issued_;
    return *current_;
  }

  void Invalidate(const std::string& token) override EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    if (current_ && current_->token == token) current_.reset();
  }

  int tokens_issued() const override EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    return tokens_issued_;
  }

 private:
  // Whether the token has more than a fifth of its life (at most 5 min)
  // left.
  bool Fresh() const REQUIRES(mutex_) {
    if (expires_at_ == 0) return true;  // Keystone named no end
    int64_t life = expires_at_ - issued_at_;
    int64_t margin = std::min<int64_t>(life / 5, int64_t{300} * 1'000'000'000);
    return NowNanos() < expires_at_ - margin;
  }

  // A new token and its end (ns since the epoch; 0 when not given).
  Result<std::pair<Credentials, int64_t>> Issue() {
    std::string url = cloud_.auth_url;
    while (url.ends_with("/")) url.pop_back();
    if (!url.ends_with("/v3")) url += "/v3";
    HttpRequest request{"POST",
                        url + "/auth/tokens",
                        {"Content-Type: application/json", "Accept: application/json"},
                        PasswordBody(cloud_).dump()};
    auto response = http_.Send(request);
    if (!response.ok()) return Fail(response.code(), "keystone: {}", response.error().message);
    if (!response->ok()) {
      return ErrorOfResponse(
          *response, fmt::format("keystone: token for user {} at {}",
                                 cloud_.username.empty() ? cloud_.user_id : cloud_.username, url));
    }
    Credentials credentials;
    credentials.token = response->Header("x-subject-token");
    if (credentials.token.empty()) return Fail(EIO, "keystone at {}: answer without a token", url);
    auto body = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
    if (!body.is_object() || !body.contains("token")) {
      return Fail(EIO, "keystone at {}: the token's body is not JSON", url);
    }
    const json& token = body["token"];
    int64_t expires = ParseIsoTime(token.value("expires_at", ""));
    if (token.contains("project") && token["project"].is_object()) {
      credentials.project_id = token["project"].value("id", "");
    }
    if (!cloud_.image_endpoint_override.empty()) {
      credentials.image_endpoint = ImageServiceRoot(cloud_.image_endpoint_override);
    } else {
      auto endpoint = ImageEndpointIn(token);
      if (!endpoint.ok()) return endpoint.error();
      credentials.image_endpoint = ImageServiceRoot(*endpoint);
    }
    Log(LogLevel::kInfo, "keystone: token issued for project {} at {}, image service {}",
        credentials.project_id, url, credentials.image_endpoint);
    return std::pair{credentials, expires};
  }

  Result<std::string> ImageEndpointIn(const json& token) const {
    if (token.contains("catalog") && token["catalog"].is_array()) {
      for (const auto& service : token["catalog"]) {
        if (service.value("type", "") != "image" || !service.contains("endpoints")) continue;
        for (const auto& endpoint : service["endpoints"]) {
          if (endpoint.value("interface", "") != cloud_.interface) continue;
          std::string region = endpoint.value("region_id", endpoint.value("region", ""));
          if (!cloud_.region_name.empty() && region != cloud_.region_name) continue;
          return endpoint.value("url", "");
        }
      }
    }
    return Fail(ENOENT,
                "keystone: the service catalog has no image endpoint for interface {}{} "
                "(set image_endpoint_override in clouds.yaml)",
                cloud_.interface,
                cloud_.region_name.empty() ? "" : fmt::format(" in region {}", cloud_.region_name));
  }

  const CloudConfig cloud_;
  HttpClient& http_;
  mutable Mutex mutex_;
  CondVar renewed_{&mutex_};
  std::optional<Credentials> current_ GUARDED_BY(mutex_);
  int64_t issued_at_ GUARDED_BY(mutex_) = 0;
  int64_t expires_at_ GUARDED_BY(mutex_) = 0;
  bool renewing_ GUARDED_BY(mutex_) = false;
  int tokens_issued_ GUARDED_BY(mutex_) = 0;
};

}  // namespace

std::string ImageServiceRoot(std::string endpoint) {
  while (endpoint.ends_with("/")) endpoint.pop_back();
  static const std::regex kVersion(R"(/v[0-9]+(\.[0-9]+)?$)");
  endpoint = std::regex_replace(endpoint, kVersion, "");
  while (endpoint.ends_with("/")) endpoint.pop_back();
  return endpoint;
}

std::unique_ptr<Identity> OpenIdentity(const CloudConfig& cloud, HttpClient& http) {
  if (cloud.auth_type == "none") return std::make_unique<NoAuthIdentity>(cloud);
  return std::make_unique<KeystoneIdentity>(cloud, http);
}

}  // namespace imagefs

// Requests over libcurl (cloud/http_client.h).
#include "cloud/http_client.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/mutex.h"

namespace imagefs {
namespace {

// libcurl's global state, made once before the first handle.
void InitCurlOnce() {
  static const bool initialised = [] {
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  }();
  (void)initialised;
}

size_t CollectBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

size_t CollectHeader(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string_view line(data, size * count);
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) {
      value.remove_prefix(1);
    }
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
      value.remove_suffix(1);
    }
    (*headers)[name] = std::string(value);
  }
  return size * count;
}

int ErrnoOfCurl(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return EHOSTUNREACH;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return EACCES;
    default:
      return EIO;
  }
}

}  // namespace

// Idle curl handles: a request borrows one, so that its connection to the
// service is kept for the next request.
class HttpClient::Handles {
 public:
  ~Handles() {
    for (CURL* handle : idle_) curl_easy_cleanup(handle);
  }
  CURL* Take() EXCLUDES(mutex_) {
    {
      MutexLock lock(&mutex_);
      if (!idle_.empty()) {
        CURL* handle = idle_.back();
        idle_.pop_back();
        return handle;
      }
    }
    return curl_easy_init();
  }
  void Give(CURL* handle) EXCLUDES(mutex_) {
    curl_easy_reset(handle);  // keeps the connection cache
    MutexLock lock(&mutex_);
    idle_.push_back(handle);
  }

 private:
  Mutex mutex_;
  std::vector<CURL*> idle_ GUARDED_BY(mutex_);
};

std::string HttpResponse::Header(const std::string& lower_case_name) const {
  auto found = headers.find(lower_case_name);
  return found == headers.end() ? "" : found->second;
}

HttpClient::HttpClient(HttpOptions options)
    : options_(std::move(options)), handles_(std::make_unique<Handles>()) {
  InitCurlOnce();
}

HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  CURL* curl = handles_->Take();
  if (curl == nullptr) return Fail(ENOMEM, "{} {}: no curl handle", request.method, request.url);
  HttpResponse response;
  curl_slist* headers = nullptr;
  for (const auto& header : request.headers) headers = curl_slist_append(headers, header.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (request.method == "HEAD") curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
      request.method == "PATCH") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response.headers);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, options_.verify ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, options_.verify ? 2L : 0L);
  if (!options_.cacert.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.cacert.c_str());
  auto started = std::chrono::steady_clock::now();
  CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  // The URL carries no secret (tokens go in headers, passwords in bodies).
  Log(LogLevel::kDebug, "http: {} {}: {} in {} ms", request.method, request.url,
      code == CURLE_OK ? fmt::to_string(response.status) : curl_easy_strerror(code),
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                            started)
          .count());
  curl_slist_free_all(headers);
  handles_->Give(curl);
  if (code != CURLE_OK) {
    return Fail(ErrnoOfCurl(code), "{} {}: {}", request.method, request.url,
                curl_easy_strerror(code));
  }
  return response;
}

int ErrnoOfStatus(long status) {
  if (status >= 200 && status < 300) return 0;
  switch (status) {
    case 400:
    case 415:
      return EINVAL;
    case 401:
    case 403:
      return EACCES;
    case 404:
      return ENOENT;
    case 409:
      return EBUSY;
    case 413:
      return EFBIG;
    default:
      return EIO;
  }
}

Error ErrorOfResponse(const HttpResponse& response, std::string_view what) {
  // Glance answers {"message": ..., "title": ...} or a text page; Keystone
  // {"error": {"message": ...}}. Only the service's explanation is kept.
  std::string why;
  auto parsed = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) {
    if (parsed.contains("error") && parsed["error"].is_object() &&
        parsed["error"].value("message", "") != "") {
      why = parsed["error"]["message"].get<std::string>();
    } else if (parsed.value("message", "") != "") {
      why = parsed["message"].get<std::string>();
    }
  }
  if (why.empty()) {
    // Text: the last non-empty line says why (Glance's "403 Forbidden\n\n<why>").
    std::string text = response.body.substr(0, 1024);
    std::string line;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string candidate = text.substr(start, end - start);
      if (candidate.find_first_not_of(" \t\r") != std::string::npos) line = candidate;
      start = end + 1;
    }
    why = line;
  }
  while (!why.empty() && (why.back() == '\r' || why.back() == ' ')) why.pop_back();
  return Error{ErrnoOfStatus(response.status),
               why.empty() ? fmt::format("{}: HTTP {}", what, response.status)
                           : fmt::format("{}: HTTP {}: {}", what, response.status, why)};
}

}  // namespace imagefs

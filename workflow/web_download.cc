// Web-download imports with libcurl, each redirect checked (workflow/web_download.h).
#include "workflow/web_download.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <optional>

namespace imagefs {
namespace {

constexpr int kMaxRedirects = 5;

struct Transfer {
  CURL* handle = nullptr;
  const DownloadSink* sink = nullptr;
  uint64_t received = 0;
  std::optional<Error> sink_error;
};

// Whether the response being received is a redirect (its body is dropped).
bool IsRedirect(CURL* handle) {
  long code = 0;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code);
  return code >= 300 && code < 400;
}

size_t Receive(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t bytes = size * count;
  if (IsRedirect(transfer->handle)) return bytes;
  Status taken = (*transfer->sink)(transfer->received, std::span<const char>(data, bytes));
  if (!taken.ok()) {
    transfer->sink_error = taken.error();
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  transfer->received += bytes;
  return bytes;
}

void InitializeCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

template <typename T>
bool Contains(const std::vector<T>& items, const T& value) {
  return std::find(items.begin(), items.end(), value) != items.end();
}

// Glance's rule for one part of a URI (`what`: scheme, host or port):
// where the allowed list is set, the value must be in it and the
// disallowed list is ignored; else it must not be in the disallowed list.
// Why it is refused, or nullopt.
template <typename T>
std::optional<std::string> Refusal(std::string_view what, const T& value,
                                   const std::vector<T>& allowed,
                                   const std::vector<T>& disallowed) {
  if (!allowed.empty()) {
    if (Contains(allowed, value)) return std::nullopt;
    return fmt::format("{} {} is not in allowed_{}s", what, value, what);
  }
  if (!Contains(disallowed, value)) return std::nullopt;
  return fmt::format("{} {} is in disallowed_{}s", what, value, what);
}

// One part of a URI, or "" when it has none.
std::string UriPart(CURLU* url, CURLUPart part) {
  char* text = nullptr;
  if (curl_url_get(url, part, &text, 0) != CURLUE_OK || !text) return "";
  std::string value(text);
  curl_free(text);
  return value;
}

}  // namespace

Status CheckImportUri(const UriFilter& filter, std::string_view uri) {
  InitializeCurlOnce();
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> url(curl_url(), &curl_url_cleanup);
  std::string text(uri);
  if (!url || curl_url_set(url.get(), CURLUPART_URL, text.c_str(), 0) != CURLUE_OK) {
    return Fail(EINVAL, "web-download: '{}' is not a URI", uri);
  }
  size_t authority = uri.find("://");
  if (authority == std::string_view::npos || uri.substr(authority + 3).starts_with('/')) {
    return Fail(EINVAL, "web-download: '{}' has no scheme or no host", uri);
  }
  std::string scheme = UriPart(url.get(), CURLUPART_SCHEME);
  std::string host = UriPart(url.get(), CURLUPART_HOST);
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme.empty() || host.empty()) {
    return Fail(EINVAL, "web-download: '{}' has no scheme or no host", uri);
  }
  std::optional<std::string> refusal =
      Refusal("scheme", scheme, filter.allowed_schemes, filter.disallowed_schemes);
  if (!refusal) {
    refusal = Refusal("host", host, filter.allowed_hosts, filter.disallowed_hosts);
  }
  std::string port = UriPart(url.get(), CURLUPART_PORT);  // explicit ports only
  if (!refusal && !port.empty()) {
    refusal = Refusal("port", static_cast<uint32_t>(std::stoul(port)), filter.allowed_ports,
                      filter.disallowed_ports);
  }
  if (refusal) {
    return Fail(EPERM, "web-download: '{}' refused by [import_filtering_opts]: {}", uri, *refusal);
  }
  return Ok();
}

Result<uint64_t> Download(const std::string& uri, const DownloadOptions& options,
                          const UriFilter& filter, const DownloadSink& sink) {
  IMAGEFS_RETURN_IF_ERROR(CheckImportUri(filter, uri));
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return Fail(EIO, "web-download: cannot start a transfer");
  Transfer transfer;
  transfer.handle = curl.get();
  transfer.sink = &sink;
  char reason[CURL_ERROR_SIZE] = {};
  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);  // each redirect is checked first
  curl_easy_setopt(handle, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);  // several threads download at once
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT,
                   static_cast<long>(options.connect_timeout.count()));
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, options.low_speed_bytes);
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.stall.count()));
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &Receive);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, reason);
  std::string current = uri;
  for (int redirects = 0;; ++redirects) {
    curl_easy_setopt(handle, CURLOPT_URL, current.c_str());
    reason[0] = '\0';
    CURLcode code = curl_easy_perform(handle);
    if (code != CURLE_OK) {
      if (transfer.sink_error) return *transfer.sink_error;
      std::string why = reason[0] ? reason : curl_easy_strerror(code);
      int errno_code = code == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : EIO;
      return Fail(errno_code, "web-download of {} failed after {} bytes: {}", uri,
                  transfer.received, why);
    }
    char* next = nullptr;
    if (!IsRedirect(handle) ||
        curl_easy_getinfo(handle, CURLINFO_REDIRECT_URL, &next) != CURLE_OK || !next) {
      return transfer.received;
    }
    if (redirects == kMaxRedirects) {
      return Fail(EIO, "web-download of {} failed: more than {} redirects", uri, kMaxRedirects);
    }
    Status allowed = CheckImportUri(filter, next);
    if (!allowed.ok()) {
      return Error{allowed.code(),
                   fmt::format("{} (a redirect from {})", allowed.error().message, current)};
    }
    current = next;
  }
}

}  // namespace imagefs

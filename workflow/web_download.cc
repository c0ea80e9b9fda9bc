#include "workflow/web_download.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <optional>

namespace imagefs {
namespace {

struct Transfer {
  const DownloadSink* sink = nullptr;
  uint64_t received = 0;
  std::optional<Error> sink_error;
};

size_t Receive(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t bytes = size * count;
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

}  // namespace

bool IsDownloadUri(std::string_view uri) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (uri.starts_with(scheme) && uri.size() > scheme.size() && uri[scheme.size()] != '/') {
      return true;
    }
  }
  return false;
}

Result<uint64_t> Download(const std::string& uri, const DownloadOptions& options,
                          const DownloadSink& sink) {
  if (!IsDownloadUri(uri)) {
    return Fail(EINVAL, "web-download: '{}' is not an http or https URI", uri);
  }
  InitializeCurlOnce();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return Fail(EIO, "web-download: cannot start a transfer");
  Transfer transfer;
  transfer.sink = &sink;
  char reason[CURL_ERROR_SIZE] = {};
  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, uri.c_str());
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(handle, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(handle, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);  // several threads download at once
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT,
                   static_cast<long>(options.connect_timeout.count()));
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, options.low_speed_bytes);
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.stall.count()));
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &Receive);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, reason);
  CURLcode code = curl_easy_perform(handle);
  if (code == CURLE_OK) return transfer.received;
  if (transfer.sink_error) return *transfer.sink_error;
  std::string why = reason[0] ? reason : curl_easy_strerror(code);
  int errno_code = code == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : EIO;
  return Fail(errno_code, "web-download of {} failed after {} bytes: {}", uri, transfer.received,
              why);
}

}  // namespace imagefs

// Download: the data of a Glance web-download import, fetched with libcurl
// and handed to `sink` in order as it arrives (the sink streams it into the
// stores, workflow/stream_copy.h).
//
// Only http and https, also across redirects (at most 5). An HTTP error
// status fails the download, as does a stall: less than `low_speed_bytes`
// per second for `stall` (a server that stops sending), or no connection
// within `connect_timeout`.
//
// Thread safety: calls may run on any number of threads at once.
// Errors: EINVAL the URI is not http(s); the sink's error when it fails;
// ETIMEDOUT connect timeout or stall; EIO any other failure (HTTP status,
// refused connection, a body shorter than announced), with curl's reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "common/result.h"

namespace imagefs {

struct DownloadOptions {
  std::chrono::seconds connect_timeout{30};
  std::chrono::seconds stall{60};
  long low_speed_bytes = 1024;
};

using DownloadSink = std::function<Status(uint64_t offset, std::span<const char> data)>;

// Whether `uri` is one Download accepts (http:// or https://, a host).
bool IsDownloadUri(std::string_view uri);

// Fetches `uri` into `sink`; returns the bytes fetched.
Result<uint64_t> Download(const std::string& uri, const DownloadOptions& options,
                          const DownloadSink& sink);

}  // namespace imagefs

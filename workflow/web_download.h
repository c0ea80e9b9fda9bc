// Download: the data of a Glance web-download import, fetched with libcurl
// and handed to `sink` in order as it arrives (the sink streams it into the
// stores, workflow/pipeline.h).
//
// Only http and https, also across redirects (at most 5, each checked by
// the import filter before it is followed). An HTTP error
// status fails the download, as does a stall: less than `low_speed_bytes`
// per second for `stall` (a server that stops sending), or no connection
// within `connect_timeout`.
//
// Thread safety: calls may run on any number of threads at once.
// Errors: EINVAL the URI is not one; EPERM it, or a redirect, is refused by
// the filter; the sink's error when it fails;
// ETIMEDOUT connect timeout or stall; EIO any other failure (HTTP status,
// refused connection, a body shorter than announced), with curl's reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace imagefs {

struct DownloadOptions {
  std::chrono::seconds connect_timeout{30};
  std::chrono::seconds stall{60};
  long low_speed_bytes = 1024;
};

using DownloadSink = std::function<Status(uint64_t offset, std::span<const char> data)>;

// Which URIs a web-download may fetch, with the keys and defaults of
// Glance's [import_filtering_opts] and its rule: a URI passes when its
// scheme, host and explicit port (a URI without one passes the port check)
// are in the allowed lists, or not in the disallowed ones; where a key's
// allowed list is set, its disallowed list is ignored.
struct UriFilter {
  std::vector<std::string> allowed_schemes{"http", "https"};
  std::vector<std::string> disallowed_schemes;
  std::vector<std::string> allowed_hosts;
  std::vector<std::string> disallowed_hosts;
  std::vector<uint32_t> allowed_ports{80, 443};
  std::vector<uint32_t> disallowed_ports;
};

// EINVAL: not a URI with a scheme and a host; EPERM: refused by `filter`,
// the message naming the rule (e.g. "port 8080 is not in allowed_ports").
Status CheckImportUri(const UriFilter& filter, std::string_view uri);

// Fetches `uri` into `sink`; returns the bytes fetched. Each redirect is
// checked against `filter` before it is followed (EPERM when refused).
Result<uint64_t> Download(const std::string& uri, const DownloadOptions& options,
                          const UriFilter& filter, const DownloadSink& sink);

}  // namespace imagefs

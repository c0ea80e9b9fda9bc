// What every catalog shares (catalog/catalog.h): a replica's position.
#include "catalog/catalog.h"

#include <fmt/ranges.h>

#include <charconv>
#include <numeric>

namespace imagefs {
namespace {

thread_local bool without_network_waits = false;

}  // namespace

WithoutNetworkWaits::WithoutNetworkWaits() : outer_(without_network_waits) {
  without_network_waits = true;
}

WithoutNetworkWaits::~WithoutNetworkWaits() { without_network_waits = outer_; }

bool WithoutNetworkWaits::Here() { return without_network_waits; }

uint64_t CatalogPosition::Applied() const {
  return std::accumulate(seqs.begin(), seqs.end(), uint64_t{0});
}

std::string CatalogPosition::EncodeSeqs() const { return fmt::format("{}", fmt::join(seqs, ",")); }

CatalogPosition CatalogPosition::Decode(std::string catalog, std::string_view text) {
  CatalogPosition position{std::move(catalog), {}};
  const char* at = text.data();
  const char* end = text.data() + text.size();
  while (at != end) {
    uint64_t seq = 0;
    auto [next, error] = std::from_chars(at, end, seq);
    bool last = next == end;
    if (error != std::errc() || (!last && *next != ',')) return {position.catalog, {}};
    position.seqs.push_back(seq);
    at = last ? end : next + 1;
    if (at == end && !last) return {position.catalog, {}};  // a trailing comma
  }
  return position;
}

}  // namespace imagefs

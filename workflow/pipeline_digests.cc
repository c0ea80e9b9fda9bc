// The order of a pipeline's md5 and sha512 (workflow/pipeline_digests.h).
#include "workflow/pipeline_digests.h"

#include <algorithm>
#include <span>

namespace imagefs {

uint64_t InOrderDigests::Add(Entry entry) {
  entries_.push_back(entry);
  return base_ + entries_.size() - 1;
}

void InOrderDigests::Ready(uint64_t number, const char* data, uint64_t length) {
  entries_[number - base_] = Entry{data, length, true};
}

bool InOrderDigests::BeingHashed(uint64_t number) const {
  return (busy_[kMd5] && next_[kMd5] == number) || (busy_[kSha512] && next_[kSha512] == number);
}

std::vector<std::pair<InOrderDigests::Digester, InOrderDigests::Entry>>
InOrderDigests::StartNext() {
  std::vector<std::pair<Digester, Entry>> started;
  for (Digester which : {kMd5, kSha512}) {
    uint64_t next = next_[which];
    if (busy_[which] || next >= base_ + entries_.size()) continue;
    const Entry& entry = entries_[next - base_];
    if (!entry.ready) continue;
    busy_[which] = true;
    started.emplace_back(which, entry);
  }
  return started;
}

void InOrderDigests::Finished(Digester which) {
  busy_[which] = false;
  ++next_[which];
  while (!entries_.empty() && Passed() > base_) {
    entries_.pop_front();
    ++base_;
  }
}

void HashEntryInto(FullHasher& full, InOrderDigests::Digester which,
                   const InOrderDigests::Entry& entry) {
  for (uint64_t at = 0; at < entry.length; at += kDigestChunkBytes) {
    size_t length = static_cast<size_t>(std::min(kDigestChunkBytes, entry.length - at));
    auto piece =
        entry.data ? std::span<const char>(entry.data + at, length) : ZeroBytes().first(length);
    if (which == InOrderDigests::kMd5) {
      full.UpdateMd5(piece);
    } else {
      full.UpdateSha512(piece);
    }
  }
}

}  // namespace imagefs

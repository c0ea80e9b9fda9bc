// ResumeRecord: what a copy that stopped needs to go on later, kept with
// its temporary in the target store (StoreWriter::SaveResumeRecord): the
// image it copies (id, size, digest), the unit size, and the units that
// store acknowledged.
//
// Why it is safe: it is written only from acknowledgements, so it never
// names a unit the store does not hold; it lives and goes with the
// temporary (Publish, Discard and recovery's removal take it along), so it
// never outlives the data it describes; and a copy resumes from it only
// for the same image data (size and digest) and unit size, under the
// image's lease, reading and verifying the whole source again.
//
// Thread safety: plain data.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/mutex.h"
#include "common/result.h"
#include "store/digest.h"
#include "store/store.h"

namespace imagefs {

struct ResumeRecord {
  std::string image_id;
  Digest digest;  // of the image copied (size, md5, sha512, chunks)
  uint64_t unit_bytes = 0;
  std::vector<bool> acknowledged;  // by unit index
  int64_t saved_at = 0;            // ns since the epoch

  std::string Encode() const;
  // EINVAL when `text` is not one.
  static Result<ResumeRecord> Decode(std::string_view text);
  // Whether it goes on with a copy of image `id`, whose data is `digest`,
  // in units of `unit_bytes`.
  bool Resumes(std::string_view id, const Digest& digest, uint64_t unit_bytes) const;
  size_t UnitsAcknowledged() const;
};

// Keeps the resume records of a pipeline's writers current
// (PipelineOptions::acknowledged): each time a writer's store has
// acknowledged kSaveEvery more units, its record is saved, without
// waiting, one save of a writer at a time (a unit acknowledged while one
// is in flight waits for the next). Stop before the writers go.
class ResumeSaver : public std::enable_shared_from_this<ResumeSaver> {
 public:
  static constexpr int kSaveEvery = 1;
  // `writers[i]` writes the copy `records[i]` describes (with the units
  // its store had before).
  static std::shared_ptr<ResumeSaver> Make(std::vector<StoreWriter*> writers,
                                           std::vector<ResumeRecord> records);
  void Acknowledged(size_t writer, uint64_t unit) EXCLUDES(mutex_);
  // No save starts after it (one in flight ends on its own).
  void Stop() EXCLUDES(mutex_);

 private:
  struct Entry {
    StoreWriter* writer = nullptr;  // null: stopped, or its store keeps none
    ResumeRecord record;
    int unsaved = 0;
    bool saving = false;
  };
  Mutex mutex_;
  std::vector<Entry> entries_ GUARDED_BY(mutex_);
};

// Units as ranges, "0-12,14": the set bits of `units`; and back.
std::string EncodeUnits(const std::vector<bool>& units);
Result<std::vector<bool>> DecodeUnits(std::string_view text);

}  // namespace imagefs

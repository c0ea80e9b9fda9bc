// A copy's resume record (workflow/resume_record.h).
#include "workflow/resume_record.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/comma_list.h"
#include "common/log.h"
#include "common/number.h"
#include "common/time.h"

namespace imagefs {
namespace {

constexpr int kVersion = 1;
// A unit index past this is not one of an image (4 MiB units: 4 PiB).
constexpr uint64_t kMaxUnits = uint64_t{1} << 30;

Result<uint64_t> NumberOf(std::string_view text) {
  auto value = ParseNumber<uint64_t>(text);
  if (!value || *value >= kMaxUnits) {
    return Fail(EINVAL, "resume record: '{}' is not a unit", text);
  }
  return *value;
}

}  // namespace

std::string EncodeUnits(const std::vector<bool>& units) {
  std::string text;
  for (size_t i = 0; i < units.size();) {
    if (!units[i]) {
      ++i;
      continue;
    }
    size_t last = i;
    while (last + 1 < units.size() && units[last + 1]) ++last;
    if (!text.empty()) text += ',';
    text += last == i ? std::to_string(i) : std::to_string(i) + "-" + std::to_string(last);
    i = last + 1;
  }
  return text;
}

Result<std::vector<bool>> DecodeUnits(std::string_view text) {
  std::vector<bool> units;
  for (const auto& range : SplitCommaList(std::string(text))) {
    auto dash = range.find('-');
    auto first = NumberOf(std::string_view(range).substr(0, dash));
    if (!first.ok()) return first.error();
    uint64_t last = *first;
    if (dash != std::string::npos) {
      auto end = NumberOf(std::string_view(range).substr(dash + 1));
      if (!end.ok()) return end.error();
      last = *end;
    }
    if (last < *first) return Fail(EINVAL, "resume record: '{}' is not a range", range);
    if (units.size() <= last) units.resize(last + 1, false);
    std::fill(units.begin() + static_cast<ptrdiff_t>(*first),
              units.begin() + static_cast<ptrdiff_t>(last) + 1, true);
  }
  return units;
}

std::string ResumeRecord::Encode() const {
  return nlohmann::json{{"version", kVersion},      {"image", image_id},
                        {"size", digest.size},      {"md5", digest.md5},
                        {"sha512", digest.sha512},  {"chunks", digest.chunks},
                        {"unit_bytes", unit_bytes}, {"acknowledged", EncodeUnits(acknowledged)},
                        {"saved_at", saved_at}}
      .dump();
}

Result<ResumeRecord> ResumeRecord::Decode(std::string_view text) {
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (!json.is_object() || json.value("version", 0) != kVersion) {
    return Fail(EINVAL, "resume record: not one of version {}", kVersion);
  }
  try {
    ResumeRecord record;
    record.image_id = json.at("image").get<std::string>();
    record.digest.size = json.at("size").get<uint64_t>();
    record.digest.md5 = json.at("md5").get<std::string>();
    record.digest.sha512 = json.at("sha512").get<std::string>();
    record.digest.chunks = json.at("chunks").get<std::string>();
    record.unit_bytes = json.at("unit_bytes").get<uint64_t>();
    record.saved_at = json.at("saved_at").get<int64_t>();
    auto units = DecodeUnits(json.at("acknowledged").get<std::string>());
    if (!units.ok()) return units.error();
    record.acknowledged = std::move(units).value();
    return record;
  } catch (const nlohmann::json::exception& error) {
    return Fail(EINVAL, "resume record: {}", error.what());
  }
}

bool ResumeRecord::Resumes(std::string_view id, const Digest& image, uint64_t unit) const {
  return image_id == id && unit_bytes == unit && digest == image && unit_bytes > 0;
}

std::shared_ptr<ResumeSaver> ResumeSaver::Make(std::vector<StoreWriter*> writers,
                                               std::vector<ResumeRecord> records) {
  auto saver = std::make_shared<ResumeSaver>();
  MutexLock lock(&saver->mutex_);
  for (size_t i = 0; i < writers.size(); ++i) {
    saver->entries_.push_back({writers[i], std::move(records[i])});
  }
  return saver;
}

void ResumeSaver::Acknowledged(size_t w, uint64_t unit) {
  std::string text;
  StoreWriter* writer = nullptr;
  {
    MutexLock lock(&mutex_);
    if (w >= entries_.size() || !entries_[w].writer) return;
    Entry& entry = entries_[w];
    auto& units = entry.record.acknowledged;
    if (units.size() <= unit) units.resize(unit + 1, false);
    if (units[unit]) return;
    units[unit] = true;
    if (++entry.unsaved < kSaveEvery || entry.saving) return;
    entry.unsaved = 0;
    entry.saving = true;
    entry.record.saved_at = NowNanos();
    text = entry.record.Encode();
    writer = entry.writer;
  }
  writer->SaveResumeRecord(std::move(text), [self = shared_from_this(), w](Status saved) {
    if (!saved.ok() && saved.code() != EOPNOTSUPP) {
      Log(LogLevel::kDebug, "resume record not saved: {}", saved.error().message);
    }
    MutexLock lock(&self->mutex_);
    self->entries_[w].saving = false;
    if (!saved.ok() && saved.code() == EOPNOTSUPP) self->entries_[w].writer = nullptr;
  });
}

void ResumeSaver::Stop() {
  MutexLock lock(&mutex_);
  for (auto& entry : entries_) entry.writer = nullptr;
}

size_t ResumeRecord::UnitsAcknowledged() const {
  return static_cast<size_t>(std::count(acknowledged.begin(), acknowledged.end(), true));
}

}  // namespace imagefs

// The registry of files being written (fs/upload_registry.h).
#include "fs/upload_registry.h"

namespace imagefs {

bool UploadRegistry::Add(const Key& key, Upload upload) {
  MutexLock lock(&mutex_);
  return uploads_.emplace(key, std::move(upload)).second;
}

std::optional<Upload> UploadRegistry::Find(const Key& key) {
  MutexLock lock(&mutex_);
  auto it = uploads_.find(key);
  if (it == uploads_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::pair<std::string, std::string>> UploadRegistry::EntriesIn(InodeNumber directory) {
  MutexLock lock(&mutex_);
  std::vector<std::pair<std::string, std::string>> entries;
  for (auto it = uploads_.lower_bound({directory, ""});
       it != uploads_.end() && it->first.first == directory; ++it) {
    entries.emplace_back(it->first.second, it->second.write->image_id());
  }
  return entries;
}

bool UploadRegistry::SetDataTime(const Key& key, int64_t nanos) {
  MutexLock lock(&mutex_);
  auto it = uploads_.find(key);
  if (it == uploads_.end()) return false;
  it->second.data_mtime = nanos;
  return true;
}

Result<std::shared_ptr<StagedWrite>> UploadRegistry::BeginCommit(const Key& key, bool last_open) {
  MutexLock lock(&mutex_);
  auto it = uploads_.find(key);
  if (it == uploads_.end()) return Fail(ENOENT, "no upload named {}", key.second);
  if (it->second.state == UploadState::kCommitting)
    return Fail(EBUSY, "upload {} is being committed", key.second);
  if (last_open && it->second.open_handles > 1) {
    return Fail(EBUSY, "upload {} was opened again", key.second);
  }
  it->second.state = UploadState::kCommitting;
  return it->second.write;
}

std::shared_ptr<StagedWrite> UploadRegistry::Remove(const Key& key) {
  MutexLock lock(&mutex_);
  auto it = uploads_.find(key);
  if (it == uploads_.end()) return nullptr;
  auto write = std::move(it->second.write);
  uploads_.erase(it);
  return write;
}

Result<std::shared_ptr<StagedWrite>> UploadRegistry::Discard(const Key& key) {
  MutexLock lock(&mutex_);
  auto it = uploads_.find(key);
  if (it == uploads_.end()) return Fail(ENOENT, "no upload named {}", key.second);
  if (it->second.state == UploadState::kCommitting)
    return Fail(EBUSY, "upload {} is being committed", key.second);
  auto write = std::move(it->second.write);
  uploads_.erase(it);
  return write;
}

void UploadRegistry::MarkClosed(const Key& key, bool closed) {
  MutexLock lock(&mutex_);
  auto it = uploads_.find(key);
  if (it != uploads_.end()) it->second.closed_handles += closed ? 1 : -1;
}

std::shared_ptr<StagedWrite> UploadRegistry::Released(const Key& key, bool was_closed) {
  std::shared_ptr<StagedWrite> dropped;
  MutexLock lock(&mutex_);
  auto it = uploads_.find(key);
  if (it == uploads_.end()) return nullptr;
  Upload& upload = it->second;
  upload.open_handles--;
  if (was_closed) upload.closed_handles--;
  upload.last_release = std::chrono::steady_clock::now();
  if (upload.state != UploadState::kOpen || upload.open_handles > 0) return nullptr;
  if (upload.commit_at_rename || !upload.write->has_data()) {
    upload.state = UploadState::kWaiting;  // for a later open or its rename
    return nullptr;
  }
  dropped = std::move(upload.write);
  uploads_.erase(it);
  return dropped;
}

Result<Upload> UploadRegistry::Reopen(const Key& key) {
  MutexLock lock(&mutex_);
  auto it = uploads_.find(key);
  if (it == uploads_.end()) return Fail(ENOENT, "no upload named {}", key.second);
  if (it->second.state == UploadState::kCommitting)
    return Fail(EBUSY, "upload {} is being committed", key.second);
  if (it->second.open_handles > it->second.closed_handles) {
    return Fail(EBUSY, "upload {} is open", key.second);
  }
  it->second.open_handles++;
  it->second.state = UploadState::kOpen;
  return it->second;
}

std::shared_ptr<StagedWrite> UploadRegistry::Interrupt(const Key& key) {
  MutexLock lock(&mutex_);
  auto it = uploads_.find(key);
  if (it == uploads_.end() || it->second.state == UploadState::kCommitting) return nullptr;
  auto write = std::move(it->second.write);
  uploads_.erase(it);
  return write;
}

std::vector<UploadRegistry::Dropped> UploadRegistry::DropStale(std::chrono::seconds age) {
  std::vector<Dropped> dropped;
  auto now = std::chrono::steady_clock::now();
  MutexLock lock(&mutex_);
  for (auto it = uploads_.begin(); it != uploads_.end();) {
    const Upload& upload = it->second;
    if (upload.state == UploadState::kWaiting && now - upload.last_release > age) {
      dropped.push_back({it->first.second, upload.write, upload.write->has_data()});
      it = uploads_.erase(it);
    } else {
      ++it;
    }
  }
  return dropped;
}

std::vector<std::shared_ptr<StagedWrite>> UploadRegistry::Clear() {
  std::vector<std::shared_ptr<StagedWrite>> writes;
  MutexLock lock(&mutex_);
  for (auto& [key, upload] : uploads_) writes.push_back(std::move(upload.write));
  uploads_.clear();
  return writes;
}

}  // namespace imagefs

// The fault-injecting store wrapper of the failure tests (tests only).
#include "tests/unit/faulty_store.h"

#include <atomic>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace imagefs {
namespace {

class FaultyStoreImpl;

class FaultyWriter final : public StoreWriter {
 public:
  FaultyWriter(FaultyStoreImpl& store, std::unique_ptr<StoreWriter> inner)
      : store_(store), inner_(std::move(inner)) {}
  void WriteAt(uint64_t offset, std::span<const char> data, WriteDone done) override;
  Status ReadWritten(uint64_t offset, std::span<char> buffer) override {
    return inner_->ReadWritten(offset, buffer);
  }
  Status Finish(uint64_t size) override { return inner_->Finish(size); }
  Result<std::string> Publish() override;
  void Discard() override { inner_->Discard(); }
  std::string temporary() const override { return inner_->temporary(); }
  void Leave() override { inner_->Leave(); }
  void SaveResumeRecord(std::string record, std::function<void(Status)> done) override;

 private:
  FaultyStoreImpl& store_;
  std::unique_ptr<StoreWriter> inner_;
};

class FaultyStoreImpl final : public FaultyStore {
 public:
  using FaultyStore::FaultyStore;

  void SetPlan(const FaultPlan& plan) override {
    std::vector<StoreWriter::WriteDone> held;
    {
      MutexLock lock(&mutex_);
      plan_ = plan;
      writes_ = 0;
      held.swap(held_);
    }
    for (auto& done : held) done(Fail(ETIMEDOUT, "store {}: injected timeout", id()));
  }
  int writes_seen() const override { return writes_.load(); }
  uint64_t bytes_written() const override { return bytes_.load(); }
  void Wrote(uint64_t bytes) { bytes_ += bytes; }
  // Whether the link is cut now (after `number` writes); a write past the
  // cut is held: its answer comes when the plan changes.
  bool Cut(int number) {
    MutexLock lock(&mutex_);
    return plan_.cut_after_write > 0 && number > plan_.cut_after_write;
  }
  void Hold(StoreWriter::WriteDone done) {
    MutexLock lock(&mutex_);
    held_.push_back(std::move(done));
  }
  Result<std::unique_ptr<StoreWriter>> ReopenWriter(std::string_view image_id,
                                                    std::string_view temporary) override {
    if (Cut(writes_.load() + 1) || plan().down) {
      return Fail(ETIMEDOUT, "store {}: injected timeout", id());
    }
    if (plan().reopen_finished) {
      return Fail(EEXIST, "store {}: {} was finished already (injected)", id(), temporary);
    }
    auto writer = ForwardingStore::ReopenWriter(image_id, temporary);
    if (!writer.ok()) return writer.error();
    return std::unique_ptr<StoreWriter>(
        std::make_unique<FaultyWriter>(*this, std::move(writer).value()));
  }
  FaultPlan plan() {
    MutexLock lock(&mutex_);
    return plan_;
  }
  int CountWrite() { return ++writes_; }

  Result<std::unique_ptr<StoreWriter>> CreateWriter(std::string_view image_id,
                                                    uint64_t expected_size) override {
    if (plan().down) return Fail(ETIMEDOUT, "store {}: injected timeout", id());
    auto writer = ForwardingStore::CreateWriter(image_id, expected_size);
    if (!writer.ok()) return writer.error();
    return std::unique_ptr<StoreWriter>(
        std::make_unique<FaultyWriter>(*this, std::move(writer).value()));
  }
  Status Reconnect() override {
    if (plan().down) return Fail(ETIMEDOUT, "store {}: injected timeout", id());
    return ForwardingStore::Reconnect();
  }
  Status Remove(std::string_view image_id) override {
    if (plan().fail_remove) return Fail(EBUSY, "store {}: injected busy on remove", id());
    return ForwardingStore::Remove(image_id);
  }
  Result<bool> InUse(std::string_view image_id) override {
    if (plan().fail_remove) return true;
    return ForwardingStore::InUse(image_id);
  }

 private:
  Mutex mutex_;
  FaultPlan plan_ GUARDED_BY(mutex_);
  std::vector<StoreWriter::WriteDone> held_ GUARDED_BY(mutex_);
  std::atomic<int> writes_{0};
  std::atomic<uint64_t> bytes_{0};
};

void FaultyWriter::WriteAt(uint64_t offset, std::span<const char> data, WriteDone done) {
  FaultPlan plan = store_.plan();
  if (plan.write_stall.count() > 0) std::this_thread::sleep_for(plan.write_stall);
  int number = store_.CountWrite();
  if (plan.fail_write_number > 0 && number == plan.fail_write_number) {
    return done(
        Fail(plan.write_errno, "store {}: injected failure of write {}", store_.id(), number));
  }
  if (store_.Cut(number)) return store_.Hold(std::move(done));
  store_.Wrote(data.size());
  inner_->WriteAt(offset, data, std::move(done));
}

void FaultyWriter::SaveResumeRecord(std::string record, std::function<void(Status)> done) {
  if (store_.Cut(store_.writes_seen() + 1)) {
    return done(Fail(ETIMEDOUT, "store {}: injected timeout", store_.id()));
  }
  inner_->SaveResumeRecord(std::move(record), std::move(done));
}

Result<std::string> FaultyWriter::Publish() {
  if (store_.plan().fail_publish)
    return Fail(EIO, "store {}: injected publish failure", store_.id());
  return inner_->Publish();
}

}  // namespace

std::unique_ptr<FaultyStore> WrapWithFaults(std::unique_ptr<Store> inner) {
  return std::make_unique<FaultyStoreImpl>(std::move(inner));
}

}  // namespace imagefs

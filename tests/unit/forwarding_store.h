// ForwardingStore: a Store that passes every call to another one; the base
// of the test wrappers that change or watch a few calls (faults injected,
// calls counted). Tests only.
#pragma once

#include <memory>

#include "store/store.h"

namespace imagefs {

class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}

  const std::string& id() const override { return inner_->id(); }
  std::string LocationUrl(std::string_view image_id) const override {
    return inner_->LocationUrl(image_id);
  }
  Result<std::unique_ptr<StoreWriter>> CreateWriter(std::string_view image_id,
                                                    uint64_t expected_size) override {
    return inner_->CreateWriter(image_id, expected_size);
  }
  Result<std::unique_ptr<StoreWriter>> ReopenWriter(std::string_view image_id,
                                                    std::string_view temporary) override {
    return inner_->ReopenWriter(image_id, temporary);
  }
  Status Reconnect() override { return inner_->Reconnect(); }
  Result<std::string> ResumeRecord(const StoreTemporary& temporary) override {
    return inner_->ResumeRecord(temporary);
  }
  Result<std::unique_ptr<StoreReader>> OpenReader(std::string_view image_id) override {
    return inner_->OpenReader(image_id);
  }
  StoreFacts Facts() const override { return inner_->Facts(); }
  Result<StoreCapacity> Capacity() override { return inner_->Capacity(); }
  Status Remove(std::string_view image_id) override { return inner_->Remove(image_id); }
  Result<bool> Exists(std::string_view image_id) override { return inner_->Exists(image_id); }
  Result<bool> InUse(std::string_view image_id) override { return inner_->InUse(image_id); }
  Result<std::vector<std::string>> ListImages() override { return inner_->ListImages(); }
  Result<std::vector<StoreTemporary>> ListTemporaries() override {
    return inner_->ListTemporaries();
  }
  Status RemoveTemporary(const StoreTemporary& temporary) override {
    return inner_->RemoveTemporary(temporary);
  }

 private:
  std::unique_ptr<Store> inner_;
};

}  // namespace imagefs

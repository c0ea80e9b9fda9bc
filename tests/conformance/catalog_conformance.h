// The catalog conformance suite: every backend must pass it. Included by one
// test binary per backend, which instantiates it (INSTANTIATE_TEST_SUITE_P)
// with its CatalogBackend values.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "catalog/catalog.h"
#include "common/time.h"
#include "tests/unit/temporary_directory.h"

namespace imagefs {

struct CatalogBackend {
  std::string name;
  // Opens a catalog named by `directory` (a fresh, empty one per test);
  // twice with the same directory gives two handles on one catalog, as two
  // daemons would have.
  std::function<Result<std::unique_ptr<Catalog>>(const std::string& directory)> open;
};

inline void PrintTo(const CatalogBackend& backend, std::ostream* out) { *out << backend.name; }

inline constexpr char kCatalogTestId[] = "6a1f0c2e-1111-4c8e-9b53-3f0a1e2d4c5b";

inline ImageRecord NewRecord(const std::string& id) {
  ImageRecord record;
  record.id = id;
  record.owner = 42;
  record.created_at = record.updated_at = NowNanos();
  return record;
}

class CatalogConformanceTest : public ::testing::TestWithParam<CatalogBackend> {
 protected:
  void SetUp() override {
    auto opened = GetParam().open(directory_.path());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    catalog_ = std::move(opened).value();
  }
  TemporaryDirectory directory_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_P(CatalogConformanceTest, CreateGetListRemove) {
  ASSERT_TRUE(catalog_->Create(NewRecord(kCatalogTestId)).ok());
  EXPECT_EQ(catalog_->Create(NewRecord(kCatalogTestId)).code(), EEXIST);
  auto record = catalog_->Get(kCatalogTestId);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->owner, 42u);
  auto ids = catalog_->ListIds();
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, std::vector<std::string>{kCatalogTestId});
  ASSERT_TRUE(catalog_->Remove(kCatalogTestId).ok());
  EXPECT_EQ(catalog_->Get(kCatalogTestId).code(), ENOENT);
  EXPECT_EQ(catalog_->Remove(kCatalogTestId).code(), ENOENT);
}

TEST_P(CatalogConformanceTest, ListRecordsGivesEveryRecordInIdOrder) {
  std::vector<std::string> ids;
  for (int i = 2; i >= 0; --i) ids.push_back(fmt::format("00000000-0000-4000-8000-{:012}", i));
  for (const auto& id : ids) {
    ImageRecord record = NewRecord(id);
    record.name = "image " + id.substr(id.size() - 1);
    ASSERT_TRUE(catalog_->Create(record).ok());
  }
  auto listed = catalog_->ListRecords();
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const ListedRecord& entry = (*listed)[i];
    EXPECT_EQ(entry.id, ids[2 - i]);
    ASSERT_TRUE(entry.record.ok());
    EXPECT_EQ(entry.record->id, entry.id);
    EXPECT_EQ(entry.record->name, "image " + std::to_string(i));
  }
}

TEST_P(CatalogConformanceTest, UpdateAppliesOrAbortsWhole) {
  ASSERT_TRUE(catalog_->Create(NewRecord(kCatalogTestId)).ok());
  auto updated = catalog_->Update(kCatalogTestId, [](ImageRecord& record) -> Status {
    record.name = "renamed";
    record.locations.push_back({"central", "file:///x"});
    return Ok();
  });
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->name, "renamed");
  auto refused = catalog_->Update(kCatalogTestId, [](ImageRecord& record) -> Status {
    record.name = "lost";
    return Fail(EPERM, "no");
  });
  EXPECT_EQ(refused.code(), EPERM);
  EXPECT_EQ(catalog_->Get(kCatalogTestId)->name, "renamed");
  EXPECT_EQ(
      catalog_->Update("00000000-0000-0000-0000-000000000000", [](ImageRecord&) { return Ok(); })
          .code(),
      ENOENT);
}

TEST_P(CatalogConformanceTest, ConcurrentUpdatesFromTwoHandlesLoseNothing) {
  auto second = GetParam().open(directory_.path());
  ASSERT_TRUE(second.ok()) << second.error().message;
  ASSERT_TRUE(catalog_->Create(NewRecord(kCatalogTestId)).ok());
  constexpr int kPerThread = 50;
  auto bump = [&](Catalog& catalog, std::string key) {
    for (int i = 0; i < kPerThread; ++i) {
      auto updated = catalog.Update(kCatalogTestId, [&](ImageRecord& record) -> Status {
        int value = record.properties.count(key) ? std::stoi(record.properties[key]) : 0;
        record.properties[key] = std::to_string(value + 1);
        int total = record.properties.count("total") ? std::stoi(record.properties["total"]) : 0;
        record.properties["total"] = std::to_string(total + 1);
        return Ok();
      });
      ASSERT_TRUE(updated.ok()) << updated.error().message;
    }
  };
  std::thread a(bump, std::ref(*catalog_), "a");
  std::thread b(bump, std::ref(**second), "b");
  a.join();
  b.join();
  auto record = catalog_->Get(kCatalogTestId);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->properties.at("total"), std::to_string(2 * kPerThread));
  EXPECT_EQ(record->properties.at("a"), std::to_string(kPerThread));
  EXPECT_EQ(record->properties.at("b"), std::to_string(kPerThread));
}

TEST_P(CatalogConformanceTest, LeaseIsExclusiveUntilReleasedOrStale) {
  int64_t later = NowNanos() + 60'000'000'000;
  ASSERT_TRUE(catalog_->AcquireLease({kCatalogTestId, "holder-1", "copy to dcn0", later}).ok());
  Status busy = catalog_->AcquireLease({kCatalogTestId, "holder-2", "copy to dcn1", later});
  EXPECT_EQ(busy.code(), EBUSY);
  EXPECT_NE(busy.error().message.find("copy to dcn0"), std::string::npos);
  EXPECT_TRUE(catalog_->RenewLease(kCatalogTestId, "holder-1", later + 1).ok());
  EXPECT_EQ(catalog_->RenewLease(kCatalogTestId, "holder-2", later).code(), ESTALE);
  ASSERT_TRUE(catalog_->ReleaseLease(kCatalogTestId, "holder-1").ok());
  EXPECT_TRUE(catalog_->ReleaseLease(kCatalogTestId, "holder-1").ok());
  ASSERT_TRUE(catalog_->AcquireLease({kCatalogTestId, "holder-2", "copy to dcn1", later}).ok());
  auto lease = catalog_->GetLease(kCatalogTestId);
  ASSERT_TRUE(lease.ok() && lease->has_value());
  EXPECT_EQ((*lease)->holder, "holder-2");
}

TEST_P(CatalogConformanceTest, StaleLeaseIsTakenOverAndOldHolderLearnsIt) {
  int64_t past = NowNanos() - 1;
  ASSERT_TRUE(catalog_->AcquireLease({kCatalogTestId, "crashed", "upload", past}).ok());
  auto stale = catalog_->ListStaleLeases(NowNanos());
  ASSERT_TRUE(stale.ok());
  ASSERT_EQ(stale->size(), 1u);
  EXPECT_EQ((*stale)[0].holder, "crashed");
  ASSERT_TRUE(
      catalog_->AcquireLease({kCatalogTestId, "new", "copy", NowNanos() + 60'000'000'000}).ok());
  EXPECT_EQ(catalog_->RenewLease(kCatalogTestId, "crashed", NowNanos() + 1).code(), ESTALE);
  EXPECT_TRUE(catalog_->ListStaleLeases(NowNanos())->empty());
}

TEST_P(CatalogConformanceTest, RecordsSurviveReopen) {
  ImageRecord record = NewRecord(kCatalogTestId);
  record.properties["k"] = "v";
  ASSERT_TRUE(catalog_->Create(record).ok());
  catalog_.reset();
  auto reopened = GetParam().open(directory_.path());
  ASSERT_TRUE(reopened.ok());
  auto read = (*reopened)->Get(kCatalogTestId);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, record);
}

}  // namespace imagefs

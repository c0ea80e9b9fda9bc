// Deletes (workflow/deletes.h): per-store and whole-image, with their
// rules, through the service over real stores.
#include "tests/unit/workflow_fixture.h"

namespace imagefs {
namespace {

TEST_F(WorkflowTest, DeleteRulesKeepCentralAndTheLastCopy) {
  CreateActiveImage("abc");
  auto remove = [&](const std::string& site) {
    return Wait([&](auto cb) { service_->DeleteCopy(kOwner, kId, site, cb); });
  };
  EXPECT_EQ(remove("central").code(), EPERM);  // last copy
  ASSERT_TRUE(CopyTo(kOwner, {"dcn0"}).ok());
  EXPECT_EQ(remove("central").code(), EPERM);  // edges hold copies
  EXPECT_EQ(remove("dcn1").code(), ENOENT);
  faults_["dcn0"]->SetPlan({.fail_remove = true});
  EXPECT_EQ(remove("dcn0").code(), EBUSY);  // in use: the location stays
  EXPECT_TRUE(Record().HasStore("dcn0"));
  faults_["dcn0"]->SetPlan({});
  EXPECT_TRUE(remove("dcn0").ok());
  EXPECT_FALSE(Record().HasStore("dcn0"));
  EXPECT_FALSE(StoreHas("dcn0"));
}

TEST_F(WorkflowTest, DeleteImageWithACopyInUseDeletesNothing) {
  CreateActiveImage("abc");
  ASSERT_TRUE(CopyToAll(kOwner, false).ok());
  faults_["central"]->SetPlan({.fail_remove = true});
  EXPECT_EQ(Wait([&](auto cb) { service_->DeleteImage(kOwner, kId, cb); }).code(), EBUSY);
  EXPECT_EQ(Record().StoreIds(), (std::vector<std::string>{"central", "dcn0", "dcn1"}));
  for (const char* site : {"central", "dcn0", "dcn1"}) EXPECT_TRUE(StoreHas(site)) << site;
}

TEST_F(WorkflowTest, DeleteImageRemovesEveryCopyThenTheRecord) {
  CreateActiveImage("abc");
  ASSERT_TRUE(CopyToAll(kOwner, false).ok());
  EXPECT_TRUE(Wait([&](auto cb) { service_->DeleteImage(kOwner, kId, cb); }).ok());
  EXPECT_EQ(service_->GetImage(kId).code(), ENOENT);
  for (const char* site : {"central", "dcn0", "dcn1"}) EXPECT_FALSE(StoreHas(site)) << site;
}

// The staging budget gives ENOSPC, and data with a failed write never commits.

}  // namespace
}  // namespace imagefs

// The pipeline's parts alone: the account of its writers (statuses,
// stalls, acknowledged units) and the order of its md5 and sha512.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "workflow/pipeline_digests.h"
#include "workflow/pipeline_writers.h"

namespace imagefs {
namespace {

TEST(WriterAccountsTest, AFailureIsKeptAndTheLastOneFailsThePipeline) {
  PipelineOptions options;
  WriterAccounts accounts(2, options);
  EXPECT_EQ(accounts.Live(), (std::vector<size_t>{0, 1}));
  EXPECT_FALSE(accounts.Record(0, Fail(EIO, "first")));
  EXPECT_FALSE(accounts.Record(0, Fail(ENOSPC, "second")));  // the first is kept
  EXPECT_EQ(accounts.statuses()[0].code(), EIO);
  EXPECT_EQ(accounts.Live(), std::vector<size_t>{1});
  EXPECT_FALSE(accounts.Record(1, Ok()));
  EXPECT_TRUE(accounts.Record(1, Fail(EIO, "last")));
  EXPECT_TRUE(accounts.Live().empty());
}

// A writer stalls when its store answers none of its writes in flight
// for stall_after; one whose store answers another copy's does not; a
// writer with nothing in flight never does. A dropped write's late answer
// is ignored.
TEST(WriterAccountsTest, AWriterStallsOnlyWhileItsStoreAnswersNothing) {
  using std::chrono::seconds;
  PipelineOptions options;
  options.stall_after = seconds(10);
  auto other_copies = std::make_shared<StoreAnswerTime>();
  options.store_answered = {nullptr, other_copies};
  WriterAccounts accounts(3, options);
  accounts.AddSlot();
  accounts.AddSlot();
  accounts.Sent(0, 0);
  accounts.Sent(0, 1);
  accounts.Sent(1, 0);
  auto sent = WriterAccounts::Clock::now();
  EXPECT_TRUE(accounts.DropStalled(sent).empty());
  auto later = sent + seconds(11);
  other_copies->Mark(later);
  auto stalls = accounts.DropStalled(later);
  ASSERT_EQ(stalls.size(), 1u);
  EXPECT_EQ(stalls[0].writer, 0u);
  EXPECT_EQ(stalls[0].why.code, ETIMEDOUT);
  EXPECT_EQ(stalls[0].slots, (std::vector<size_t>{0, 1}));
  EXPECT_TRUE(accounts.DropStalled(later).empty());  // its writes no longer count
  EXPECT_FALSE(accounts.Answered(0, 0));             // dropped before
  EXPECT_TRUE(accounts.Answered(1, 0));
  EXPECT_FALSE(accounts.Answered(1, 0));
}

TEST(WriterAccountsTest, SkippedAndAcknowledgedUnitsAreToldAndKept) {
  PipelineOptions options;
  options.skip = {{false, true}};
  std::vector<std::pair<size_t, uint64_t>> told;
  options.acknowledged = [&](size_t writer, uint64_t unit) { told.emplace_back(writer, unit); };
  WriterAccounts accounts(2, options);
  EXPECT_FALSE(accounts.Skips(0, 0));
  EXPECT_TRUE(accounts.Skips(0, 1));
  EXPECT_FALSE(accounts.Skips(1, 1));  // no skip list of its own
  accounts.Acknowledge(0, 1);
  accounts.Acknowledge(1, 3);
  EXPECT_EQ(accounts.acknowledged()[0], (std::vector<bool>{false, true}));
  EXPECT_EQ(accounts.acknowledged()[1], (std::vector<bool>{false, false, false, true}));
  EXPECT_EQ(told, (std::vector<std::pair<size_t, uint64_t>>{{0, 1}, {1, 3}}));
}

// Units ready out of order are hashed in order, each digester at its own
// pace; an entry passed by both goes, and zeros hash as zeros.
TEST(InOrderDigestsTest, EntriesAreHashedInImageOrderWhateverOrderTheyAreReady) {
  std::string first(1000, 'a'), third(500, 'c');
  InOrderDigests order;
  uint64_t a = order.Add({});
  uint64_t zeros = order.Add({nullptr, 300, true});
  uint64_t c = order.Add({});
  order.Ready(c, third.data(), third.size());
  EXPECT_TRUE(order.StartNext().empty());  // the first is not ready
  order.Ready(a, first.data(), first.size());
  FullHasher full;
  auto run = [&](auto started) {
    for (auto [which, entry] : started) {
      HashEntryInto(full, which, entry);
      order.Finished(which);
    }
  };
  auto both = order.StartNext();
  ASSERT_EQ(both.size(), 2u);
  EXPECT_TRUE(order.BeingHashed(a));
  EXPECT_FALSE(order.BeingHashed(zeros));
  EXPECT_TRUE(order.StartNext().empty());  // each is busy
  run(both);
  EXPECT_EQ(order.Passed(), zeros);
  EXPECT_FALSE(order.empty());
  for (int round = 0; round < 4 && order.Passed() <= c; ++round) run(order.StartNext());
  EXPECT_EQ(order.Passed(), c + 1);
  EXPECT_TRUE(order.empty());
  Hasher direct;
  direct.Update(first);
  direct.Update(std::string(300, '\0'));
  direct.Update(third);
  Digest want = direct.Finish();
  EXPECT_EQ(full.FinishMd5(), want.md5);
  EXPECT_EQ(full.FinishSha512(), want.sha512);
}

}  // namespace
}  // namespace imagefs

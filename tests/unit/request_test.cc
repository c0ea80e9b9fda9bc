// Unit tests of the duty to answer a FUSE request exactly once (fs/request.h).
#include "fs/request.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace imagefs {
namespace {

TEST(OneReplyTest, OnlyTheFirstClaimAnswers) {
  int unanswered = 0;
  {
    OneReply duty([&] { ++unanswered; });
    EXPECT_TRUE(duty.Claim());
    EXPECT_FALSE(duty.Claim());
  }
  EXPECT_EQ(unanswered, 0);
}

// A job dropped, or a callback that threw, before anything answered.
TEST(OneReplyTest, ADutyNobodyClaimedAnswersWhenItGoes) {
  int unanswered = 0;
  {
    OneReply duty([&] { ++unanswered; });
  }
  EXPECT_EQ(unanswered, 1);
}

// A handler's EIO and its callback's reply racing on two threads.
TEST(OneReplyTest, ClaimsRacingOnManyThreadsAnswerOnce) {
  for (int round = 0; round < 200; ++round) {
    std::atomic<int> answers{0};
    int unanswered = 0;
    {
      OneReply duty([&] { ++unanswered; });
      std::vector<std::thread> threads;
      for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&] {
          if (duty.Claim()) ++answers;
        });
      }
      for (auto& thread : threads) thread.join();
    }
    ASSERT_EQ(answers.load(), 1);
    ASSERT_EQ(unanswered, 0);
  }
}

}  // namespace
}  // namespace imagefs

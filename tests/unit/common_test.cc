// Unit tests of common/: results, UUIDs, time.
#include <gtest/gtest.h>

#include <set>

#include "common/comma_list.h"
#include "common/number.h"
#include "common/result.h"
#include "common/time.h"
#include "common/uuid.h"

namespace imagefs {
namespace {

Result<int> Half(int value) {
  if (value % 2 != 0) return Fail(EINVAL, "{} is odd", value);
  return value / 2;
}

Status HalfTwice(int value) {
  auto once = Half(value);
  if (!once.ok()) return once.error();
  IMAGEFS_RETURN_IF_ERROR(Half(*once));
  return Ok();
}

TEST(ResultTest, CarriesValueOrErrnoAndMessage) {
  EXPECT_EQ(*Half(8), 4);
  auto odd = Half(3);
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.code(), EINVAL);
  EXPECT_EQ(odd.error().message, "3 is odd");
  EXPECT_TRUE(HalfTwice(8).ok());
  EXPECT_EQ(HalfTwice(6).code(), EINVAL);
}

TEST(ResultTest, NegativeLibraryCodesBecomePositiveErrno) {
  Error error = ErrorFromNegative(-EBUSY, "rbd_remove");
  EXPECT_EQ(error.code, EBUSY);
  EXPECT_NE(error.message.find("rbd_remove"), std::string::npos);
  EXPECT_EQ(ErrorFromNegative(0, "odd").code, EIO);
}

TEST(UuidTest, CanonicalLowerCaseOnly) {
  EXPECT_TRUE(IsUuid("0d7e3a52-6c1b-4c8e-9b53-3f0a1e2d4c5b"));
  EXPECT_FALSE(IsUuid("0D7E3A52-6C1B-4C8E-9B53-3F0A1E2D4C5B"));
  EXPECT_FALSE(IsUuid("0d7e3a526c1b4c8e9b533f0a1e2d4c5b"));
  EXPECT_FALSE(IsUuid("0d7e3a52-6c1b-4c8e-9b53-3f0a1e2d4c5"));
  EXPECT_FALSE(IsUuid("0d7e3a52-6c1b-4c8e-9b53-3f0a1e2d4c5g"));
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string id = NewUuid();
    EXPECT_TRUE(IsUuid(id)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 100u);
}

// Glance's and Keystone's timestamps read back, a fraction of a second and
// the zone letter aside; what is not one is 0.
TEST(TimeTest, IsoTimestampsReadBack) {
  EXPECT_EQ(ParseIsoTime("2026-12-06T05:20:20Z"), int64_t{1796534420} * 1'000'000'000);
  EXPECT_EQ(ParseIsoTime("2026-12-06T05:20:20.000000Z"), int64_t{1796534420} * 1'000'000'000);
  EXPECT_EQ(ParseIsoTime(FormatIsoTime(int64_t{1796534420} * 1'000'000'000)),
            int64_t{1796534420} * 1'000'000'000);
  EXPECT_EQ(ParseIsoTime(""), 0);
  EXPECT_EQ(ParseIsoTime("yesterday"), 0);
}

TEST(CommaListTest, ItemsAreTrimmedAndEmptyOnesLeftOut) {
  EXPECT_EQ(SplitCommaList("central:rbd, dcn0:rbd,\tdcn1:file "),
            (std::vector<std::string>{"central:rbd", "dcn0:rbd", "dcn1:file"}));
  EXPECT_EQ(SplitCommaList("a, ,b,"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(SplitCommaList("").empty());
  EXPECT_TRUE(SplitCommaList(" , ").empty());
}

TEST(NumberTest, OnlyTheWholeTextIsANumber) {
  EXPECT_EQ(ParseNumber<uint64_t>("42"), 42u);
  EXPECT_EQ(ParseNumber<int64_t>("-7"), -7);
  EXPECT_FALSE(ParseNumber<uint64_t>("-7"));  // no sign for unsigned types
  EXPECT_FALSE(ParseNumber<int>("12x"));
  EXPECT_FALSE(ParseNumber<int>(" 12"));
  EXPECT_FALSE(ParseNumber<int>(""));
  EXPECT_FALSE(ParseNumber<uint8_t>("256"));  // out of range
}

TEST(TimeTest, GlanceTimestampFormat) {
  EXPECT_EQ(FormatIsoTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatIsoTime(1'764'000'000'999'999'999), "2025-11-24T16:00:00Z");
}

}  // namespace
}  // namespace imagefs

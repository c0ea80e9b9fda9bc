// Metrics in Prometheus's text format (common/metrics.h): what a scraper
// (the node exporter's textfile collector) reads.
#include "common/metrics.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/unit/temporary_directory.h"

namespace imagefs {
namespace {

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override { Metrics::Get().Reset(); }
  void TearDown() override { Metrics::Get().Reset(); }
};

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST_F(MetricsTest, EveryFamilyIsDescribedEvenBeforeItCounts) {
  std::string text = "\n" + Metrics::Get().Render();
  for (const char* family :
       {"imagefs_imports_started_total counter", "imagefs_imports_succeeded_total counter",
        "imagefs_imports_failed_total counter", "imagefs_copied_bytes_total counter",
        "imagefs_operation_duration_seconds histogram", "imagefs_leases_held gauge",
        "imagefs_recovery_actions_total counter", "imagefs_catalog_live gauge"}) {
    EXPECT_TRUE(Has(text, std::string("# TYPE ") + family)) << family;
  }
  EXPECT_TRUE(Has(text, "imagefs_leases_held 0"));
}

TEST_F(MetricsTest, CountersGaugesAndLabels) {
  auto& metrics = Metrics::Get();
  metrics.Count(Metric::kImportsStarted, {{"store", "dcn0"}});
  metrics.Count(Metric::kImportsStarted, {{"store", "dcn0"}});
  metrics.Count(Metric::kCopiedBytes, {{"store", "dcn0"}}, 50331648);
  metrics.Count(Metric::kRecoveryActions, {{"action", "a \"quoted\"\\name"}});
  metrics.Set(Metric::kLeasesHeld, {}, 3);
  metrics.SetCollector([](Metrics& m) { m.Set(Metric::kCatalogLive, {}, 1); });
  std::string text = "\n" + metrics.Render();
  EXPECT_TRUE(Has(text, "imagefs_imports_started_total{store=\"dcn0\"} 2")) << text;
  EXPECT_TRUE(Has(text, "imagefs_copied_bytes_total{store=\"dcn0\"} 50331648")) << text;
  EXPECT_TRUE(Has(text, R"(imagefs_recovery_actions_total{action="a \"quoted\"\\name"} 1)"))
      << text;
  EXPECT_TRUE(Has(text, "imagefs_leases_held 3"));
  EXPECT_TRUE(Has(text, "imagefs_catalog_live 1"));
}

TEST_F(MetricsTest, HistogramBucketsAreCumulative) {
  auto& metrics = Metrics::Get();
  for (double seconds : {0.001, 0.2, 0.3, 7.0, 5000.0}) {
    metrics.Observe(Metric::kOperationSeconds, {{"operation", "copy"}}, seconds);
  }
  std::string text = "\n" + metrics.Render();
  const std::string name = "imagefs_operation_duration_seconds";
  EXPECT_TRUE(Has(text, name + "_bucket{operation=\"copy\",le=\"0.005\"} 1")) << text;
  EXPECT_TRUE(Has(text, name + "_bucket{operation=\"copy\",le=\"0.5\"} 3"));
  EXPECT_TRUE(Has(text, name + "_bucket{operation=\"copy\",le=\"15\"} 4"));
  EXPECT_TRUE(Has(text, name + "_bucket{operation=\"copy\",le=\"3600\"} 4"));
  EXPECT_TRUE(Has(text, name + "_bucket{operation=\"copy\",le=\"+Inf\"} 5"));
  EXPECT_TRUE(Has(text, name + "_count{operation=\"copy\"} 5"));
  EXPECT_TRUE(Has(text, name + "_sum{operation=\"copy\"} 5007.501"));
}

TEST_F(MetricsTest, TheWriterReplacesTheFileWhole) {
  TemporaryDirectory directory;
  std::string path = directory.Join("imagefs.prom");
  Metrics::Get().Count(Metric::kImportsFailed, {{"store", "dcn1"}});
  {
    MetricsWriter writer(path, std::chrono::seconds(3600));
    Metrics::Get().Count(Metric::kImportsFailed, {{"store", "dcn1"}});
  }  // the last write happens when it is destroyed
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(Has("\n" + text.str(), "imagefs_imports_failed_total{store=\"dcn1\"} 2"));
  EXPECT_FALSE(
      MetricsWriter(directory.Join("missing/dir/x.prom"), std::chrono::seconds(1)).WriteNow());
}

}  // namespace
}  // namespace imagefs

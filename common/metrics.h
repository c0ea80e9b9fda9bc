// Metrics for monitoring: counters, gauges and histograms of what the
// daemon does, rendered in Prometheus's text exposition format and written
// to a file (the node exporter's textfile collector reads *.prom files).
//
// Contract:
// - One registry per process (Metrics::Get()); every method may be called
//   from any thread. Counting is a map lookup under one mutex: cheap next
//   to what is counted (an import, a delete, a recovery action).
// - The families are fixed (Metric): a name cannot be misspelt at a call.
// - MetricsWriter replaces the file atomically (a temporary in the same
//   directory, renamed), every interval and once more when destroyed.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/mutex.h"

namespace imagefs {

enum class Metric {
  kImportsStarted,    // counter {store}
  kImportsSucceeded,  // counter {store}
  kImportsFailed,     // counter {store}
  kCopiedBytes,       // counter {store}: bytes of the copies published
  kOperationSeconds,  // histogram {operation}
  kLeasesHeld,        // gauge
  kRecoveryActions,   // counter {action}
  kCatalogLive,       // gauge: 1 live, 0 serving from the replica
  kCatalogChanges,    // counter: record changes the shared catalog stored
  kCatalogConflicts,  // counter: attempts of those that lost a race and were retried
  kOutages,           // counter {store}: copies that found their target not answering
  kOutageSeconds,     // counter {store}: seconds copies waited for their target
  kPlacedCopies,      // gauge {store, state}: images placed there, by placement state
};

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  static Metrics& Get();

  void Count(Metric metric, const MetricLabels& labels, double amount = 1) EXCLUDES(mutex_);
  void Set(Metric metric, const MetricLabels& labels, double value) EXCLUDES(mutex_);
  void Observe(Metric metric, const MetricLabels& labels, double seconds) EXCLUDES(mutex_);
  // Called at each Render() first, to set gauges read from elsewhere.
  void SetCollector(std::function<void(Metrics&)> collect) EXCLUDES(mutex_);
  // Every family, with HELP and TYPE, in the text format (0.0.4).
  std::string Render() EXCLUDES(mutex_);
  // Forgets every value (tests).
  void Reset() EXCLUDES(mutex_);

 private:
  struct Series {
    double value = 0;               // counter, gauge
    std::vector<uint64_t> buckets;  // histogram: observations <= each bound
    double sum = 0;
    uint64_t count = 0;
  };
  using Family = std::map<MetricLabels, Series>;

  Mutex mutex_;
  std::map<Metric, Family> families_ GUARDED_BY(mutex_);
  std::function<void(Metrics&)> collect_ GUARDED_BY(mutex_);
};

// Times an operation into kOperationSeconds{operation} when destroyed.
class OperationTimer {
 public:
  explicit OperationTimer(std::string operation)
      : operation_(std::move(operation)), started_(std::chrono::steady_clock::now()) {}
  ~OperationTimer();
  OperationTimer(const OperationTimer&) = delete;
  OperationTimer& operator=(const OperationTimer&) = delete;

 private:
  const std::string operation_;
  const std::chrono::steady_clock::time_point started_;
};

// Writes Metrics::Get().Render() to `path` every `interval`.
class MetricsWriter {
 public:
  MetricsWriter(std::string path, std::chrono::seconds interval);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // One write now; false (and a log line) when it failed.
  bool WriteNow();

 private:
  const std::string path_;
  const std::chrono::seconds interval_;
  Mutex mutex_;
  CondVar changed_{&mutex_};
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace imagefs

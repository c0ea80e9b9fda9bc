// Metrics in Prometheus's text format (common/metrics.h).
#include "common/metrics.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace imagefs {
namespace {

enum class Kind { kCounter, kGauge, kHistogram };

struct Description {
  const char* name;
  Kind kind;
  const char* help;
  bool labelled = true;  // without labels: one series, 0 until set
};

Description Describe(Metric metric) {
  switch (metric) {
    case Metric::kImportsStarted:
      return {"imagefs_imports_started_total", Kind::kCounter,
              "Imports (uploads, copies, web-downloads) started into each store."};
    case Metric::kImportsSucceeded:
      return {"imagefs_imports_succeeded_total", Kind::kCounter,
              "Imports whose copy was published in each store."};
    case Metric::kImportsFailed:
      return {"imagefs_imports_failed_total", Kind::kCounter,
              "Imports that left no copy in each store (failed or rolled back)."};
    case Metric::kCopiedBytes:
      return {"imagefs_copied_bytes_total", Kind::kCounter,
              "Bytes of the copies published in each store."};
    case Metric::kOperationSeconds:
      return {"imagefs_operation_duration_seconds", Kind::kHistogram,
              "How long operations took, from request to outcome."};
    case Metric::kLeasesHeld:
      return {"imagefs_leases_held", Kind::kGauge, "Import leases this daemon holds.", false};
    case Metric::kRecoveryActions:
      return {"imagefs_recovery_actions_total", Kind::kCounter,
              "What recovery repaired, by action."};
    case Metric::kCatalogLive:
      return {"imagefs_catalog_live", Kind::kGauge,
              "1 while the catalog answers, 0 while the mount serves from its replica.", false};
    case Metric::kCatalogChanges:
      return {"imagefs_catalog_changes_total", Kind::kCounter,
              "Record changes stored in the shared (rados) catalog.", false};
    case Metric::kCatalogConflicts:
      return {"imagefs_catalog_conflicts_total", Kind::kCounter,
              "Attempts to change a record of the shared catalog that lost a race with "
              "another change and were made again.",
              false};
    case Metric::kOutages:
      return {"imagefs_outages_total", Kind::kCounter,
              "Times a copy found its target store not answering and waited for it."};
    case Metric::kOutageSeconds:
      return {"imagefs_outage_seconds_total", Kind::kCounter,
              "Seconds copies waited for their target store to answer again."};
    case Metric::kPlacedCopies:
      return {"imagefs_placed_copies", Kind::kGauge,
              "Images placed in each store, by placement state (converged, copying, waiting, "
              "failed)."};
  }
  return {"imagefs_unknown", Kind::kGauge, ""};
}

constexpr std::array<Metric, 13> kAll = {
    Metric::kImportsStarted,   Metric::kImportsSucceeded, Metric::kImportsFailed,
    Metric::kCopiedBytes,      Metric::kOperationSeconds, Metric::kLeasesHeld,
    Metric::kRecoveryActions,  Metric::kCatalogLive,      Metric::kCatalogChanges,
    Metric::kCatalogConflicts, Metric::kOutages,          Metric::kOutageSeconds,
    Metric::kPlacedCopies};

// Upper bounds of the histogram buckets, in seconds: from a catalog update
// to a copy of a large image over a WAN.
constexpr std::array<double, 12> kBounds = {0.005, 0.025, 0.1, 0.5, 1,    5,
                                            15,    60,    300, 900, 1800, 3600};

std::string Escape(const std::string& value) {
  std::string escaped;
  for (char c : value) {
    if (c == '\\' || c == '"') escaped.push_back('\\');
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped.push_back(c);
  }
  return escaped;
}

// {a="x",b="y"} with `extra` appended (le="..."); "" without labels.
std::string LabelText(const MetricLabels& labels, const std::string& extra = "") {
  std::string text;
  for (const auto& [name, value] : labels) {
    text += fmt::format("{}{}=\"{}\"", text.empty() ? "" : ",", name, Escape(value));
  }
  if (!extra.empty()) text += (text.empty() ? "" : ",") + extra;
  return text.empty() ? text : "{" + text + "}";
}

std::string Number(double value) { return fmt::format("{}", value); }

}  // namespace

Metrics& Metrics::Get() {
  static Metrics metrics;
  return metrics;
}

void Metrics::Count(Metric metric, const MetricLabels& labels, double amount) {
  MutexLock lock(&mutex_);
  families_[metric][labels].value += amount;
}

void Metrics::Set(Metric metric, const MetricLabels& labels, double value) {
  MutexLock lock(&mutex_);
  families_[metric][labels].value = value;
}

void Metrics::Observe(Metric metric, const MetricLabels& labels, double seconds) {
  MutexLock lock(&mutex_);
  Series& series = families_[metric][labels];
  if (series.buckets.empty()) series.buckets.resize(kBounds.size());
  for (size_t i = 0; i < kBounds.size(); ++i) {
    if (seconds <= kBounds[i]) ++series.buckets[i];
  }
  series.sum += seconds;
  ++series.count;
}

void Metrics::SetCollector(std::function<void(Metrics&)> collect) {
  MutexLock lock(&mutex_);
  collect_ = std::move(collect);
}

void Metrics::Reset() {
  MutexLock lock(&mutex_);
  families_.clear();
  collect_ = nullptr;
}

std::string Metrics::Render() {
  std::function<void(Metrics&)> collect;
  {
    MutexLock lock(&mutex_);
    collect = collect_;
  }
  if (collect) collect(*this);
  MutexLock lock(&mutex_);
  std::string text;
  for (Metric metric : kAll) {
    Description description = Describe(metric);
    const char* type = description.kind == Kind::kCounter ? "counter"
                       : description.kind == Kind::kGauge ? "gauge"
                                                          : "histogram";
    text += fmt::format("# HELP {} {}\n# TYPE {} {}\n", description.name, description.help,
                        description.name, type);
    const Family& family = families_[metric];
    if (family.empty() && !description.labelled) text += fmt::format("{} 0\n", description.name);
    for (const auto& [labels, series] : family) {
      if (description.kind != Kind::kHistogram) {
        text += fmt::format("{}{} {}\n", description.name, LabelText(labels), Number(series.value));
        continue;
      }
      for (size_t i = 0; i < kBounds.size(); ++i) {
        text += fmt::format("{}_bucket{} {}\n", description.name,
                            LabelText(labels, fmt::format("le=\"{}\"", Number(kBounds[i]))),
                            series.buckets[i]);
      }
      text += fmt::format("{}_bucket{} {}\n", description.name, LabelText(labels, "le=\"+Inf\""),
                          series.count);
      text += fmt::format("{}_sum{} {}\n", description.name, LabelText(labels), Number(series.sum));
      text += fmt::format("{}_count{} {}\n", description.name, LabelText(labels), series.count);
    }
  }
  return text;
}

OperationTimer::~OperationTimer() {
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - started_;
  Metrics::Get().Observe(Metric::kOperationSeconds, {{"operation", operation_}}, took.count());
}

MetricsWriter::MetricsWriter(std::string path, std::chrono::seconds interval)
    : path_(std::move(path)), interval_(interval) {
  WriteNow();
  thread_ = std::thread([this] {
    MutexLock lock(&mutex_);
    while (!stopping_) {
      changed_.WaitFor(interval_);
      if (stopping_) break;
      lock.Unlock();
      WriteNow();
      lock.Lock();
    }
  });
}

MetricsWriter::~MetricsWriter() {
  {
    MutexLock lock(&mutex_);
    stopping_ = true;
    changed_.SignalAll();
  }
  thread_.join();
  WriteNow();
}

bool MetricsWriter::WriteNow() {
  std::string text = Metrics::Get().Render();
  std::string temporary = fmt::format("{}.tmp.{}", path_, ::getpid());
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool written =
      fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int error = errno;
  if (fd >= 0) ::close(fd);
  if (written && ::rename(temporary.c_str(), path_.c_str()) == 0) return true;
  if (written) error = errno;
  ::unlink(temporary.c_str());
  Log(LogLevel::kWarning, "metrics: cannot write {}: {}", path_, std::strerror(error));
  return false;
}

}  // namespace imagefs

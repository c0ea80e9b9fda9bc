// The rados catalog: image records and leases in the omap of two RADOS
// objects on the central cluster, shared by every imagefs daemon that names
// the same pool and namespace.
//
//   <pool>/<namespace>/imagefs.images   omap <image id> -> record (JSON)
//                                            ~catalog -> this catalog's id
//                                            ~seq.<L> -> changes so far in
//                                                        change log L
//                                            ~log.<L>.<seq, 16 hex digits>
//                                                     -> id changed then
//                                       xattr imagefs.format = catalog format
//   <pool>/<namespace>/imagefs.leases   omap <image id> -> lease (JSON)
//
// Every change is a compare-and-set in one RADOS write operation:
// omap_cmp(key == value read) + omap_set (or omap_rm_keys). A missing key
// compares equal to the empty value, which no record or lease ever is, so
// "create if absent" is the same operation. When another daemon changed
// the value in between, the OSD cancels the operation (ECANCELED) and the
// read-modify-write starts again from a fresh read. No update is lost and
// nothing is locked across daemons except through the leases.
//
// A change of a record also compares and counts up the counter of one of
// kChangeLogs change logs (L, one hex digit, chosen by a hash of the id)
// and writes that log's entry of the new count, in the same operation: no
// log ever misses a change, and replicas follow them all (ChangesSince) by
// reading their counters in one read. With one log for every image, any
// two changes made at once collided on its counter and one started again;
// with 16, only changes whose ids hash alike do. Which log a change goes to
// matters only for that: every log is read, and the record has its own
// compare. Each log keeps its last changes_kept / kChangeLogs entries; a
// replica further behind reads every record again.
//
// The reserved keys start with '~', after every image id (a UUID), so
// listings stop at the first of them. Format 2 added them with one log;
// format 3 has kChangeLogs. A daemon of this build upgrades an older
// catalog when it opens it, in one write: it removes format 2's log and
// sets its counter `~seq` to text that is not a number, so that a daemon
// of an older build still running fails each change with an error instead
// of logging it where no replica of this build looks. Such a daemon must
// be restarted with this build (it refuses to open a newer format).
#include <array>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "catalog/catalog.h"
#include "ceph/cluster.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/uuid.h"

namespace imagefs {
namespace {

constexpr char kImagesObject[] = "imagefs.images";
constexpr char kLeasesObject[] = "imagefs.leases";
constexpr char kFormatAttribute[] = "imagefs.format";
constexpr int kCatalogFormat = 3;
constexpr size_t kChangeLogs = 16;
constexpr unsigned kPage = 500;
constexpr int kMaxAttempts = 1000;
constexpr char kReservedPrefix = '~';
constexpr char kCatalogIdKey[] = "~catalog";
constexpr char kLogPrefix[] = "~log.";
constexpr char kFormat2SeqKey[] = "~seq";  // format 2's one counter
constexpr char kUpgradedSeq[] = "upgraded to format 3";

std::string SeqKey(size_t log) { return fmt::format("~seq.{:x}", log); }
std::string LogPrefix(size_t log) { return fmt::format("{}{:x}.", kLogPrefix, log); }
std::string LogKey(size_t log, uint64_t seq) {
  return fmt::format("{}{:016x}", LogPrefix(log), seq);
}

// Format 2's entries were ~log.<16 hex digits>, with no log number.
bool IsFormat2LogKey(const std::string& key) {
  return key.size() == sizeof(kLogPrefix) - 1 + 16 &&
         key.find('.', sizeof(kLogPrefix) - 1) == std::string::npos;
}

// The change log of image `id`'s changes. Any choice is correct (see
// above); a stable one spreads the ids evenly.
size_t LogOf(std::string_view id) { return std::hash<std::string_view>{}(id) % kChangeLogs; }

bool IsReserved(const std::string& key) { return !key.empty() && key[0] == kReservedPrefix; }

// The stored counter ("" when none was ever stored) as a number.
uint64_t ParseSeq(const std::string& text) { return text.empty() ? 0 : std::stoull(text); }

// The value `key` has in `values`, "" when absent.
std::string ValueOf(const std::map<std::string, ceph::bufferlist>& values, const std::string& key) {
  auto it = values.find(key);
  return it == values.end() ? std::string() : it->second.to_str();
}

std::string EncodeLease(const Lease& lease) {
  return nlohmann::json{
      {"holder", lease.holder}, {"purpose", lease.purpose}, {"expires_at", lease.expires_at}}
      .dump();
}

Result<Lease> DecodeLease(std::string_view image_id, const std::string& text) {
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return Fail(EINVAL, "catalog: lease of image {} is not JSON", image_id);
  }
  Lease lease;
  lease.image_id = std::string(image_id);
  lease.holder = json.value("holder", "");
  lease.purpose = json.value("purpose", "");
  lease.expires_at = json.value("expires_at", int64_t{0});
  return lease;
}

// Backs off a little between attempts that lost a race, so that many
// daemons updating one record make progress instead of colliding forever.
void BackOff(int attempt) {
  thread_local std::mt19937 random(std::random_device{}());
  int limit = std::min(attempt, 10) * 200 + 100;
  std::this_thread::sleep_for(
      std::chrono::microseconds(std::uniform_int_distribution<int>(0, limit)(random)));
}

class RadosCatalog final : public SharedCatalog {
 public:
  RadosCatalog(std::shared_ptr<CephCluster> cluster, librados::IoCtx ioctx, std::string where,
               uint64_t changes_kept)
      : cluster_(std::move(cluster)),
        ioctx_(std::move(ioctx)),
        where_(std::move(where)),
        kept_per_log_(std::max<uint64_t>(changes_kept / kChangeLogs, 1)),
        trim_every_(std::max<uint64_t>(kept_per_log_ / 32, 1)) {}

  // Creates the catalog (or upgrades a format-1 one) when needed.
  Status Initialize() {
    ceph::bufferlist value;
    int ret = ioctx_.getxattr(kImagesObject, kFormatAttribute, value);
    if (ret < 0 && ret != -ENOENT && ret != -ENODATA) return Failed(ret, "read the format");
    int found = ret < 0 ? 0 : std::atoi(value.to_str().c_str());
    if (found > kCatalogFormat) {
      return Fail(ENOTSUP, "catalog {}: format {} is newer than this build ({})", where_, found,
                  kCatalogFormat);
    }
    if (found == kCatalogFormat) return Ok();
    // Whoever stores the id first names the catalog; the others keep it.
    ret = CompareAndSet(kImagesObject, kCatalogIdKey, "", NewUuid());
    if (ret < 0 && ret != -ECANCELED) return Failed(ret, "name the catalog");
    std::set<std::string> format2_log;
    IMAGEFS_RETURN_IF_ERROR(
        ForEachKey(kImagesObject, kLogPrefix, "list format 2's log", [&](const std::string& key) {
          if (IsFormat2LogKey(key)) format2_log.insert(key);
        }));
    librados::ObjectWriteOperation op;
    op.create(false);
    std::map<std::string, ceph::bufferlist> upgraded;
    upgraded[kFormat2SeqKey].append(kUpgradedSeq);
    op.omap_set(upgraded);
    if (!format2_log.empty()) op.omap_rm_keys(format2_log);
    ceph::bufferlist format;
    format.append(std::to_string(kCatalogFormat));
    op.setxattr(kFormatAttribute, format);
    ret = ioctx_.operate(kImagesObject, &op);
    if (ret < 0) return Failed(ret, "store the format");
    Log(LogLevel::kInfo, "catalog: {} in {} (format {})", found ? "upgraded" : "created", where_,
        kCatalogFormat);
    return Ok();
  }

  Status Create(const ImageRecord& record) override {
    std::string encoded = EncodeRecord(record);
    auto created = ChangeRecord(
        record.id, "create",
        [&](const std::optional<std::string>& current) -> Result<std::optional<std::string>> {
          if (current) return Fail(EEXIST, "image {} already exists", record.id);
          return std::optional<std::string>(encoded);
        });
    if (!created.ok()) return created.error();
    return Ok();
  }

  Result<ImageRecord> Get(std::string_view id) override {
    auto value = Read(kImagesObject, id);
    if (!value.ok()) return value.error();
    if (!*value) return Fail(ENOENT, "image {} does not exist", id);
    return DecodeRecord(**value);
  }

  Result<std::vector<std::string>> ListIds() override {
    std::vector<std::string> ids;
    std::string after;
    while (true) {
      librados::ObjectReadOperation op;
      std::set<std::string> keys;
      bool more = false;
      int prval = 0;
      op.omap_get_keys2(after, kPage, &keys, &more, &prval);
      int ret = ioctx_.operate(kImagesObject, &op, nullptr);
      if (ret == -ENOENT) break;
      if (ret < 0 || prval < 0) return Failed(ret < 0 ? ret : prval, "list images");
      for (const auto& key : keys) {
        if (IsReserved(key)) return ids;
        ids.push_back(key);
      }
      if (!more || keys.empty()) break;
      after = *keys.rbegin();
    }
    return ids;
  }

  Result<std::vector<ListedRecord>> ListRecords() override {
    std::vector<ListedRecord> records;
    IMAGEFS_RETURN_IF_ERROR(ForEachValue(kImagesObject, "list images", [&](auto& id, auto& value) {
      records.push_back({id, DecodeRecord(value.to_str())});
    }));
    return records;
  }

  Result<ImageRecord> Update(std::string_view id, const Mutation& mutate) override {
    ImageRecord stored;
    auto changed = ChangeRecord(
        id, "update",
        [&](const std::optional<std::string>& current) -> Result<std::optional<std::string>> {
          if (!current) return Fail(ENOENT, "image {} does not exist", id);
          auto record = DecodeRecord(*current);
          if (!record.ok()) return record.error();
          IMAGEFS_RETURN_IF_ERROR(mutate(*record));
          record->updated_at = NowNanos();
          stored = *record;
          return std::optional<std::string>(EncodeRecord(stored));
        });
    if (!changed.ok()) return changed.error();
    return stored;
  }

  Status Remove(std::string_view id) override {
    auto removed = ChangeRecord(
        id, "remove",
        [&](const std::optional<std::string>& current) -> Result<std::optional<std::string>> {
          if (!current) return Fail(ENOENT, "image {} does not exist", id);
          return std::optional<std::string>();
        });
    if (!removed.ok()) return removed.error();
    return Ok();
  }

  Result<CatalogChanges> ChangesSince(const CatalogPosition& from) override {
    // One read: the catalog's id, every log's counter, and each log's
    // entries right after where `from` stands in it.
    librados::ObjectReadOperation op;
    std::map<std::string, ceph::bufferlist> head;
    std::array<std::map<std::string, ceph::bufferlist>, kChangeLogs> logs;
    std::array<bool, kChangeLogs> more{};
    std::array<int, kChangeLogs + 1> rvals{};
    std::set<std::string> head_keys{kCatalogIdKey};
    for (size_t log = 0; log < kChangeLogs; ++log) head_keys.insert(SeqKey(log));
    op.omap_get_vals_by_keys(head_keys, &head, &rvals[kChangeLogs]);
    bool continues = from.seqs.size() == kChangeLogs;
    if (continues) {
      for (size_t log = 0; log < kChangeLogs; ++log) {
        op.omap_get_vals2(LogKey(log, from.seqs[log]), LogPrefix(log), kept_per_log_ + trim_every_,
                          &logs[log], &more[log], &rvals[log]);
      }
    }
    int ret = ioctx_.operate(kImagesObject, &op, nullptr);
    for (int rval : rvals) {
      if (ret == 0 && rval < 0) ret = rval;
    }
    if (ret < 0) return Failed(ret, "read the change logs");
    CatalogChanges changes;
    changes.position.catalog = ValueOf(head, kCatalogIdKey);
    for (size_t log = 0; log < kChangeLogs; ++log) {
      changes.position.seqs.push_back(ParseSeq(ValueOf(head, SeqKey(log))));
    }
    continues = continues && changes.position.catalog == from.catalog;
    std::set<std::string> ids;
    for (size_t log = 0; continues && log < kChangeLogs; ++log) {
      uint64_t at = from.seqs[log], to = changes.position.seqs[log];
      // Ahead of the catalog, or behind what the log keeps: read everything.
      if (at > to ||
          (at < to && (logs[log].empty() || logs[log].begin()->first != LogKey(log, at + 1)))) {
        continues = false;
      }
      for (const auto& [key, id] : logs[log]) {
        if (key <= LogKey(log, to)) ids.insert(id.to_str());
      }
    }
    if (!continues) return AllRecords(std::move(changes));
    std::vector<std::string> batch;
    for (auto it = ids.begin(); it != ids.end();) {
      batch.push_back(*it++);
      if (batch.size() < kPage && it != ids.end()) continue;
      auto values = ReadKeys(kImagesObject, {batch.begin(), batch.end()});
      if (!values.ok()) return values.error();
      for (auto& id : batch) {
        auto found = values->find(id);
        changes.records.emplace_back(
            id, found == values->end() ? std::nullopt : std::optional(found->second.to_str()));
      }
      batch.clear();
    }
    return changes;
  }

  Status AcquireLease(const Lease& lease) override {
    for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
      auto value = Read(kLeasesObject, lease.image_id);
      if (!value.ok()) return value.error();
      std::string expected;
      if (*value) {
        auto existing = DecodeLease(lease.image_id, **value);
        if (!existing.ok()) return existing.error();
        if (existing->holder != lease.holder && existing->expires_at > NowNanos()) {
          return Fail(EBUSY, "image {} is busy: {}", lease.image_id, existing->purpose);
        }
        if (existing->holder != lease.holder) {
          Log(LogLevel::kWarning, "image {}: taking over stale lease ({})", lease.image_id,
              existing->purpose);
        }
        expected = **value;
      }
      int ret = CompareAndSet(kLeasesObject, lease.image_id, expected, EncodeLease(lease));
      if (ret == 0) return Ok();
      if (ret != -ECANCELED) return Failed(ret, "take lease on image " + lease.image_id);
      BackOff(attempt);
    }
    return Fail(EBUSY, "image {} is busy: its lease keeps changing", lease.image_id);
  }

  Status RenewLease(std::string_view image_id, std::string_view holder,
                    int64_t expires_at) override {
    for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
      auto current = ReadLease(image_id);
      if (!current.ok()) return current.error();
      auto& [lease, raw] = *current;
      if (!lease || lease->holder != holder) {
        return Fail(ESTALE, "lease on image {} was lost (taken over after expiry)", image_id);
      }
      lease->expires_at = expires_at;
      int ret = CompareAndSet(kLeasesObject, image_id, raw, EncodeLease(*lease));
      if (ret == 0) return Ok();
      if (ret != -ECANCELED) return Failed(ret, fmt::format("renew lease on image {}", image_id));
      BackOff(attempt);
    }
    return Fail(ESTALE, "lease on image {} keeps changing", image_id);
  }

  Status ReleaseLease(std::string_view image_id, std::string_view holder) override {
    for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
      auto current = ReadLease(image_id);
      if (!current.ok()) return current.error();
      auto& [lease, raw] = *current;
      if (!lease || lease->holder != holder) return Ok();
      int ret = CompareAndSet(kLeasesObject, image_id, raw, std::nullopt);
      if (ret == 0) return Ok();
      if (ret != -ECANCELED) {
        return Failed(ret, fmt::format("release lease on image {}", image_id));
      }
      BackOff(attempt);
    }
    return Fail(EBUSY, "lease on image {} keeps changing", image_id);
  }

  Result<std::optional<Lease>> GetLease(std::string_view image_id) override {
    auto current = ReadLease(image_id);
    if (!current.ok()) return current.error();
    return std::move(current->first);
  }

  Result<std::vector<Lease>> ListStaleLeases(int64_t now) override {
    std::vector<Lease> stale;
    IMAGEFS_RETURN_IF_ERROR(ForEachValue(kLeasesObject, "list leases", [&](auto& id, auto& value) {
      auto lease = DecodeLease(id, value.to_str());
      if (lease.ok() && lease->expires_at < now) stale.push_back(std::move(lease).value());
    }));
    return stale;
  }

 private:
  // Calls `visit` with each key and value of `object`'s omap that starts
  // with `prefix`, in order, a page at a time, until it returns false; a
  // missing object has none.
  Status ForEachEntry(const char* object, const std::string& prefix, std::string_view what,
                      const std::function<bool(const std::string&, ceph::bufferlist&)>& visit) {
    std::string after;
    while (true) {
      librados::ObjectReadOperation op;
      std::map<std::string, ceph::bufferlist> values;
      bool more = false;
      int prval = 0;
      op.omap_get_vals2(after, prefix, kPage, &values, &more, &prval);
      int ret = ioctx_.operate(object, &op, nullptr);
      if (ret == -ENOENT) return Ok();
      if (ret < 0 || prval < 0) return Failed(ret < 0 ? ret : prval, what);
      for (auto& [key, value] : values) {
        if (!visit(key, value)) return Ok();
      }
      if (!more || values.empty()) return Ok();
      after = values.rbegin()->first;
    }
  }

  // Every image id (or lease) and its value: the keys before the reserved.
  Status ForEachValue(const char* object, std::string_view what,
                      const std::function<void(const std::string&, ceph::bufferlist&)>& visit) {
    return ForEachEntry(object, "", what, [&](const std::string& key, ceph::bufferlist& value) {
      if (IsReserved(key)) return false;
      visit(key, value);
      return true;
    });
  }

  // Every key that starts with `prefix`.
  Status ForEachKey(const char* object, const std::string& prefix, std::string_view what,
                    const std::function<void(const std::string&)>& visit) {
    return ForEachEntry(object, prefix, what, [&](const std::string& key, ceph::bufferlist&) {
      visit(key);
      return true;
    });
  }

  Error Failed(int ret, std::string_view what) const {
    return ErrorFromNegative(ret, fmt::format("catalog {}: {}", where_, what));
  }

  // The values of those of `keys` that exist (none when the object does not).
  Result<std::map<std::string, ceph::bufferlist>> ReadKeys(const char* object,
                                                           std::set<std::string> keys) {
    librados::ObjectReadOperation op;
    std::map<std::string, ceph::bufferlist> values;
    int prval = 0;
    std::string first = keys.empty() ? std::string() : *keys.begin();
    op.omap_get_vals_by_keys(keys, &values, &prval);
    int ret = ioctx_.operate(object, &op, nullptr);
    if (ret == -ENOENT) return std::map<std::string, ceph::bufferlist>();
    if (ret < 0 || prval < 0) {
      return Failed(ret < 0 ? ret : prval, fmt::format("read {} of {}", object, first));
    }
    return values;
  }

  // The value of `key`, or nullopt when it (or the object) does not exist.
  Result<std::optional<std::string>> Read(const char* object, std::string_view key) {
    auto values = ReadKeys(object, {std::string(key)});
    if (!values.ok()) return values.error();
    auto it = values->find(std::string(key));
    if (it == values->end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second.to_str());
  }

  // Every record, to replace a replica's, at `changes.position`: read after
  // the counter, so that what changes meanwhile is in the next changes.
  Result<CatalogChanges> AllRecords(CatalogChanges changes) {
    changes.complete = true;
    IMAGEFS_RETURN_IF_ERROR(ForEachValue(kImagesObject, "list images", [&](auto& id, auto& value) {
      changes.records.emplace_back(id, value.to_str());
    }));
    return changes;
  }

  using RecordChange =
      std::function<Result<std::optional<std::string>>(const std::optional<std::string>&)>;

  // Changes record `id` to what `change` makes of its current value
  // (nullopt: absent, or remove it), counts the change and logs it, in one
  // atomic operation; from fresh values again when another daemon changed
  // the record or the counter in between. Returns the stored value.
  Result<std::optional<std::string>> ChangeRecord(std::string_view id, std::string_view what,
                                                  const RecordChange& change) {
    std::string key(id);
    size_t log = LogOf(id);
    std::string seq_key = SeqKey(log);
    for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
      auto values = ReadKeys(kImagesObject, {key, seq_key});
      if (!values.ok()) return values.error();
      auto found = values->find(key);
      std::optional<std::string> current;
      if (found != values->end()) current = found->second.to_str();
      auto next = change(current);
      if (!next.ok()) return next.error();
      std::string seq_text = ValueOf(*values, seq_key);
      uint64_t seq = ParseSeq(seq_text) + 1;

      librados::ObjectWriteOperation op;
      op.create(false);
      std::map<std::string, std::pair<ceph::bufferlist, int>> assertions;
      assertions[key].first.append(current.value_or(""));
      assertions[seq_key].first.append(seq_text);
      for (auto& assertion : assertions) assertion.second.second = LIBRADOS_CMPXATTR_OP_EQ;
      int prval = 0;
      op.omap_cmp(assertions, &prval);
      std::map<std::string, ceph::bufferlist> set;
      set[seq_key].append(std::to_string(seq));
      set[LogKey(log, seq)].append(key);
      std::set<std::string> removed;
      if (*next) {
        set[key].append(**next);
      } else {
        removed.insert(key);
      }
      if (seq % trim_every_ == 0 && seq > kept_per_log_) {
        for (uint64_t old = seq - kept_per_log_ - trim_every_ + 1; old <= seq - kept_per_log_;
             ++old) {
          removed.insert(LogKey(log, old));
        }
      }
      op.omap_set(set);
      if (!removed.empty()) op.omap_rm_keys(removed);
      int ret = ioctx_.operate(kImagesObject, &op);
      if (ret == 0) ret = prval;
      if (ret == 0) {
        Metrics::Get().Count(Metric::kCatalogChanges, {});
        return std::move(next).value();
      }
      if (ret != -ECANCELED) return Failed(ret, fmt::format("{} image {}", what, id));
      // The record or its log's counter moved in between: read both again.
      Metrics::Get().Count(Metric::kCatalogConflicts, {});
      BackOff(attempt);
    }
    return Fail(EBUSY, "catalog: image {} changed under {} attempts to {} it", id, kMaxAttempts,
                what);
  }

  // The lease and its stored text (empty when there is none).
  Result<std::pair<std::optional<Lease>, std::string>> ReadLease(std::string_view image_id) {
    auto value = Read(kLeasesObject, image_id);
    if (!value.ok()) return value.error();
    if (!*value) return std::pair<std::optional<Lease>, std::string>();
    auto lease = DecodeLease(image_id, **value);
    if (!lease.ok()) return lease.error();
    return std::pair<std::optional<Lease>, std::string>(std::move(lease).value(), **value);
  }

  // One atomic operation: if `key` holds `expected` ("" = absent), it is set
  // to `value` (nullopt = removed). 0, -ECANCELED when it held something
  // else, or another negative error.
  int CompareAndSet(const char* object, std::string_view key, const std::string& expected,
                    const std::optional<std::string>& value) {
    librados::ObjectWriteOperation op;
    op.create(false);
    std::map<std::string, std::pair<ceph::bufferlist, int>> assertions;
    ceph::bufferlist compare;
    compare.append(expected);
    assertions[std::string(key)] = {compare, LIBRADOS_CMPXATTR_OP_EQ};
    int prval = 0;
    op.omap_cmp(assertions, &prval);
    if (value) {
      std::map<std::string, ceph::bufferlist> values;
      values[std::string(key)].append(*value);
      op.omap_set(values);
    } else {
      op.omap_rm_keys({std::string(key)});
    }
    int ret = ioctx_.operate(object, &op);
    return ret < 0 ? ret : prval;
  }

  std::shared_ptr<CephCluster> cluster_;  // outlives ioctx_
  librados::IoCtx ioctx_;
  const std::string where_;
  const uint64_t kept_per_log_;  // entries each change log keeps
  const uint64_t trim_every_;    // entries removed from a log at once
};

}  // namespace

Result<std::unique_ptr<SharedCatalog>> OpenRadosCatalog(const RadosCatalogOptions& options) {
  auto cluster = CephCluster::Connect(options.client, "catalog");
  if (!cluster.ok()) return cluster.error();
  std::string where = fmt::format("{}/{}/{}", (*cluster)->fsid(), options.pool, options.name_space);
  auto ioctx = (*cluster)->OpenPool(options.pool, options.name_space);
  if (ioctx.code() == ENOENT) {
    int ret = (*cluster)->rados().pool_create(options.pool.c_str());
    if (ret < 0 && ret != -EEXIST) {
      return ErrorFromNegative(ret, fmt::format("catalog: create pool {}", options.pool));
    }
    Log(LogLevel::kInfo, "catalog: created pool {}", options.pool);
    ioctx = (*cluster)->OpenPool(options.pool, options.name_space);
    // Pools without an application raise a health warning; tag ours.
    if (ioctx.ok()) (void)ioctx->application_enable("imagefs", true);
  }
  if (!ioctx.ok()) return ioctx.error();
  auto catalog = std::make_unique<RadosCatalog>(*cluster, std::move(ioctx).value(), where,
                                                options.changes_kept);
  IMAGEFS_RETURN_IF_ERROR(catalog->Initialize());
  return std::unique_ptr<SharedCatalog>(std::move(catalog));
}

}  // namespace imagefs

// The rados catalog: image records and leases in the omap of two RADOS
// objects on the central cluster, shared by every imagefs daemon that names
// the same pool and namespace.
//
//   <pool>/<namespace>/imagefs.images   omap <image id> -> record (JSON)
//                                            ~catalog -> this catalog's id
//                                            ~seq     -> changes so far
//                                            ~log.<seq, 16 hex digits>
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
// A change of a record also compares and counts up ~seq and writes the log
// entry of the new count, in the same operation: the log never misses a
// change, and replicas follow it (ChangesSince) by reading one counter. The
// log keeps the last `changes_kept` entries; a replica further behind reads
// every record again. The reserved keys start with '~', after every image id (a
// UUID), so listings stop at the first of them. Format 2 added them; a
// format-1 catalog is upgraded when a daemon of this build opens it.
#include <nlohmann/json.hpp>
#include <random>
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
constexpr int kCatalogFormat = 2;
constexpr unsigned kPage = 500;
constexpr int kMaxAttempts = 1000;
constexpr char kReservedPrefix = '~';
constexpr char kCatalogIdKey[] = "~catalog";
constexpr char kSeqKey[] = "~seq";
constexpr char kLogPrefix[] = "~log.";

std::string LogKey(uint64_t seq) { return fmt::format("{}{:016x}", kLogPrefix, seq); }

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
        changes_kept_(std::max<uint64_t>(changes_kept, 1)),
        trim_every_(std::max<uint64_t>(changes_kept_ / 32, 1)) {}

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
    librados::ObjectWriteOperation op;
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
    // One read: the catalog's id, its counter, and the log right after `from`.
    librados::ObjectReadOperation op;
    std::map<std::string, ceph::bufferlist> head, log;
    bool more = false;
    int head_rval = 0, log_rval = 0;
    op.omap_get_vals_by_keys({kCatalogIdKey, kSeqKey}, &head, &head_rval);
    op.omap_get_vals2(LogKey(from.seq), kLogPrefix, changes_kept_ + trim_every_, &log, &more,
                      &log_rval);
    int ret = ioctx_.operate(kImagesObject, &op, nullptr);
    if (ret == 0 && head_rval < 0) ret = head_rval;
    if (ret == 0 && log_rval < 0) ret = log_rval;
    if (ret < 0) return Failed(ret, "read the change log");
    CatalogChanges changes;
    changes.position = {ValueOf(head, kCatalogIdKey), ParseSeq(ValueOf(head, kSeqKey))};
    uint64_t to = changes.position.seq;
    if (changes.position.catalog != from.catalog || from.seq > to ||
        (from.seq < to && (log.empty() || log.begin()->first != LogKey(from.seq + 1)))) {
      return AllRecords(std::move(changes));
    }
    std::set<std::string> ids;
    for (const auto& [key, id] : log) {
      if (key <= LogKey(to)) ids.insert(id.to_str());
    }
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
  // Calls `visit` with every key and value of `object`'s omap, a page at a
  // time; a missing object has none.
  Status ForEachValue(const char* object, std::string_view what,
                      const std::function<void(const std::string&, ceph::bufferlist&)>& visit) {
    std::string after;
    while (true) {
      librados::ObjectReadOperation op;
      std::map<std::string, ceph::bufferlist> values;
      bool more = false;
      int prval = 0;
      op.omap_get_vals2(after, kPage, &values, &more, &prval);
      int ret = ioctx_.operate(object, &op, nullptr);
      if (ret == -ENOENT) return Ok();
      if (ret < 0 || prval < 0) return Failed(ret < 0 ? ret : prval, what);
      for (auto& [key, value] : values) {
        if (IsReserved(key)) return Ok();
        visit(key, value);
      }
      if (!more || values.empty()) return Ok();
      after = values.rbegin()->first;
    }
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
    for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
      auto values = ReadKeys(kImagesObject, {key, kSeqKey});
      if (!values.ok()) return values.error();
      auto found = values->find(key);
      std::optional<std::string> current;
      if (found != values->end()) current = found->second.to_str();
      auto next = change(current);
      if (!next.ok()) return next.error();
      std::string seq_text = ValueOf(*values, kSeqKey);
      uint64_t seq = ParseSeq(seq_text) + 1;

      librados::ObjectWriteOperation op;
      op.create(false);
      std::map<std::string, std::pair<ceph::bufferlist, int>> assertions;
      assertions[key].first.append(current.value_or(""));
      assertions[kSeqKey].first.append(seq_text);
      for (auto& assertion : assertions) assertion.second.second = LIBRADOS_CMPXATTR_OP_EQ;
      int prval = 0;
      op.omap_cmp(assertions, &prval);
      std::map<std::string, ceph::bufferlist> set;
      set[kSeqKey].append(std::to_string(seq));
      set[LogKey(seq)].append(key);
      std::set<std::string> removed;
      if (*next) {
        set[key].append(**next);
      } else {
        removed.insert(key);
      }
      if (seq % trim_every_ == 0 && seq > changes_kept_) {
        for (uint64_t old = seq - changes_kept_ - trim_every_ + 1; old <= seq - changes_kept_;
             ++old) {
          removed.insert(LogKey(old));
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
      // The record or the change counter moved in between: read both again.
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
  const uint64_t changes_kept_;
  const uint64_t trim_every_;  // log entries removed at once
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

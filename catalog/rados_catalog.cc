// The rados catalog: image records and leases in the omap of two RADOS
// objects on the central cluster, shared by every imagefs daemon that names
// the same pool and namespace.
//
//   <pool>/<namespace>/imagefs.images   omap <image id> -> record (JSON, format 1)
//                                       xattr imagefs.format = catalog format
//   <pool>/<namespace>/imagefs.leases   omap <image id> -> lease (JSON)
//
// Every change is a compare-and-set of one omap value in one RADOS write
// operation: omap_cmp(key == value read) + omap_set (or omap_rm_keys). A
// missing key compares equal to the empty value, which no record or lease
// ever is, so "create if absent" is the same operation. When another daemon
// changed the value in between, the OSD cancels the operation (ECANCELED)
// and the read-modify-write starts again from a fresh read. No update is
// lost and nothing is locked across daemons except through the leases.
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "catalog/catalog.h"
#include "ceph/cluster.h"
#include "common/log.h"
#include "common/time.h"

namespace imagefs {
namespace {

constexpr char kImagesObject[] = "imagefs.images";
constexpr char kLeasesObject[] = "imagefs.leases";
constexpr char kFormatAttribute[] = "imagefs.format";
constexpr int kCatalogFormat = 1;
constexpr unsigned kPage = 1000;
constexpr int kMaxAttempts = 1000;

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

class RadosCatalog final : public Catalog {
 public:
  RadosCatalog(std::shared_ptr<CephCluster> cluster, librados::IoCtx ioctx, std::string where)
      : cluster_(std::move(cluster)), ioctx_(std::move(ioctx)), where_(std::move(where)) {}

  Status Initialize() {
    ceph::bufferlist value;
    int ret = ioctx_.getxattr(kImagesObject, kFormatAttribute, value);
    if (ret == -ENOENT || ret == -ENODATA) {
      librados::ObjectWriteOperation op;
      op.create(false);
      ceph::bufferlist format;
      format.append(std::to_string(kCatalogFormat));
      op.setxattr(kFormatAttribute, format);
      ret = ioctx_.operate(kImagesObject, &op);
      if (ret < 0) return Failed(ret, "initialize");
      Log(LogLevel::kInfo, "catalog: created in {}", where_);
      return Ok();
    }
    if (ret < 0) return Failed(ret, "read the format");
    int found = std::atoi(value.to_str().c_str());
    if (found > kCatalogFormat) {
      return Fail(ENOTSUP, "catalog {}: format {} is newer than this build ({})", where_, found,
                  kCatalogFormat);
    }
    return Ok();
  }

  Status Create(const ImageRecord& record) override {
    int ret = CompareAndSet(kImagesObject, record.id, "", EncodeRecord(record));
    if (ret == -ECANCELED) return Fail(EEXIST, "image {} already exists", record.id);
    if (ret < 0) return Failed(ret, "create image " + record.id);
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
      ids.insert(ids.end(), keys.begin(), keys.end());
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
    for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
      auto value = Read(kImagesObject, id);
      if (!value.ok()) return value.error();
      if (!*value) return Fail(ENOENT, "image {} does not exist", id);
      auto record = DecodeRecord(**value);
      if (!record.ok()) return record.error();
      IMAGEFS_RETURN_IF_ERROR(mutate(*record));
      record->updated_at = NowNanos();
      int ret = CompareAndSet(kImagesObject, id, **value, EncodeRecord(*record));
      if (ret == 0) return record;
      if (ret != -ECANCELED) return Failed(ret, fmt::format("update image {}", id));
      BackOff(attempt);
    }
    return Fail(EBUSY, "catalog: image {} changed under {} attempts to update it", id,
                kMaxAttempts);
  }

  Status Remove(std::string_view id) override {
    for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
      auto value = Read(kImagesObject, id);
      if (!value.ok()) return value.error();
      if (!*value) return Fail(ENOENT, "image {} does not exist", id);
      int ret = CompareAndSet(kImagesObject, id, **value, std::nullopt);
      if (ret == 0) return Ok();
      if (ret != -ECANCELED) return Failed(ret, fmt::format("remove image {}", id));
      BackOff(attempt);
    }
    return Fail(EBUSY, "catalog: image {} changed under {} attempts to remove it", id,
                kMaxAttempts);
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
      for (auto& [key, value] : values) visit(key, value);
      if (!more || values.empty()) return Ok();
      after = values.rbegin()->first;
    }
  }

  Error Failed(int ret, std::string_view what) const {
    return ErrorFromNegative(ret, fmt::format("catalog {}: {}", where_, what));
  }

  // The value of `key`, or nullopt when it (or the object) does not exist.
  Result<std::optional<std::string>> Read(const char* object, std::string_view key) {
    librados::ObjectReadOperation op;
    std::map<std::string, ceph::bufferlist> values;
    int prval = 0;
    op.omap_get_vals_by_keys({std::string(key)}, &values, &prval);
    int ret = ioctx_.operate(object, &op, nullptr);
    if (ret == -ENOENT) return std::optional<std::string>();
    if (ret < 0 || prval < 0) {
      return Failed(ret < 0 ? ret : prval, fmt::format("read {} of {}", object, key));
    }
    auto it = values.find(std::string(key));
    if (it == values.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second.to_str());
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
};

}  // namespace

Result<std::unique_ptr<Catalog>> OpenRadosCatalog(const RadosCatalogOptions& options) {
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
  auto catalog = std::make_unique<RadosCatalog>(*cluster, std::move(ioctx).value(), where);
  IMAGEFS_RETURN_IF_ERROR(catalog->Initialize());
  return std::unique_ptr<Catalog>(std::move(catalog));
}

}  // namespace imagefs

// The embedded catalog: records and leases in one SQLite database (catalog/catalog.h).
#include "catalog/catalog.h"
#include "catalog/sqlite_db.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/time.h"

namespace imagefs {
namespace {

constexpr int kSchemaVersion = 1;

class SqliteCatalog final : public Catalog {
 public:
  explicit SqliteCatalog(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  Status Initialize() {
    MutexLock lock(&mutex_);
    return db_->EnsureSchema(
        kSchemaVersion,
        "CREATE TABLE IF NOT EXISTS images (id TEXT PRIMARY KEY, record TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS leases (image_id TEXT PRIMARY KEY, holder TEXT NOT NULL,"
        " purpose TEXT NOT NULL, expires_at INTEGER NOT NULL);");
  }

  Status Create(const ImageRecord& record) override {
    MutexLock lock(&mutex_);
    Statement insert(db_->get(), "INSERT INTO images (id, record) VALUES (?, ?)");
    insert.Bind(1, record.id);
    insert.Bind(2, EncodeRecord(record));
    int rc = insert.Step();
    if (rc == SQLITE_CONSTRAINT) return Fail(EEXIST, "image {} already exists", record.id);
    if (rc != SQLITE_DONE) return DbError("create image " + record.id);
    return Ok();
  }

  Result<ImageRecord> Get(std::string_view id) override {
    MutexLock lock(&mutex_);
    return GetLocked(id);
  }

  Result<std::vector<std::string>> ListIds() override {
    MutexLock lock(&mutex_);
    Statement select(db_->get(), "SELECT id FROM images ORDER BY id");
    std::vector<std::string> ids;
    int rc;
    while ((rc = select.Step()) == SQLITE_ROW) ids.push_back(select.Text(0));
    if (rc != SQLITE_DONE) return DbError("list images");
    return ids;
  }

  Result<std::vector<ListedRecord>> ListRecords() override {
    MutexLock lock(&mutex_);
    return ReadRecords(*db_, "images");
  }

  Result<ImageRecord> Update(std::string_view id, const Mutation& mutate) override {
    MutexLock lock(&mutex_);
    // BEGIN IMMEDIATE takes the write lock first, so another process cannot
    // change the record between our read and our write.
    IMAGEFS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    auto result = UpdateLocked(id, mutate);
    Status end = Exec(result.ok() ? "COMMIT" : "ROLLBACK");
    if (!end.ok()) {
      if (result.ok()) (void)Exec("ROLLBACK");
      return end.error();
    }
    return result;
  }

  Status Remove(std::string_view id) override {
    MutexLock lock(&mutex_);
    Statement remove(db_->get(), "DELETE FROM images WHERE id = ?");
    remove.Bind(1, id);
    if (remove.Step() != SQLITE_DONE) return DbError(fmt::format("remove image {}", id));
    if (sqlite3_changes(db_->get()) == 0) return Fail(ENOENT, "image {} does not exist", id);
    return Ok();
  }

  Status AcquireLease(const Lease& lease) override {
    MutexLock lock(&mutex_);
    IMAGEFS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    Status result = AcquireLeaseLocked(lease);
    Status end = Exec(result.ok() ? "COMMIT" : "ROLLBACK");
    if (!result.ok()) return result;
    return end;
  }

  Status RenewLease(std::string_view image_id, std::string_view holder,
                    int64_t expires_at) override {
    MutexLock lock(&mutex_);
    Statement renew(db_->get(),
                    "UPDATE leases SET expires_at = ? WHERE image_id = ? AND holder = ?");
    renew.Bind(1, expires_at);
    renew.Bind(2, image_id);
    renew.Bind(3, holder);
    if (renew.Step() != SQLITE_DONE) return DbError("renew lease");
    if (sqlite3_changes(db_->get()) == 0) {
      return Fail(ESTALE, "lease on image {} was lost (taken over after expiry)", image_id);
    }
    return Ok();
  }

  Status ReleaseLease(std::string_view image_id, std::string_view holder) override {
    MutexLock lock(&mutex_);
    Statement release(db_->get(), "DELETE FROM leases WHERE image_id = ? AND holder = ?");
    release.Bind(1, image_id);
    release.Bind(2, holder);
    if (release.Step() != SQLITE_DONE) return DbError("release lease");
    return Ok();
  }

  Result<std::optional<Lease>> GetLease(std::string_view image_id) override {
    MutexLock lock(&mutex_);
    return GetLeaseLocked(image_id);
  }

  Result<std::vector<Lease>> ListStaleLeases(int64_t now) override {
    MutexLock lock(&mutex_);
    Statement select(
        db_->get(),
        "SELECT image_id, holder, purpose, expires_at FROM leases WHERE expires_at < ?");
    select.Bind(1, now);
    std::vector<Lease> leases;
    int rc;
    while ((rc = select.Step()) == SQLITE_ROW) {
      leases.push_back({select.Text(0), select.Text(1), select.Text(2), select.Int(3)});
    }
    if (rc != SQLITE_DONE) return DbError("list stale leases");
    return leases;
  }

 private:
  Error DbError(std::string_view what) REQUIRES(mutex_) { return db_->Failed(what); }
  Status Exec(const char* sql) REQUIRES(mutex_) { return db_->Exec(sql); }

  Result<ImageRecord> GetLocked(std::string_view id) REQUIRES(mutex_) {
    return ReadRecord(*db_, "images", id);
  }

  Result<ImageRecord> UpdateLocked(std::string_view id, const Mutation& mutate) REQUIRES(mutex_) {
    auto record = GetLocked(id);
    if (!record.ok()) return record.error();
    IMAGEFS_RETURN_IF_ERROR(mutate(*record));
    record->updated_at = NowNanos();
    Statement update(db_->get(), "UPDATE images SET record = ? WHERE id = ?");
    update.Bind(1, EncodeRecord(*record));
    update.Bind(2, id);
    if (update.Step() != SQLITE_DONE) return DbError(fmt::format("update image {}", id));
    return record;
  }

  Result<std::optional<Lease>> GetLeaseLocked(std::string_view image_id) REQUIRES(mutex_) {
    Statement select(db_->get(),
                     "SELECT holder, purpose, expires_at FROM leases WHERE image_id = ?");
    select.Bind(1, image_id);
    int rc = select.Step();
    if (rc == SQLITE_DONE) return std::optional<Lease>();
    if (rc != SQLITE_ROW) return DbError("read lease");
    return std::optional<Lease>(
        Lease{std::string(image_id), select.Text(0), select.Text(1), select.Int(2)});
  }

  Status AcquireLeaseLocked(const Lease& lease) REQUIRES(mutex_) {
    auto existing = GetLeaseLocked(lease.image_id);
    if (!existing.ok()) return existing.error();
    if (*existing && (*existing)->holder != lease.holder && (*existing)->expires_at > NowNanos()) {
      return Fail(EBUSY, "image {} is busy: {}", lease.image_id, (*existing)->purpose);
    }
    if (*existing && (*existing)->holder != lease.holder) {
      Log(LogLevel::kWarning, "image {}: taking over stale lease ({})", lease.image_id,
          (*existing)->purpose);
    }
    Statement upsert(db_->get(),
                     "INSERT OR REPLACE INTO leases (image_id, holder, purpose, expires_at)"
                     " VALUES (?, ?, ?, ?)");
    upsert.Bind(1, lease.image_id);
    upsert.Bind(2, lease.holder);
    upsert.Bind(3, lease.purpose);
    upsert.Bind(4, lease.expires_at);
    if (upsert.Step() != SQLITE_DONE) return DbError("take lease");
    return Ok();
  }

  // One connection, used by one thread at a time.
  Mutex mutex_;
  const std::unique_ptr<SqliteDb> db_ PT_GUARDED_BY(mutex_);
};

}  // namespace

Result<std::unique_ptr<Catalog>> OpenSqliteCatalog(const std::string& path) {
  auto db = SqliteDb::Open(path, "catalog");
  if (!db.ok()) return db.error();
  auto catalog = std::make_unique<SqliteCatalog>(std::move(db).value());
  IMAGEFS_RETURN_IF_ERROR(catalog->Initialize());
  return std::unique_ptr<Catalog>(std::move(catalog));
}

}  // namespace imagefs

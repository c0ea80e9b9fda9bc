// An SQLite connection with imagefs's errors (catalog/sqlite_db.h).
#include "catalog/sqlite_db.h"

namespace imagefs {

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, std::string what) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error error = Fail(EIO, "{}: cannot open {}: {}", what, path,
                       db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return error;
  }
  std::unique_ptr<SqliteDb> opened(new SqliteDb(db, std::move(what)));
  sqlite3_busy_timeout(db, 10'000);
  IMAGEFS_RETURN_IF_ERROR(opened->Exec("PRAGMA journal_mode=WAL"));
  IMAGEFS_RETURN_IF_ERROR(opened->Exec("PRAGMA synchronous=FULL"));
  return opened;
}

Status SqliteDb::Exec(const char* sql) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    Error error = Fail(rc == SQLITE_BUSY ? EBUSY : EIO, "{}: '{}' failed: {}", what_, sql,
                       message ? message : sqlite3_errstr(rc));
    sqlite3_free(message);
    return error;
  }
  return Ok();
}

Error SqliteDb::Failed(std::string_view action) {
  return Fail(EIO, "{}: {} failed: {}", what_, action, sqlite3_errmsg(db_));
}

Status SqliteDb::EnsureSchema(int64_t version, std::string_view create) {
  Statement read(db_, "PRAGMA user_version");
  if (!read.prepared() || read.Step() != SQLITE_ROW) return Failed("read schema version");
  int64_t found = read.Int(0);
  if (found > version) {
    return Fail(ENOTSUP, "{}: schema version {} is newer than this build ({})", what_, found,
                version);
  }
  if (found == version) return Ok();
  std::string script =
      fmt::format("BEGIN IMMEDIATE;{}PRAGMA user_version={};COMMIT;", create, version);
  return Exec(script.c_str());
}

Result<ImageRecord> ReadRecord(SqliteDb& db, const char* table, std::string_view id) {
  std::string sql = fmt::format("SELECT record FROM {} WHERE id = ?", table);
  Statement select(db.get(), sql.c_str());
  select.Bind(1, id);
  int rc = select.Step();
  if (rc == SQLITE_DONE) return Fail(ENOENT, "image {} does not exist", id);
  if (rc != SQLITE_ROW) return db.Failed(fmt::format("read image {}", id));
  return DecodeRecord(select.Text(0));
}

Result<std::vector<ListedRecord>> ReadRecords(SqliteDb& db, const char* table) {
  std::string sql = fmt::format("SELECT id, record FROM {} ORDER BY id", table);
  Statement select(db.get(), sql.c_str());
  std::vector<ListedRecord> records;
  int rc;
  while ((rc = select.Step()) == SQLITE_ROW) {
    records.push_back({select.Text(0), DecodeRecord(select.Text(1))});
  }
  if (rc != SQLITE_DONE) return db.Failed("list images");
  return records;
}

}  // namespace imagefs

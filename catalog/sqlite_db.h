// What the embedded catalog and the catalog replica share: an SQLite
// connection and prepared statements that clean up after themselves.
//
// Contract: not thread safe; each owner serializes its calls (one mutex
// around its connection). Errors are EIO with SQLite's message, EBUSY when
// another process holds the database locked longer than the busy timeout.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "catalog/catalog.h"
#include "common/result.h"

namespace imagefs {

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool prepared() const { return rc_ == SQLITE_OK; }
  void Bind(int index, std::string_view text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void Bind(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  int Step() { return sqlite3_step(stmt_); }
  // Ready to bind and step again.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::string Text(int column) {
    auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return text ? std::string(text, sqlite3_column_bytes(stmt_, column)) : std::string();
  }
  int64_t Int(int column) { return sqlite3_column_int64(stmt_, column); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

// One open database file (created when missing), in WAL mode with full
// syncs; closed on destruction. `what` starts its error messages.
class SqliteDb {
 public:
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path, std::string what);
  ~SqliteDb() { sqlite3_close(db_); }
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  sqlite3* get() { return db_; }
  Status Exec(const char* sql);
  // EIO: `action` failed, with SQLite's reason.
  Error Failed(std::string_view action);
  // Makes the schema `version` with `create` (statements) in one
  // transaction when the file has an older one (a new file has 0); ENOTSUP
  // when the file's is newer than this build's.
  Status EnsureSchema(int64_t version, std::string_view create);

 private:
  SqliteDb(sqlite3* db, std::string what) : db_(db), what_(std::move(what)) {}
  sqlite3* const db_;
  const std::string what_;
};

// Image records in a table of (id TEXT PRIMARY KEY, record TEXT) (the
// embedded catalog's `images`, the replica's `records`): one by id (ENOENT
// when absent), or all in id order.
Result<ImageRecord> ReadRecord(SqliteDb& db, const char* table, std::string_view id);
Result<std::vector<ListedRecord>> ReadRecords(SqliteDb& db, const char* table);

}  // namespace imagefs

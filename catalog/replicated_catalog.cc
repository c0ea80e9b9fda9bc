// A shared catalog served through a local replica (catalog/catalog.h,
// OpenReplicatedCatalog).
//
//        calls of the service              follower thread (every 500 ms)
//   change, lease, Get ──▶ live? ──no──▶ EHOSTUNREACH at once
//                           │yes
//                           ▼
//                   shared catalog on central ◀── ChangesSince(position)
//                           │                            │ applied in one
//   Inspect ── live? ──yes──┘                            ▼ transaction
//               │no ──────────────────────────▶  replica (SQLite, state dir)
//
// "Live" means the last exchange with central answered. The follower's
// read of the change counter is the probe: it fails within the catalog's
// op timeout when central is cut off, and succeeds again when it returns,
// so the catalog goes live by itself and catches up in the same step. A
// call of the service that times out marks it not live at once too.
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <future>
#include <map>
#include <optional>
#include <thread>

#include "catalog/catalog.h"
#include "catalog/inspection_cache.h"
#include "catalog/sqlite_db.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/time.h"

namespace imagefs {
namespace {

constexpr int64_t kReplicaSchema = 2;

// The replica's storage: the records as central had them at `position`.
class ReplicaStore {
 public:
  static Result<std::unique_ptr<ReplicaStore>> Open(const std::string& path) {
    auto db = SqliteDb::Open(path, "catalog replica");
    if (!db.ok()) return db.error();
    std::unique_ptr<ReplicaStore> store(new ReplicaStore(std::move(db).value()));
    IMAGEFS_RETURN_IF_ERROR(store->Initialize());
    return store;
  }

  CatalogPosition position() {
    MutexLock lock(&mutex_);
    return position_;
  }

  // Applies `changes` and their position in one transaction.
  Status Apply(const CatalogChanges& changes) {
    MutexLock lock(&mutex_);
    IMAGEFS_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
    Status applied = ApplyLocked(changes);
    Status end = db_->Exec(applied.ok() ? "COMMIT" : "ROLLBACK");
    if (!applied.ok()) return applied;
    if (end.ok()) position_ = changes.position;
    return end;
  }

  Result<ImageRecord> Get(std::string_view id) {
    MutexLock lock(&mutex_);
    return ReadRecord(*db_, "records", id);
  }

  Result<std::vector<ListedRecord>> List() {
    MutexLock lock(&mutex_);
    return ReadRecords(*db_, "records");
  }

 private:
  explicit ReplicaStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  Status Initialize() {
    MutexLock lock(&mutex_);
    IMAGEFS_RETURN_IF_ERROR(db_->EnsureSchema(
        kReplicaSchema,
        // Schema 1 kept one count; a replica of it starts from nowhere.
        "CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, record TEXT NOT NULL);"
        "DROP TABLE IF EXISTS position;"
        "CREATE TABLE position (catalog TEXT NOT NULL, seqs TEXT NOT NULL);"));
    Statement select(db_->get(), "SELECT catalog, seqs FROM position");
    int rc = select.Step();
    if (rc == SQLITE_ROW) {
      position_ = CatalogPosition::Decode(select.Text(0), select.Text(1));
    } else if (rc != SQLITE_DONE) {
      return db_->Failed("read the position");
    }
    return Ok();
  }

  Status ApplyLocked(const CatalogChanges& changes) REQUIRES(mutex_) {
    if (changes.complete) IMAGEFS_RETURN_IF_ERROR(db_->Exec("DELETE FROM records"));
    Statement put(db_->get(), "INSERT OR REPLACE INTO records (id, record) VALUES (?, ?)");
    Statement remove(db_->get(), "DELETE FROM records WHERE id = ?");
    for (const auto& [id, value] : changes.records) {
      Statement& statement = value ? put : remove;
      statement.Bind(1, id);
      if (value) statement.Bind(2, *value);
      if (statement.Step() != SQLITE_DONE) return db_->Failed(fmt::format("store image {}", id));
      statement.Reset();
    }
    IMAGEFS_RETURN_IF_ERROR(db_->Exec("DELETE FROM position"));
    Statement position(db_->get(), "INSERT INTO position (catalog, seqs) VALUES (?, ?)");
    position.Bind(1, changes.position.catalog);
    position.Bind(2, changes.position.EncodeSeqs());
    if (position.Step() != SQLITE_DONE) return db_->Failed("store the position");
    return Ok();
  }

  Mutex mutex_;
  const std::unique_ptr<SqliteDb> db_ PT_GUARDED_BY(mutex_);
  CatalogPosition position_ GUARDED_BY(mutex_);
};

class ReplicatedCatalog final : public Catalog {
 public:
  ReplicatedCatalog(SharedCatalogOpener open, ReplicaOptions options,
                    std::unique_ptr<ReplicaStore> replica)
      : open_(std::move(open)), options_(std::move(options)), replica_(std::move(replica)) {}

  ~ReplicatedCatalog() override {
    {
      MutexLock lock(&mutex_);
      stopping_ = true;
      changed_.SignalAll();
    }
    if (follower_.joinable()) follower_.join();
    inspections_.join();  // reads still waiting on central use this catalog
  }

  // Starts the follower; returns once central answered or `first_wait`
  // passed, so that a mount cut off from central starts from its replica.
  // Central answering with an error (a wrong key, a newer format) is a
  // configuration to fix: that error.
  Status Start() {
    follower_ = std::thread([this] { Follow(); });
    auto deadline = std::chrono::steady_clock::now() + options_.first_wait;
    MutexLock lock(&mutex_);
    while (attempts_ == 0 && std::chrono::steady_clock::now() < deadline) {
      changed_.WaitFor(deadline - std::chrono::steady_clock::now());
    }
    if (refused_) return *refused_;
    if (!live_) {
      Log(LogLevel::kWarning,
          "catalog: {} has not answered within {} ms ({}); serving from the replica at {} "
          "(change {}) until it does",
          options_.authority, options_.first_wait.count(), reason_, options_.replica_path,
          replica_->position().Applied());
    }
    return Ok();
  }

  Result<ImageRecord> Inspect(std::string_view id) override {
    if (Live()) {
      if (auto cached = cache_.Find(id)) return *cached;
      if (cache_.MissedInAScan()) {
        (void)InspectAll();
        if (auto cached = cache_.Find(id)) return *cached;
      }
    }
    return LiveElseReplica(
        [this, id = std::string(id)](SharedCatalog& primary) -> Result<ImageRecord> {
          uint64_t generation = cache_.Generation();
          auto record = primary.Get(id);
          if (record.ok()) cache_.Put(*record, generation);
          return record;
        },
        [&] { return replica_->Get(id); });
  }

  Result<std::vector<ListedRecord>> InspectAll() override {
    if (Live()) {
      if (auto listed = cache_.FindAll()) return std::move(listed).value();
    }
    return LiveElseReplica(
        [this](SharedCatalog& primary) -> Result<std::vector<ListedRecord>> {
          uint64_t generation = cache_.Generation();
          auto records = primary.ListRecords();
          if (records.ok()) cache_.PutAll(*records, generation);
          return records;
        },
        [&] { return replica_->List(); });
  }

  Result<std::vector<ListedRecord>> InspectLocal() override {
    auto listed = replica_->List();
    if (!listed.ok() || !Live()) return listed;
    // The cache's records are current (a change of one drops it): newer
    // than the replica's until the replica has applied that change.
    std::map<std::string, ImageRecord> current;
    for (auto& record : cache_.Current()) {
      std::string id = record.id;
      current.emplace(std::move(id), std::move(record));
    }
    for (auto& entry : *listed) {
      auto cached = current.find(entry.id);
      if (cached == current.end()) continue;
      if (!entry.record.ok() || entry.record->updated_at <= cached->second.updated_at) {
        entry.record = std::move(cached->second);
      }
      current.erase(cached);
    }
    for (auto& [id, record] : current) listed->push_back({id, std::move(record)});
    return listed;
  }

  CatalogHealth Health() override {
    MutexLock lock(&mutex_);
    if (live_) return {};
    return {.live = false,
            .authority = options_.authority,
            .unreachable_since = since_,
            .reason = reason_};
  }

  Status Create(const ImageRecord& record) override {
    Status created =
        Call("create image " + record.id, [&](SharedCatalog& c) { return c.Create(record); });
    if (created.ok()) {
      // What mkdir's reply and the lookups after it ask for: they must
      // not fall back on a replica that has not heard of it yet.
      cache_.Replace(record);
    } else {
      cache_.Drop(record.id);
    }
    return created;
  }
  Result<ImageRecord> Get(std::string_view id) override {
    return Call(fmt::format("read image {}", id), [&](SharedCatalog& c) { return c.Get(id); });
  }
  Result<std::vector<std::string>> ListIds() override {
    return Call("list images", [&](SharedCatalog& c) { return c.ListIds(); });
  }
  Result<std::vector<ListedRecord>> ListRecords() override {
    return Call("list images", [&](SharedCatalog& c) { return c.ListRecords(); });
  }
  Result<ImageRecord> Update(std::string_view id, const Mutation& mutate) override {
    auto updated = Call(fmt::format("change image {}", id),
                        [&](SharedCatalog& c) { return c.Update(id, mutate); });
    if (updated.ok()) {
      cache_.Replace(*updated);  // what `ls` and getattr ask for next
    } else {
      cache_.Drop(id);
    }
    return updated;
  }
  Status Remove(std::string_view id) override {
    Status removed =
        Call(fmt::format("remove image {}", id), [&](SharedCatalog& c) { return c.Remove(id); });
    cache_.Drop(id);
    return removed;
  }
  CatalogTraits Traits() const override { return options_.traits; }
  Status RemoveCopy(std::string_view id, std::string_view store) override {
    Status removed = Call(fmt::format("remove the copy of image {} in {}", id, store),
                          [&](SharedCatalog& c) { return c.RemoveCopy(id, store); });
    cache_.Drop(id);
    return removed;
  }
  Status CopyItself(std::string_view id, const std::vector<std::string>& stores,
                    bool all_must_succeed) override {
    Status copied = Call(fmt::format("copy image {}", id), [&](SharedCatalog& c) {
      return c.CopyItself(id, stores, all_must_succeed);
    });
    cache_.Drop(id);
    return copied;
  }
  Status CheckLocation(std::string_view id, std::string_view url) override {
    return Call(fmt::format("check a location of image {}", id),
                [&](SharedCatalog& c) { return c.CheckLocation(id, url); });
  }
  Status AcquireLease(const Lease& lease) override {
    return Call(fmt::format("take the lease on image {} ({})", lease.image_id, lease.purpose),
                [&](SharedCatalog& c) { return c.AcquireLease(lease); });
  }
  Status RenewLease(std::string_view image_id, std::string_view holder,
                    int64_t expires_at) override {
    return Call(fmt::format("renew the lease on image {}", image_id),
                [&](SharedCatalog& c) { return c.RenewLease(image_id, holder, expires_at); });
  }
  Status ReleaseLease(std::string_view image_id, std::string_view holder) override {
    return Call(fmt::format("release the lease on image {}", image_id),
                [&](SharedCatalog& c) { return c.ReleaseLease(image_id, holder); });
  }
  Result<std::optional<Lease>> GetLease(std::string_view image_id) override {
    return Call(fmt::format("read the lease on image {}", image_id),
                [&](SharedCatalog& c) { return c.GetLease(image_id); });
  }
  Result<std::vector<Lease>> ListStaleLeases(int64_t now) override {
    return Call("list stale leases", [&](SharedCatalog& c) { return c.ListStaleLeases(now); });
  }

 private:
  // The shared catalog when it is live, else null.
  std::shared_ptr<SharedCatalog> Live() EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    return live_ ? primary_ : nullptr;
  }

  // An inspection: `central` on the shared catalog when it is live, else
  // (or when it found central gone, or central did not answer within
  // inspect_wait) `replica` on the replica. `central` runs on the
  // inspection threads and owns what it uses: it may outlive the wait.
  template <typename Central, typename Replica>
  auto LiveElseReplica(Central central, Replica&& replica) -> decltype(replica()) {
    using Answer = decltype(replica());
    auto primary = Live();
    // While an earlier read of central is late, the next would be too.
    if (!primary || late_reads_.load() > 0) return replica();
    if (WithoutNetworkWaits::Here()) {
      return Fail(EWOULDBLOCK, "catalog: the inspection must ask {}", options_.authority);
    }
    auto answer = std::make_shared<std::promise<Answer>>();
    auto answered = answer->get_future();
    auto late = std::make_shared<std::atomic<bool>>(false);
    boost::asio::post(inspections_, [this, primary, central = std::move(central), answer, late] {
      Answer result = central(*primary);
      if (!result.ok() && IsUnreachable(result.code())) MarkUnreachable(result.error().message);
      answer->set_value(std::move(result));
      if (late->exchange(true)) --late_reads_;  // its caller gave up waiting: no longer late
    });
    if (answered.wait_for(options_.inspect_wait) == std::future_status::ready) {
      Answer result = answered.get();
      if (result.ok() || !IsUnreachable(result.code())) return result;
      return replica();
    }
    ++late_reads_;
    if (late->exchange(true)) --late_reads_;  // it answered just now
    Log(LogLevel::kDebug,
        "catalog: {} did not answer an inspection within {} ms; the replica answers",
        options_.authority, options_.inspect_wait.count());
    return replica();
  }

  // `call` on the shared catalog when it is live; EHOSTUNREACH at once
  // when not, or when `call` found central gone.
  template <typename Function>
  auto Call(const std::string& what, Function&& call)
      -> decltype(call(std::declval<SharedCatalog&>())) {
    auto primary = Live();
    if (!primary) return Unreachable(what);
    auto result = call(*primary);
    if (result.ok() || !IsUnreachable(result.code())) return result;
    MarkUnreachable(result.error().message);
    return Unreachable(what);
  }

  Error Unreachable(const std::string& what) EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    Error error =
        Fail(EHOSTUNREACH,
             "catalog: cannot {}: {} has been unreachable since {} ({}); the mount "
             "serves reads from its replica, changes need {}",
             what, options_.authority, FormatIsoTime(since_), reason_, options_.authority);
    Log(LogLevel::kWarning, "{}", error.message);
    return error;
  }

  void MarkUnreachable(const std::string& reason) EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    reason_ = reason;
    if (!live_) return;
    live_ = false;
    since_ = NowNanos();
    Log(LogLevel::kWarning,
        "catalog: {} does not answer ({}); inspections answer from the replica (change {}), "
        "changes fail with EHOSTUNREACH until it does",
        options_.authority, reason, replica_->position().Applied());
  }

  void MarkLive(size_t caught_up) EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    if (live_) return;
    if (was_live_) {
      Log(LogLevel::kInfo, "catalog: {} answers again after {:.1f} s; live, {} changes caught up",
          options_.authority, (NowNanos() - since_) / 1e9, caught_up);
    } else {
      Log(LogLevel::kInfo, "catalog: {} answers; live, replica at {} brought up to date",
          options_.authority, options_.replica_path);
    }
    live_ = was_live_ = true;
    since_ = 0;
    reason_.clear();
  }

  // One round of the follower: connect when needed, then bring the
  // replica up to central's change counter.
  void FollowOnce() {
    std::shared_ptr<SharedCatalog> primary;
    {
      MutexLock lock(&mutex_);
      primary = primary_;
    }
    if (!primary) {
      auto opened = open_();
      if (!opened.ok()) {
        if (!IsUnreachable(opened.code())) {
          MutexLock lock(&mutex_);
          if (attempts_ == 0) refused_ = opened.error();
        }
        return MarkUnreachable(opened.error().message);
      }
      primary = std::move(opened).value();
      MutexLock lock(&mutex_);
      primary_ = primary;
    }
    auto started = std::chrono::steady_clock::now();
    auto changes = primary->ChangesSince(replica_->position());
    if (!changes.ok()) {
      if (IsUnreachable(changes.code())) return MarkUnreachable(changes.error().message);
      Log(LogLevel::kWarning, "catalog: replica not brought up to date: {}",
          changes.error().message);
      return MarkLive(0);
    }
    std::vector<std::string> changed;
    for (const auto& [id, value] : changes->records) changed.push_back(id);
    cache_.Confirm(started, changed, changes->complete, changes->names_every_change);
    if (!changes->records.empty() || changes->complete) {
      Status applied = replica_->Apply(*changes);
      if (!applied.ok()) Log(LogLevel::kError, "{}", applied.error().message);
    }
    MarkLive(changes->records.size());
  }

  void Follow() {
    MutexLock lock(&mutex_);
    while (!stopping_) {
      lock.Unlock();
      FollowOnce();
      lock.Lock();
      ++attempts_;
      changed_.SignalAll();
      if (!stopping_) changed_.WaitFor(options_.follow_every);
    }
  }

  const SharedCatalogOpener open_;
  const ReplicaOptions options_;
  const std::unique_ptr<ReplicaStore> replica_;  // thread safe itself
  InspectionCache cache_{options_.inspect_for};  // thread safe itself
  // Where inspections read central, so that their callers can stop
  // waiting for it.
  boost::asio::thread_pool inspections_{4};
  std::atomic<int> late_reads_{0};  // reads of central past inspect_wait, still running

  Mutex mutex_;
  CondVar changed_{&mutex_};
  std::shared_ptr<SharedCatalog> primary_ GUARDED_BY(mutex_);
  bool live_ GUARDED_BY(mutex_) = false;
  bool was_live_ GUARDED_BY(mutex_) = false;
  int64_t since_ GUARDED_BY(mutex_) = NowNanos();  // when it stopped being live
  std::string reason_ GUARDED_BY(mutex_) = "not reached yet";
  uint64_t attempts_ GUARDED_BY(mutex_) = 0;
  std::optional<Error> refused_ GUARDED_BY(mutex_);  // the first attempt's answer
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread follower_;
};

}  // namespace

Result<std::unique_ptr<Catalog>> OpenReplicatedCatalog(SharedCatalogOpener open,
                                                       const ReplicaOptions& options) {
  auto replica = ReplicaStore::Open(options.replica_path);
  if (!replica.ok()) return replica.error();
  auto catalog =
      std::make_unique<ReplicatedCatalog>(std::move(open), options, std::move(replica).value());
  IMAGEFS_RETURN_IF_ERROR(catalog->Start());
  return std::unique_ptr<Catalog>(std::move(catalog));
}

}  // namespace imagefs

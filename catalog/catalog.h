// Catalog: the image records and the per-image import lease.
//
// Contract:
// - Thread safety: every method may be called from any thread at the same
//   time. Update() is an atomic read-modify-write: no update is lost, also
//   between processes sharing one catalog.
// - Ownership: the catalog owns its storage; callers get copies of records.
// - Errors (positive errno in Error::code):
//     Create       EEXIST an image with that id exists; EIO storage failure
//     Get          ENOENT no such image; EIO
//     Update       ENOENT; whatever `mutate` returns (nothing is written); EIO
//     Remove       ENOENT; EIO
//     AcquireLease EBUSY another holder's lease has not expired (the message
//                  names its purpose); EIO
//     RenewLease   ESTALE the lease expired and was taken over, or is gone
//     ReleaseLease never fails for a lease already gone
// - Leases use wall-clock time so that several daemons on several hosts
//   share them; a lease not renewed within its ttl is stale and the next
//   AcquireLease takes it over. Leases survive crashes of the holder.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/image_record.h"
#include "ceph/client_options.h"
#include "common/result.h"

namespace imagefs {

struct Lease {
  std::string image_id;
  std::string holder;      // unique per operation
  std::string purpose;     // for log lines: "copy to dcn0 by uid 1000"
  int64_t expires_at = 0;  // ns since the epoch
};

// One record of a listing; `record` is the error when it cannot be decoded.
struct ListedRecord {
  std::string id;
  Result<ImageRecord> record;
};

// Whether the catalog's authority answers. A catalog served through a local
// replica (OpenReplicatedCatalog) is not live while the central cluster is
// unreachable: then it answers inspections from the replica and fails every
// other call at once with EHOSTUNREACH.
struct CatalogHealth {
  bool live = true;
  std::string authority;          // who did not answer: "central", "Glance"
  int64_t unreachable_since = 0;  // ns since the epoch; 0 when live
  std::string reason;             // why not live
};

// Marks the current thread as one that must not wait on the network (a
// FUSE thread) while it lives. An inspection there that would have to ask
// another machine (a replicated catalog's central, for a record its cache
// does not hold) fails at once with EWOULDBLOCK instead; the caller then
// asks again from a thread that may wait (fs/filesystem.cc). What is local
// (SQLite, the cache, the replica while central is unreachable) answers
// as always.
class WithoutNetworkWaits {
 public:
  WithoutNetworkWaits();
  ~WithoutNetworkWaits();
  WithoutNetworkWaits(const WithoutNetworkWaits&) = delete;
  WithoutNetworkWaits& operator=(const WithoutNetworkWaits&) = delete;
  // Whether one lives on this thread.
  static bool Here();

 private:
  bool outer_;  // what Here() said before this one
};

// What a catalog is, beyond its calls; known before it is reached.
struct CatalogTraits {
  // It removes a copy's data itself when the copy goes (Glance removes the
  // data of a location it deletes): deletes leave the stores alone and
  // call Remove and RemoveCopy alone.
  bool removes_data = false;
  // Copies of an active image are its own (Glance's copy-image,
  // `copy_method = glance`): CopyItself makes them.
  bool copies_itself = false;
  // Its stores hold images it does not list (Glance's pools: other
  // projects' images, and those Glance writes itself): recovery removes
  // imagefs's own temporaries there and nothing else, and never drops a
  // location whose data it does not find.
  bool shares_stores = false;
};

class Catalog {
 public:
  using Mutation = std::function<Status(ImageRecord&)>;

  virtual ~Catalog() = default;

  // Inspection (ls, stat, getfattr, opening a copy to read). The same as
  // Get and ListRecords, except that a replicated catalog answers them from
  // its replica while the central cluster is unreachable. Nothing may be
  // decided from what they return: every change goes through the calls
  // below, which fail when the catalog is not live.
  virtual Result<ImageRecord> Inspect(std::string_view id) { return Get(id); }
  virtual Result<std::vector<ListedRecord>> InspectAll() { return ListRecords(); }
  // Every record as this mount holds it, without asking another machine:
  // a replicated catalog's replica (behind the authority by its following,
  // about a second) with the records this daemon stored or read since, as
  // long as they are current; else the same as InspectAll. For what runs
  // often and only proposes (placement), deciding again under the lease.
  virtual Result<std::vector<ListedRecord>> InspectLocal() { return InspectAll(); }
  virtual CatalogHealth Health() { return {}; }

  virtual Status Create(const ImageRecord& record) = 0;
  virtual Result<ImageRecord> Get(std::string_view id) = 0;
  virtual Result<std::vector<std::string>> ListIds() = 0;
  // Every record, in id order, in one pass (rados: pages of values).
  virtual Result<std::vector<ListedRecord>> ListRecords() = 0;
  // Applies `mutate` to the current record and stores the result with a
  // fresh updated_at; returns the stored record. `mutate` may run several
  // times, each on a fresher record (the rados catalog runs it again when
  // another daemon changed the record in between, up to 1000 times), and
  // its result may be thrown away: it must be pure and repeatable. It
  // changes the record (through ImageRecord's transitions where there is
  // one) and may assign what it computed to the caller's variables, which
  // each run overwrites; logging, metrics and other side effects belong
  // after Update returns, once its outcome is known. An error it returns
  // stores nothing and is Update's result.
  virtual Result<ImageRecord> Update(std::string_view id, const Mutation& mutate) = 0;
  virtual Status Remove(std::string_view id) = 0;
  virtual CatalogTraits Traits() const { return {}; }
  // Takes the copy in `store` out, its data and its location (Glance's
  // DELETE /v2/stores/<store>/<id>). Only where Traits().removes_data.
  virtual Status RemoveCopy(std::string_view id, std::string_view store) {
    return Fail(EOPNOTSUPP, "image {}: this catalog does not remove copies of {}", id, store);
  }
  // Copies image `id` into `stores` by the catalog's own means and waits
  // for the outcome. Ok when every store has it, or with failures allowed
  // when one does; EIO naming the failed stores else; EBUSY when the
  // catalog is importing the image already.
  virtual Status CopyItself(std::string_view id, const std::vector<std::string>& stores,
                            bool all_must_succeed) {
    (void)stores;
    (void)all_must_succeed;
    return Fail(EOPNOTSUPP, "image {}: this catalog makes no copies itself", id);
  }
  // Whether a copy at `url` may be published in this catalog: Glance
  // refuses some schemes (EOPNOTSUPP). Asked before any data is written.
  virtual Status CheckLocation(std::string_view id, std::string_view url) {
    (void)id;
    (void)url;
    return Ok();
  }

  virtual Status AcquireLease(const Lease& lease) = 0;
  virtual Status RenewLease(std::string_view image_id, std::string_view holder,
                            int64_t expires_at) = 0;
  virtual Status ReleaseLease(std::string_view image_id, std::string_view holder) = 0;
  // The lease on an image if one exists, stale or not.
  virtual Result<std::optional<Lease>> GetLease(std::string_view image_id) = 0;
  // Leases that expired before `now` (ns): operations that died.
  virtual Result<std::vector<Lease>> ListStaleLeases(int64_t now) = 0;
};

// Where a replica of a shared catalog stands: which catalog (an id made
// when the catalog was created) and how many changes of each of its change
// logs it has applied. How many logs there are is the catalog's business
// (the rados catalog keeps several, so that changes of different images do
// not contend for one counter); a position with another number of them,
// or none (from nowhere), is continued by reading every record.
struct CatalogPosition {
  std::string catalog;
  std::vector<uint64_t> seqs;

  // Changes applied in all logs together (what logs report).
  uint64_t Applied() const;
  // "3,0,7": the counts as text, and back. Text that is not such a list
  // gives no counts, that is, from nowhere.
  std::string EncodeSeqs() const;
  static CatalogPosition Decode(std::string catalog, std::string_view seqs);
};

// What changed in a shared catalog after a position.
struct CatalogChanges {
  CatalogPosition position;  // where applying these leaves the replica
  // `records` is every record, to replace the replica's: the position was
  // of another catalog, or older than the change log keeps.
  bool complete = false;
  // Whether a record not in `records` is known unchanged. Not so where the
  // log omits removals (Glance's listing of changed images): then only a
  // complete answer confirms what a replica holds.
  bool names_every_change = true;
  // The current value of each record changed (encoded, EncodeRecord);
  // nullopt when it was removed.
  std::vector<std::pair<std::string, std::optional<std::string>>> records;
};

// A catalog that several daemons share and that keeps a log of its
// changes, so that each can keep a local replica current cheaply.
class SharedCatalog : public Catalog {
 public:
  // ESTALE never: a position it cannot continue from gets `complete`.
  virtual Result<CatalogChanges> ChangesSince(const CatalogPosition& from) = 0;
};

// The embedded catalog: one SQLite database file (WAL mode), created with its
// schema when missing. Fails with ENOTSUP when the file has a newer schema.
Result<std::unique_ptr<Catalog>> OpenSqliteCatalog(const std::string& path);

}  // namespace imagefs

namespace imagefs {

struct RadosCatalogOptions {
  CephClientOptions client;  // the central cluster
  std::string pool = "imagefs";
  std::string name_space = "catalog";
  // How many changes the log keeps: a replica further behind reads every
  // record again.
  uint64_t changes_kept = 8192;
};

// The shared catalog: records and leases in RADOS omap on the central
// cluster (pool created when missing), so that daemons at several sites
// share one consistent catalog. Updates are compare-and-set operations on
// the OSD; leases rely on the daemons' clocks being in sync (NTP), within a
// small fraction of the lease ttl. Every change of a record also counts
// up a change counter and logs the record's id (ChangesSince), in the same
// atomic operation. Fails with the connection's error, or ENOTSUP when the
// stored format is newer than this build.
Result<std::unique_ptr<SharedCatalog>> OpenRadosCatalog(const RadosCatalogOptions& options);

// A shared catalog served through a local replica (SQLite at
// `replica_path`), for a mount that must keep serving when the central
// cluster is cut off (docs/contract.md, "When central is unreachable"):
// - A follower thread connects (`open`, again after every failure), then
//   every `follow_every` reads the catalog's change counter and applies
//   what changed to the replica. The same read tells whether central
//   answers: a failure marks the catalog not live, at once.
// - While live, every call goes to the shared catalog. A call that fails
//   because central did not answer (ETIMEDOUT, ENOTCONN, ...) marks it not
//   live too.
// - While not live, Inspect and InspectAll answer from the replica and
//   every other call fails at once with EHOSTUNREACH and a log line: the
//   replica serves, it never decides (no lease, no change, no recovery).
// - Opening waits up to `first_wait` for central, then serves from the
//   replica as it is, and goes live by itself when central answers. It
//   fails when central answers the first attempt with an error (a wrong
//   key: EACCES, EPERM; a newer format: ENOTSUP): that needs an operator.
// - While live, a record inspected is kept while it is known current to
//   within `inspect_for` (the kernel's attribute timeout): read that
//   recently, or confirmed by the follower's reading of the change log
//   since. The attributes of one image come from one read, another
//   daemon's change shows within that time, this daemon's own at once.
//   Many images inspected within a second read every record in one
//   listing.
// - An inspection that misses that cache waits for central `inspect_wait`
//   at most: past that (central stopped, not yet known unreachable) the
//   replica answers, as current as the follower's last round, and the read
//   goes on in the background and fills the cache; until it ends, other
//   inspections answer from the replica at once. So `ls` and `getfattr`
//   never wait a whole op timeout on central.
struct ReplicaOptions {
  std::string replica_path;
  // What log lines and errors call the shared catalog.
  std::string authority = "central";
  // What the shared catalog answers to Traits(), known before it is reached.
  CatalogTraits traits;
  std::chrono::milliseconds follow_every{500};
  std::chrono::milliseconds first_wait{3000};
  std::chrono::milliseconds inspect_for{1000};
  std::chrono::milliseconds inspect_wait{500};
};
using SharedCatalogOpener = std::function<Result<std::unique_ptr<SharedCatalog>>()>;
Result<std::unique_ptr<Catalog>> OpenReplicatedCatalog(SharedCatalogOpener open,
                                                       const ReplicaOptions& options);

}  // namespace imagefs

#include "cloud/clouds_yaml.h"
#include "cloud/http_client.h"

namespace imagefs {

struct GlanceCatalogOptions {
  CloudConfig cloud;  // clouds.yaml's cloud (cloud/clouds_yaml.h)
  HttpOptions http;   // timeouts; TLS from the cloud
  // Where the import leases live: `open_leases` when set (the rados
  // catalog on the central cluster, shared by every site's mount), else
  // an SQLite file of this mount's.
  std::function<Result<std::unique_ptr<Catalog>>()> open_leases;
  std::string lease_path;
  uint32_t own_uid = 0;  // the uid of the token project's images
  // Copies of active images through Glance's import API (copy-image)
  // instead of imagefs's pipeline (`copy_method = glance`).
  bool glance_copies = false;
  // How long CopyItself waits for Glance's copy to end.
  std::chrono::seconds copy_timeout{3600};
  // How often ChangesSince lists every image (which is how a replica
  // learns of deletions); between, it lists those changed.
  std::chrono::seconds full_listing_every{60};
};

// The Glance catalog (docs/contract.md, "Glance as the catalog"): the
// records are the images of a real Glance (API v2), through the cloud's
// identity (cloud/identity.h):
// - Get and ListRecords ask Glance (a listing is paged). ChangesSince lists
//   the images changed since a position (`updated_at=gte:`), and every
//   `full_listing_every` all of them, so that OpenReplicatedCatalog keeps a
//   replica that serves inspections while Glance does not answer; the
//   service factory always serves the Glance catalog through one.
// - Create is POST /v2/images with the id; Update sends the difference as
//   one JSON patch (glance_records.h): a property Glance refuses is EPERM.
//   A copy imagefs wrote and verified is added as a location (the first
//   with its validation data, which makes the image active); what Glance
//   cannot hold (imagefs's import lists and status while it copies, the
//   chunk digest) is kept in memory (OwnState) and shown with Glance's.
//   CheckLocation refuses file:// stores, whose locations Glance refuses.
// - Remove is DELETE /v2/images/<id>; RemoveCopy DELETE
//   /v2/stores/<store>/<id>: Glance removes the data (Traits().removes_data).
// - Leases live where `open_leases` keeps them (the service factory opens
//   a rados catalog on the central store's cluster when that store is rbd,
//   so daemons at every site exclude each other), else in an SQLite file
//   of this mount's (`lease_path`), which excludes one host's daemons.
// Opening asks Glance for one image, so a wrong cloud or password fails
// the mount at once (Keystone's or Glance's errno).
Result<std::unique_ptr<SharedCatalog>> OpenGlanceCatalog(const GlanceCatalogOptions& options);
// The Glance catalog's traits: it removes data and shares its stores; it
// copies itself with `glance_copies`.
CatalogTraits GlanceCatalogTraits(const GlanceCatalogOptions& options);

}  // namespace imagefs

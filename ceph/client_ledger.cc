// The Ceph clients of this run and the last, in the state directory
// (ceph/client_ledger.h).
#include "ceph/client_ledger.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <sstream>
#include <utility>

#include "common/log.h"
#include "common/mutex.h"

namespace imagefs {
namespace {

struct Ledger {
  Mutex mutex;
  std::string path GUARDED_BY(mutex);
  int fd GUARDED_BY(mutex) = -1;  // locked; -1: nothing is recorded
  std::set<std::pair<std::string, uint64_t>> predecessors GUARDED_BY(mutex);
};

Ledger& TheLedger() {
  static Ledger* ledger = new Ledger();  // lives as long as the process
  return *ledger;
}

// The file's lines, "<fsid> <client id>".
std::set<std::pair<std::string, uint64_t>> ReadClients(int fd) {
  std::string text;
  char buffer[4096];
  ssize_t got;
  while ((got = ::read(fd, buffer, sizeof(buffer))) > 0) text.append(buffer, got);
  std::set<std::pair<std::string, uint64_t>> clients;
  std::istringstream lines(text);
  std::string fsid;
  uint64_t id = 0;
  while (lines >> fsid >> id) clients.emplace(fsid, id);
  return clients;
}

}  // namespace

void ClientLedger::Open(const std::string& state_dir) {
  Ledger& ledger = TheLedger();
  std::string path = state_dir + "/ceph-clients";
  MutexLock lock(&ledger.mutex);
  if (ledger.path == path) return;
  if (ledger.fd >= 0) ::close(ledger.fd);
  ledger.fd = -1;
  ledger.path = path;
  ledger.predecessors.clear();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    Log(LogLevel::kWarning, "ceph: cannot open {}: {}; a crashed run's watches will time out", path,
        std::strerror(errno));
    return;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    Log(LogLevel::kWarning,
        "ceph: {} is locked by another daemon on this state directory; no client is fenced "
        "as a predecessor",
        path);
    ::close(fd);
    return;
  }
  ledger.predecessors = ReadClients(fd);
  if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) {
    Log(LogLevel::kWarning, "ceph: cannot start {} anew: {}", path, std::strerror(errno));
  }
  ledger.fd = fd;
}

void ClientLedger::Add(const std::string& fsid, uint64_t client_id) {
  Ledger& ledger = TheLedger();
  MutexLock lock(&ledger.mutex);
  if (ledger.fd < 0) return;
  std::string line = fmt::format("{} {}\n", fsid, client_id);
  if (::write(ledger.fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    Log(LogLevel::kWarning, "ceph: cannot record client.{} in {}: {}", client_id, ledger.path,
        std::strerror(errno));
  }
}

bool ClientLedger::IsPredecessor(const std::string& fsid, uint64_t client_id) {
  Ledger& ledger = TheLedger();
  MutexLock lock(&ledger.mutex);
  return ledger.predecessors.count({fsid, client_id}) > 0;
}

}  // namespace imagefs

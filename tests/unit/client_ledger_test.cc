// Unit tests of the ledger of Ceph clients across runs (ceph/client_ledger.h).
#include "ceph/client_ledger.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include "tests/unit/temporary_directory.h"

namespace imagefs {
namespace {

// A run's clients are the next run's predecessors, and only those: the
// run before that, and the run itself, are not.
TEST(ClientLedgerTest, TheLastRunsClientsArePredecessors) {
  TemporaryDirectory first_state, other_state;
  ClientLedger::Open(first_state.path());  // run 1
  ClientLedger::Add("fsid-a", 4101);
  ClientLedger::Add("fsid-b", 4102);
  EXPECT_FALSE(ClientLedger::IsPredecessor("fsid-a", 4101));  // this run's own
  ClientLedger::Open(first_state.path());                     // the same run: nothing changes
  EXPECT_FALSE(ClientLedger::IsPredecessor("fsid-a", 4101));
  ClientLedger::Open(other_state.path());  // run 1 ends (another directory in between)
  ClientLedger::Open(first_state.path());  // run 2
  EXPECT_TRUE(ClientLedger::IsPredecessor("fsid-a", 4101));
  EXPECT_TRUE(ClientLedger::IsPredecessor("fsid-b", 4102));
  EXPECT_FALSE(ClientLedger::IsPredecessor("fsid-b", 4101));  // ids are per cluster
  ClientLedger::Add("fsid-a", 4201);
  ClientLedger::Open(other_state.path());
  ClientLedger::Open(first_state.path());  // run 3: run 2's alone
  EXPECT_TRUE(ClientLedger::IsPredecessor("fsid-a", 4201));
  EXPECT_FALSE(ClientLedger::IsPredecessor("fsid-a", 4101));
  ClientLedger::Open(other_state.path());
}

// A state directory another live daemon holds: its clients are alive, so
// none is a predecessor, and this daemon records nothing over them.
TEST(ClientLedgerTest, ALedgerAnotherDaemonHoldsFencesNobody) {
  TemporaryDirectory state, elsewhere;
  ClientLedger::Open(state.path());
  ClientLedger::Add("fsid-a", 77);
  ClientLedger::Open(elsewhere.path());
  int held = ::open(state.Join("ceph-clients").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(held, 0);
  ASSERT_EQ(::flock(held, LOCK_EX | LOCK_NB), 0);  // the other daemon
  ClientLedger::Open(state.path());
  EXPECT_FALSE(ClientLedger::IsPredecessor("fsid-a", 77));
  ClientLedger::Add("fsid-a", 78);
  ClientLedger::Open(elsewhere.path());
  ::close(held);  // the other daemon ends: 77 was its client, 78 never recorded
  ClientLedger::Open(state.path());
  EXPECT_TRUE(ClientLedger::IsPredecessor("fsid-a", 77));
  EXPECT_FALSE(ClientLedger::IsPredecessor("fsid-a", 78));
  ClientLedger::Open(elsewhere.path());
}

}  // namespace
}  // namespace imagefs

// When written data commits (fs/open_files.h), against a fake service: the
// creator's close after writing, the last close, a temporary's rename, a
// writer killed by a signal, reopening a file created first; and reads of
// published copies. No mount: each close is a Flush (and Release) call.
#include "fs/open_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>

#include "tests/unit/fake_tree.h"

namespace imagefs {
namespace {

constexpr char kImage[] = "4b5c6d7e-1111-4c8e-9b53-3f0a1e2d4c5b";
constexpr char kOther[] = "4b5c6d7e-2222-4c8e-9b53-3f0a1e2d4c5b";
const Requester kCreator{{1000, 1000}, 4242};
const Requester kChild{{1000, 1000}, 4343};  // inherited the descriptor
const Requester kStranger{{2000, 2000}, 4444};

class OpenFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(service_.CreateImage(kCreator.caller, kImage).ok());
    site_ = Ino({"images", kImage, "stores", "central"});
  }

  InodeNumber Ino(const std::vector<std::string>& path) {
    InodeNumber at = kRootIno;
    for (const auto& name : path) {
      auto entry = tree_.Lookup(at, name);
      EXPECT_TRUE(entry.ok()) << name;
      if (!entry.ok()) return 0;
      at = entry->ino;
    }
    return at;
  }
  std::unique_ptr<OpenFile> Create(const std::string& name, const Requester& who = kCreator) {
    auto created = files_.Create(who, site_, name);
    EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message);
    return created.ok() ? std::move(created->file) : nullptr;
  }
  Status Write(OpenFile& file, const Requester& who, uint64_t offset, std::string_view data) {
    Status result = Fail(EINPROGRESS, "no answer");
    files_.Write(file, who.pid, offset, data, [&](Result<size_t> written) {
      result = written.ok() ? Ok() : Status(written.error());
    });
    return result;
  }
  Status Flush(OpenFile& file, const Requester& who) {
    Status result = Fail(EINPROGRESS, "no answer");
    files_.Flush(file, who, [&](Status status) { result = status; });
    return result;
  }
  Result<std::unique_ptr<OpenFile>> Open(InodeNumber ino, int flags, const Requester& who) {
    Result<std::unique_ptr<OpenFile>> result = Fail(EINPROGRESS, "no answer");
    files_.Open(who, ino, flags,
                [&](Result<std::unique_ptr<OpenFile>> file) { result = std::move(file); });
    return result;
  }

  FakeTree parts_;
  FakeImageService& service_ = parts_.service;
  UploadRegistry& uploads_ = parts_.uploads;
  ImageTree& tree_ = parts_.tree;
  std::map<pid_t, ProcessDeath> killed_;  // the processes "killed by a signal"
  OpenFiles files_{service_, tree_, uploads_,
                   OpenFilesOptions{std::chrono::seconds(600), [this](pid_t pid) {
                                      auto it = killed_.find(pid);
                                      return it == killed_.end()
                                                 ? std::optional<ProcessDeath>()
                                                 : std::optional<ProcessDeath>(it->second);
                                    }}};
  InodeNumber site_ = 0;
};

TEST_F(OpenFilesTest, TheCreatorsCloseAfterWritingCommits) {
  auto file = Create("disk.raw");
  // A shell's redirection closes a duplicate before anything is written.
  EXPECT_TRUE(Flush(*file, kCreator).ok());
  EXPECT_TRUE(service_.committed.empty());
  ASSERT_TRUE(Write(*file, kCreator, 0, "data").ok());
  EXPECT_TRUE(Flush(*file, kChild).ok());  // a child's close only closes
  EXPECT_TRUE(service_.committed.empty());
  EXPECT_TRUE(Flush(*file, kCreator).ok());
  ASSERT_EQ(service_.committed.size(), 1u);
  EXPECT_EQ(service_.committed[0]->Size(), 4u);
  // An unnamed image takes it with its data.
  EXPECT_EQ(service_.committed[0]->file_name(), "disk.raw");
  files_.Release(std::move(file));
  EXPECT_EQ(service_.committed.size(), 1u);
}

TEST_F(OpenFilesTest, TheCommitsFailureIsTheClosesError) {
  service_.commit_failure = Fail(EIO, "data does not match");
  auto file = Create("disk.raw");
  ASSERT_TRUE(Write(*file, kCreator, 0, "data").ok());
  EXPECT_EQ(Flush(*file, kCreator).code(), EIO);
}

TEST_F(OpenFilesTest, TheLastCloseCommitsWhatNoCloseDid) {
  auto file = Create("disk.raw");
  ASSERT_TRUE(Write(*file, kChild, 0, "written by a child").ok());
  EXPECT_TRUE(Flush(*file, kChild).ok());
  EXPECT_TRUE(service_.committed.empty());
  files_.Release(std::move(file));
  EXPECT_EQ(service_.committed.size(), 1u);
}

TEST_F(OpenFilesTest, ATemporaryCommitsOnlyAtItsRename) {
  auto file = Create(".disk.raw.part");
  ASSERT_TRUE(Write(*file, kCreator, 0, "data").ok());
  EXPECT_TRUE(Flush(*file, kCreator).ok());
  files_.Release(std::move(file));
  EXPECT_TRUE(service_.committed.empty());
  Status renamed = Fail(EINPROGRESS, "no answer");
  files_.Rename(kCreator.caller, site_, ".disk.raw.part", site_ + 1000, "disk.raw", false,
                [&](Status status) { renamed = status; });
  EXPECT_EQ(renamed.code(), EXDEV);  // uploads stay in their directory
  files_.Rename(kCreator.caller, site_, ".disk.raw.part", site_, "disk.raw", false,
                [&](Status status) { renamed = status; });
  EXPECT_TRUE(renamed.ok());
  EXPECT_EQ(service_.committed.size(), 1u);
  // A published file is renamed through user.glance.name, not rename(2).
  files_.Rename(kCreator.caller, site_, "disk.raw", site_, "other", false,
                [&](Status status) { renamed = status; });
  EXPECT_EQ(renamed.code(), EPERM);
}

TEST_F(OpenFilesTest, AWriterKilledByASignalPublishesNothing) {
  auto file = Create("disk.raw");
  ASSERT_TRUE(Write(*file, kCreator, 0, "half of it").ok());
  killed_[kCreator.pid] = ProcessDeath{"cp", SIGKILL};
  EXPECT_TRUE(Flush(*file, kCreator).ok());  // nobody waits for that answer
  files_.Release(std::move(file));
  EXPECT_TRUE(service_.committed.empty());
  EXPECT_FALSE(uploads_.Find({site_, "disk.raw"}));
}

TEST_F(OpenFilesTest, TheDeathOfAProcessThatOnlyInheritedTheFileInterruptsNothing) {
  auto file = Create("disk.raw");
  ASSERT_TRUE(Write(*file, kCreator, 0, "data").ok());
  killed_[kChild.pid] = ProcessDeath{"sh", SIGTERM};
  EXPECT_TRUE(Flush(*file, kChild).ok());
  EXPECT_TRUE(Flush(*file, kCreator).ok());
  EXPECT_EQ(service_.committed.size(), 1u);
}

TEST_F(OpenFilesTest, AFileCreatedFirstIsWrittenByALaterOpen) {
  auto file = Create("disk.raw");
  EXPECT_TRUE(Flush(*file, kCreator).ok());
  files_.Release(std::move(file));  // no data yet: it waits
  InodeNumber ino = Ino({"images", kImage, "stores", "central", "disk.raw"});
  EXPECT_EQ(Open(ino, O_RDONLY, kCreator).code(), EBUSY);  // not readable while written
  EXPECT_EQ(Open(ino, O_WRONLY, kStranger).code(), EACCES);
  auto later = Open(ino, O_WRONLY | O_TRUNC, kCreator);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(Open(ino, O_WRONLY, kCreator).code(), EBUSY);  // one writer at a time
  ASSERT_TRUE(Write(**later, kCreator, 0, "data").ok());
  EXPECT_TRUE(Flush(**later, kCreator).ok());
  EXPECT_EQ(service_.committed.size(), 1u);
}

// qemu-img create, then qemu-img dd at once: the first handle's release
// comes after close(2) returned, maybe after the second open. That open is
// not refused, and the late release commits nothing.
TEST_F(OpenFilesTest, AFileClosedAndOpenedAgainBeforeItsReleaseIsNotBusy) {
  auto first = Create("disk.raw");
  InodeNumber ino = Ino({"images", kImage, "stores", "central", "disk.raw"});
  EXPECT_EQ(Open(ino, O_WRONLY, kChild).code(), EBUSY);  // open: one writer at a time
  EXPECT_TRUE(Flush(*first, kStranger).ok());            // a process that only inherited it
  EXPECT_EQ(Open(ino, O_WRONLY, kChild).code(), EBUSY);
  EXPECT_TRUE(Flush(*first, kCreator).ok());  // closed, its release still to come
  auto second = Open(ino, O_WRONLY, kChild);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(Open(ino, O_WRONLY, kCreator).code(), EBUSY);
  ASSERT_TRUE(Write(**second, kChild, 0, "da").ok());
  files_.Release(std::move(first));  // late: the file is open again
  EXPECT_TRUE(service_.committed.empty());
  ASSERT_TRUE(Write(**second, kChild, 2, "ta").ok());
  EXPECT_TRUE(Flush(**second, kChild).ok());
  ASSERT_EQ(service_.committed.size(), 1u);
  EXPECT_EQ(service_.committed[0]->Size(), 4u);
  files_.Release(std::move(second).value());
}

// A shell's redirection closes a duplicate, and the file is written
// through another: still open.
TEST_F(OpenFilesTest, WritingAfterACloseKeepsTheFileOpen) {
  auto file = Create("disk.raw");
  InodeNumber ino = Ino({"images", kImage, "stores", "central", "disk.raw"});
  EXPECT_TRUE(Flush(*file, kCreator).ok());
  ASSERT_TRUE(Write(*file, kCreator, 0, "data").ok());
  EXPECT_EQ(Open(ino, O_WRONLY, kChild).code(), EBUSY);
}

TEST_F(OpenFilesTest, PublishedCopiesAreReadOnlyAndRead) {
  service_.AddActive(kImage, {"central"}, 1000, 5);
  service_.copies[kImage] = "hello";
  InodeNumber ino = Ino({"sites", "central", kImage});
  EXPECT_EQ(Open(ino, O_WRONLY, kCreator).code(), EEXIST);
  Status truncated = Ok();
  files_.Truncate(ino, 0, [&](Status status) { truncated = status; });
  EXPECT_EQ(truncated.code(), EPERM);
  auto file = Open(ino, O_RDONLY, kCreator);
  ASSERT_TRUE(file.ok());
  std::string got;
  files_.Read(**file, 1, 10, [&](Result<ReadAhead::Bytes> bytes) {
    ASSERT_TRUE(bytes.ok());
    got.resize(bytes->size());
    bytes->CopyTo(got);
  });
  EXPECT_EQ(got, "ello");
  Status written = Ok();
  files_.Write(**file, kCreator.pid, 0, "x",
               [&](Result<size_t> n) { written = n.ok() ? Ok() : Status(n.error()); });
  EXPECT_EQ(written.code(), EBADF);
  files_.Release(std::move(file).value());
}

TEST_F(OpenFilesTest, CreateIsForSiteDirectoriesAndOneWriterAName) {
  EXPECT_EQ(files_.Create(kCreator, Ino({"images"}), "x").code(), EPERM);
  auto file = Create("disk.raw");
  EXPECT_EQ(files_.Create(kCreator, site_, "disk.raw").code(), EBUSY);
  EXPECT_EQ(files_.Create(kStranger, site_, "other.raw").code(), EACCES);
  Status allocated = Ok();
  files_.Fallocate(*file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1,
                   [&](Status status) { allocated = status; });
  EXPECT_EQ(allocated.code(), EOPNOTSUPP);
  files_.Fallocate(*file, 0, 0, 4096, [&](Status status) { allocated = status; });
  ASSERT_TRUE(allocated.ok());
  EXPECT_EQ(file->upload()->write->Size(), 4096u);
}

}  // namespace
}  // namespace imagefs

namespace imagefs {
namespace {

TEST_F(OpenFilesTest, AMoveBetweenSitesOfItsImageIsAMoveElseRefused) {
  service_.AddActive(kImage, {"central", "dcn0"});
  Status renamed = Fail(EINPROGRESS, "no answer");
  auto rename = [&](InodeNumber from, const std::string& name, InodeNumber to,
                    const std::string& new_name) {
    renamed = Fail(EINPROGRESS, "no answer");
    files_.Rename(kCreator.caller, from, name, to, new_name, false,
                  [&](Status status) { renamed = status; });
    return renamed;
  };
  InodeNumber sites_dcn0 = Ino({"sites", "dcn0"});
  InodeNumber sites_central = Ino({"sites", "central"});
  // /sites/dcn0/<id> -> /sites/central/<id>, and stores/dcn0 -> stores/central.
  EXPECT_TRUE(rename(sites_dcn0, kImage, sites_central, kImage).ok());
  InodeNumber stores_dcn0 = Ino({"images", kImage, "stores", "dcn0"});
  EXPECT_TRUE(rename(stores_dcn0, kImage, site_, "anything").ok());
  EXPECT_EQ(service_.moved, (std::vector<std::string>{std::string(kImage) + "/dcn0->central",
                                                      std::string(kImage) + "/dcn0->central"}));
  // In /sites/ a file is named by its image; not into another image.
  EXPECT_EQ(rename(sites_dcn0, kImage, sites_central, "other").code(), EINVAL);
  service_.AddActive(kOther, {"central"});
  EXPECT_EQ(
      rename(stores_dcn0, kImage, Ino({"images", kOther, "stores", "central"}), kImage).code(),
      EXDEV);
  // Within one site: a rename, refused as before.
  EXPECT_EQ(rename(sites_dcn0, kImage, sites_dcn0, "renamed").code(), EPERM);
  EXPECT_EQ(service_.moved.size(), 2u);
}

}  // namespace
}  // namespace imagefs

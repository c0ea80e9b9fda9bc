// The FUSE layer's rules as the adapter builds them (an inode table, the
// upload registry and the tree), over a fake service whose writes stage in
// a temporary directory: the fixture of the fs unit tests.
#pragma once

#include "fs/image_tree.h"
#include "tests/unit/fake_image_service.h"
#include "tests/unit/temporary_directory.h"

namespace imagefs {

struct FakeTree {
  TemporaryDirectory staging;
  FakeImageService service{staging.path()};
  InodeTable inodes;
  UploadRegistry uploads;
  ImageTree tree{service, inodes, uploads};
};

}  // namespace imagefs

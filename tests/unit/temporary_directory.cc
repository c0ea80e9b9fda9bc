// Temporary directories for tests, removed with their owner.
#include "tests/unit/temporary_directory.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace imagefs {

TemporaryDirectory::TemporaryDirectory() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/imagefs-test-XXXXXX";
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TemporaryDirectory::~TemporaryDirectory() {
  std::error_code error;
  std::filesystem::remove_all(path_, error);
}

}  // namespace imagefs

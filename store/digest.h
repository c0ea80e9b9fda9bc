// Digests of image data: size, md5 (Glance's `checksum`) and sha512
// (Glance's `os_hash_value` with os_hash_algo = sha512), computed in one pass
// with OpenSSL's EVP interface.
//
// Thread safety: a Hasher is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace imagefs {

struct Digest {
  uint64_t size = 0;
  std::string md5;     // lower-case hex
  std::string sha512;  // lower-case hex
  bool operator==(const Digest&) const = default;
};

class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void Update(std::span<const char> data);
  // Ends the pass; the Hasher starts over afterwards.
  Digest Finish();

 private:
  struct Contexts;
  std::unique_ptr<Contexts> contexts_;
  uint64_t size_ = 0;
};

}  // namespace imagefs

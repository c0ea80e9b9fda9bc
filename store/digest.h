// Digests of image data:
// - size, md5 (Glance's `checksum`) and sha512 (Glance's `os_hash_value`,
//   os_hash_algo = sha512), over every byte in order, with OpenSSL:
//   computed at upload;
// - chunks: XXH3-128 (libxxhash) over the XXH3-128 of each
//   kDigestChunkBytes chunk in order (the last one may be shorter). It
//   checks that a copy read and wrote the image's bytes, the job storage
//   systems give a fast non-cryptographic checksum (BlueStore, btrfs): at
//   about 10 times sha256's speed. The catalog keeps it as `chunks_xxh3`
//   (records made before it kept a sha256 one, which is no longer read;
//   such an image's first copy is verified by md5 and sha512 and records
//   it). Chunks hash independently, in parallel, and a chunk of zeros has a
//   digest known in advance, so a copy is verified from the data it reads
//   alone: holes cost nothing.
//
// Thread safety: a Hasher is used by one thread at a time; a ChunkDigests
// takes Set from any number of threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/mutex.h"

namespace imagefs {

constexpr uint64_t kDigestChunkBytes = 4 << 20;

// kDigestChunkBytes zero bytes, for hashing holes.
std::span<const char> ZeroBytes();

struct Digest {
  uint64_t size = 0;
  std::string md5;     // lower-case hex
  std::string sha512;  // lower-case hex
  std::string chunks;  // lower-case hex; empty when not known
  bool operator==(const Digest&) const = default;
};

using ChunkHash = std::array<unsigned char, 16>;  // XXH3-128, canonical (big endian)

// The chunk digest of an image of `size` bytes, chunk by chunk in any order;
// chunks never set are zeros.
class ChunkDigests {
 public:
  explicit ChunkDigests(uint64_t size);
  // For an image whose size becomes known as data arrives: grows it to
  // `size` (a smaller size is ignored).
  void Grow(uint64_t size);
  // Hashes chunk `index` (its bytes: chunk_bytes long, shorter at the end).
  void Set(uint64_t index, std::span<const char> data);
  // Hashes every chunk of `data`, which starts at `offset` (a chunk boundary).
  void SetRange(uint64_t offset, std::span<const char> data);
  std::string Finish() const;

 private:
  mutable Mutex mutex_;
  uint64_t size_ GUARDED_BY(mutex_);
  std::vector<ChunkHash> hashes_ GUARDED_BY(mutex_);
  std::vector<bool> set_ GUARDED_BY(mutex_);
};

class FullHasher;

// The digest of an image of `size` bytes from its chunk digests and, when
// `full` is given, its md5 and sha512 (finishing them).
Digest FinishDigest(uint64_t size, const ChunkDigests& chunks, FullHasher* full);

// All digests in one sequential pass (uploads; anything read in order).
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

// md5 and sha512 only, fed in order (a copy of an image that has no chunk
// digest yet, and the upload's in-order pass).
class FullHasher {
 public:
  FullHasher();
  ~FullHasher();
  FullHasher(const FullHasher&) = delete;
  FullHasher& operator=(const FullHasher&) = delete;
  // Either digest alone, so that two threads can each run one.
  void UpdateMd5(std::span<const char> data);
  void UpdateSha512(std::span<const char> data);
  std::string FinishMd5();
  std::string FinishSha512();

 private:
  struct Contexts;
  std::unique_ptr<Contexts> contexts_;
};

}  // namespace imagefs

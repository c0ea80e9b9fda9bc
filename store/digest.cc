// md5 and sha512 with OpenSSL, the chunk digest with xxHash (store/digest.h).
#include "store/digest.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdlib>

namespace imagefs {
namespace {

// EVP calls only fail when OpenSSL is out of memory or misconfigured;
// continuing would publish wrong checksums, so stop.
void Check(int ok) {
  if (ok != 1) std::abort();
}

EVP_MD_CTX* NewContext(const EVP_MD* type) {
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  if (!context) std::abort();
  Check(EVP_DigestInit_ex(context, type, nullptr));
  return context;
}

std::string Hex(const unsigned char* bytes, unsigned int length) {
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i)
    fmt::format_to(std::back_inserter(hex), "{:02x}", bytes[i]);
  return hex;
}

// Finishes `context` and starts it over with the same type.
std::string FinishHex(EVP_MD_CTX* context) {
  unsigned char bytes[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  Check(EVP_DigestFinal_ex(context, bytes, &length));
  Check(EVP_DigestInit_ex(context, EVP_MD_CTX_get0_md(context), nullptr));
  return Hex(bytes, length);
}

ChunkHash Canonical(XXH128_hash_t value) {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, value);
  ChunkHash hash{};
  std::copy_n(canonical.digest, hash.size(), hash.begin());
  return hash;
}

ChunkHash HashChunk(std::span<const char> data) {
  return Canonical(XXH3_128bits(data.data(), data.size()));
}

// The chunk digest: XXH3-128 over the chunks' hashes (canonical, big
// endian) in order.
std::string OuterDigest(const std::vector<ChunkHash>& hashes) {
  ChunkHash outer = HashChunk(std::span<const char>(reinterpret_cast<const char*>(hashes.data()),
                                                    hashes.size() * sizeof(ChunkHash)));
  return Hex(outer.data(), static_cast<unsigned int>(outer.size()));
}

uint64_t ChunkCount(uint64_t size) { return (size + kDigestChunkBytes - 1) / kDigestChunkBytes; }

// The hash of `length` zero bytes, for the two lengths an image can have.
ChunkHash ZeroHash(uint64_t length) {
  static const ChunkHash full = HashChunk(ZeroBytes());
  if (length == kDigestChunkBytes) return full;
  return HashChunk(ZeroBytes().first(length));
}

}  // namespace

std::span<const char> ZeroBytes() {
  static const std::vector<char> zeros(kDigestChunkBytes, 0);
  return zeros;
}

ChunkDigests::ChunkDigests(uint64_t size)
    : size_(size), hashes_(ChunkCount(size)), set_(ChunkCount(size), false) {}

void ChunkDigests::Grow(uint64_t size) {
  MutexLock lock(&mutex_);
  if (size <= size_) return;
  size_ = size;
  hashes_.resize(ChunkCount(size));
  set_.resize(ChunkCount(size), false);
}

void ChunkDigests::Set(uint64_t index, std::span<const char> data) {
  ChunkHash hash = HashChunk(data);
  MutexLock lock(&mutex_);
  hashes_.at(index) = hash;
  set_[index] = true;
}

void ChunkDigests::SetRange(uint64_t offset, std::span<const char> data) {
  uint64_t first = offset / kDigestChunkBytes;
  for (size_t at = 0; at < data.size(); at += kDigestChunkBytes) {
    Set(first + at / kDigestChunkBytes,
        data.subspan(at, std::min<size_t>(kDigestChunkBytes, data.size() - at)));
  }
}

std::string ChunkDigests::Finish() const {
  std::vector<ChunkHash> hashes;
  {
    MutexLock lock(&mutex_);
    hashes = hashes_;
    for (uint64_t i = 0; i < hashes.size(); ++i) {
      if (!set_[i])
        hashes[i] = ZeroHash(std::min(kDigestChunkBytes, size_ - i * kDigestChunkBytes));
    }
  }
  return OuterDigest(hashes);
}

Digest FinishDigest(uint64_t size, const ChunkDigests& chunks, FullHasher* full) {
  Digest digest;
  digest.size = size;
  digest.chunks = chunks.Finish();
  if (full) {
    digest.md5 = full->FinishMd5();
    digest.sha512 = full->FinishSha512();
  }
  return digest;
}

struct FullHasher::Contexts {
  EVP_MD_CTX* md5 = NewContext(EVP_md5());
  EVP_MD_CTX* sha512 = NewContext(EVP_sha512());
  ~Contexts() {
    EVP_MD_CTX_free(md5);
    EVP_MD_CTX_free(sha512);
  }
};

FullHasher::FullHasher() : contexts_(std::make_unique<Contexts>()) {}
FullHasher::~FullHasher() = default;

void FullHasher::UpdateMd5(std::span<const char> data) {
  Check(EVP_DigestUpdate(contexts_->md5, data.data(), data.size()));
}
void FullHasher::UpdateSha512(std::span<const char> data) {
  Check(EVP_DigestUpdate(contexts_->sha512, data.data(), data.size()));
}
std::string FullHasher::FinishMd5() { return FinishHex(contexts_->md5); }
std::string FullHasher::FinishSha512() { return FinishHex(contexts_->sha512); }

struct Hasher::Contexts {
  FullHasher full;
  XXH3_state_t* chunk = NewChunkState();
  uint64_t chunk_filled = 0;
  std::vector<ChunkHash> chunks;
  ~Contexts() { XXH3_freeState(chunk); }

  static XXH3_state_t* NewChunkState() {
    XXH3_state_t* state = XXH3_createState();
    if (!state || XXH3_128bits_reset(state) != XXH_OK) std::abort();
    return state;
  }
  void EndChunk() {
    chunks.push_back(Canonical(XXH3_128bits_digest(chunk)));
    if (XXH3_128bits_reset(chunk) != XXH_OK) std::abort();
    chunk_filled = 0;
  }
};

Hasher::Hasher() : contexts_(std::make_unique<Contexts>()) {}
Hasher::~Hasher() = default;

void Hasher::Update(std::span<const char> data) {
  contexts_->full.UpdateMd5(data);
  contexts_->full.UpdateSha512(data);
  size_ += data.size();
  while (!data.empty()) {
    size_t take = static_cast<size_t>(
        std::min<uint64_t>(data.size(), kDigestChunkBytes - contexts_->chunk_filled));
    if (XXH3_128bits_update(contexts_->chunk, data.data(), take) != XXH_OK) std::abort();
    contexts_->chunk_filled += take;
    data = data.subspan(take);
    if (contexts_->chunk_filled == kDigestChunkBytes) contexts_->EndChunk();
  }
}

Digest Hasher::Finish() {
  if (contexts_->chunk_filled > 0) contexts_->EndChunk();
  Digest digest{size_, contexts_->full.FinishMd5(), contexts_->full.FinishSha512(),
                OuterDigest(contexts_->chunks)};
  contexts_->chunks.clear();
  size_ = 0;
  return digest;
}

}  // namespace imagefs

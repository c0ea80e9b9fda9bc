#include "store/digest.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <cstdlib>

namespace imagefs {

struct Hasher::Contexts {
  EVP_MD_CTX* md5 = EVP_MD_CTX_new();
  EVP_MD_CTX* sha512 = EVP_MD_CTX_new();
  ~Contexts() {
    EVP_MD_CTX_free(md5);
    EVP_MD_CTX_free(sha512);
  }
  void Reset() {
    // EVP init only fails when OpenSSL is out of memory or misconfigured;
    // continuing would publish wrong checksums, so stop.
    if (EVP_DigestInit_ex(md5, EVP_md5(), nullptr) != 1 ||
        EVP_DigestInit_ex(sha512, EVP_sha512(), nullptr) != 1) {
      std::abort();
    }
  }
};

namespace {

std::string FinishHex(EVP_MD_CTX* context) {
  unsigned char bytes[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context, bytes, &length) != 1) std::abort();
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i)
    fmt::format_to(std::back_inserter(hex), "{:02x}", bytes[i]);
  return hex;
}

}  // namespace

Hasher::Hasher() : contexts_(std::make_unique<Contexts>()) { contexts_->Reset(); }

Hasher::~Hasher() = default;

void Hasher::Update(std::span<const char> data) {
  EVP_DigestUpdate(contexts_->md5, data.data(), data.size());
  EVP_DigestUpdate(contexts_->sha512, data.data(), data.size());
  size_ += data.size();
}

Digest Hasher::Finish() {
  Digest digest{size_, FinishHex(contexts_->md5), FinishHex(contexts_->sha512)};
  contexts_->Reset();
  size_ = 0;
  return digest;
}

}  // namespace imagefs

// SharedBuffer: memory a store writer may send as it is and keep
// referenced after its write completed (rbd: librados lets go of a
// message's data only once the message is gone, and a message to an OSD
// that died stays queued). Whoever fills it again first asks whether
// anyone else still holds it; if so, it lets go of it too, and the last
// holder frees it.
//
// Thread safety: HeldElsewhere() may be called from any thread; the bytes
// are written by their owner only while nobody else holds them.
// Ownership: the SharedBuffer owns a reference; writers take their own.
// Errors: none (allocation failure aborts, as std::vector's would).
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace imagefs {

class SharedBuffer {
 public:
  explicit SharedBuffer(size_t bytes);
  ~SharedBuffer();
  SharedBuffer(SharedBuffer&&) noexcept;
  SharedBuffer& operator=(SharedBuffer&&) noexcept;

  char* data();
  const char* data() const;
  size_t size() const;
  std::span<char> span() { return {data(), size()}; }

  // Another hold on the same memory (as a writer keeps it).
  SharedBuffer Hold() const;
  // Whether another hold on the memory is left.
  bool HeldElsewhere() const;
  // Before the bytes are written again (nobody else holding them): drops
  // what was learned of the old bytes (librados caches their crc).
  void Rewrite();

  struct Impl;  // store/ only (store/rbd_pool.h)
  const Impl& impl() const { return *impl_; }

 private:
  explicit SharedBuffer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace imagefs

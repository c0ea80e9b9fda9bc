// Memory shared with librados by reference count (store/shared_buffer.h).
#include "store/shared_buffer.h"

#include "store/rbd_pool.h"

namespace imagefs {

SharedBuffer::SharedBuffer(size_t bytes)
    : impl_(std::make_unique<Impl>(
          Impl{ceph::bufferptr(ceph::buffer::create_page_aligned(static_cast<unsigned>(bytes)))})) {
}
SharedBuffer::SharedBuffer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SharedBuffer::~SharedBuffer() = default;
SharedBuffer::SharedBuffer(SharedBuffer&&) noexcept = default;
SharedBuffer& SharedBuffer::operator=(SharedBuffer&&) noexcept = default;

char* SharedBuffer::data() { return impl_->bytes.c_str(); }
const char* SharedBuffer::data() const { return impl_->bytes.c_str(); }
size_t SharedBuffer::size() const { return impl_->bytes.length(); }
SharedBuffer SharedBuffer::Hold() const {
  return SharedBuffer(std::make_unique<Impl>(Impl{impl_->bytes}));
}
bool SharedBuffer::HeldElsewhere() const { return impl_->bytes.raw_nref() > 1; }

void SharedBuffer::Rewrite() {
  ceph::bufferlist whole;
  whole.append(impl_->bytes);  // shares it
  whole.invalidate_crc();
}

}  // namespace imagefs

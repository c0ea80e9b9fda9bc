// Image ids: random UUIDs, and the check of their form (common/uuid.h).
#include "common/uuid.h"

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include "common/mutex.h"

namespace imagefs {

bool IsUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

std::string NewUuid() {
  static Mutex mutex;
  static boost::uuids::random_generator generator;
  MutexLock lock(&mutex);
  return boost::uuids::to_string(generator());
}

}  // namespace imagefs

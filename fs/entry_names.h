// Naming rules of the imagefs tree, kept free of libfuse so that they can be
// unit-tested. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace imagefs {

// rsync's temporary file name ".<name>.XXXXXX": returns <name>, or "" when
// `name` is not one.
std::string RsyncTarget(std::string_view name);

// A file whose name starts with '.' is a temporary: it is committed only
// when it is renamed (rsync's ".<name>.XXXXXX", or `cp f .f.part && mv`),
// so that a writer stopped halfway never publishes a partial image.
bool IsTemporaryName(std::string_view name);

// The image a file created as `name` in a site directory is for:
// in /images/<uuid>/stores/<site>/ the directory's image (`directory_image`);
// in /sites/<site>/ (directory_image empty) the UUID the name carries, plain
// or as a temporary (".<uuid>.XXXXXX", ".<uuid>.part", ".<uuid>"). EINVAL
// when the name carries none.
Result<std::string> ImageOfNewFile(std::string_view directory_image, std::string_view site,
                                   std::string_view name);

}  // namespace imagefs

// Comma-separated lists, as Glance writes them in its configuration
// (enabled_backends = central:rbd, dcn0:rbd) and in its image properties
// (os_glance_importing_to_stores = "dcn0,dcn1").
//
// Thread safety: a pure function.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace imagefs {

// The items of `text`, each trimmed of white space; empty items are left
// out ("a, ,b," is {"a", "b"}; "" is {}).
std::vector<std::string> SplitCommaList(std::string_view text);

}  // namespace imagefs

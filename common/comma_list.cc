// Comma-separated lists (common/comma_list.h).
#include "common/comma_list.h"

namespace imagefs {

std::vector<std::string> SplitCommaList(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n\f\v";
  std::vector<std::string> items;
  while (true) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    size_t first = item.find_first_not_of(kSpace);
    if (first != std::string_view::npos) {
      items.emplace_back(item.substr(first, item.find_last_not_of(kSpace) - first + 1));
    }
    if (comma == std::string_view::npos) return items;
    text.remove_prefix(comma + 1);
  }
}

}  // namespace imagefs

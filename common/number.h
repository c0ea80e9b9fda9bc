// Numbers written as text (configuration values, Glance properties, resume
// records, /proc files), read whole.
//
// Thread safety: a pure function.
#pragma once

#include <charconv>
#include <optional>
#include <string_view>
#include <system_error>

namespace imagefs {

// The number `text` is, all of it (std::from_chars: no sign for unsigned
// types, no white space); nullopt when it is anything else or out of range.
template <typename Number>
std::optional<Number> ParseNumber(std::string_view text) {
  Number value{};
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace imagefs

// Reading imagefs's configuration (workflow/config.cc): the merged INI
// files, and the table of keys (each key's section, name, and the rule
// that reads and checks it). Only config.cc includes it.
//
// Thread safety: a ConfigReader is read by one thread.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <boost/algorithm/string.hpp>
#include <boost/property_tree/ptree.hpp>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/comma_list.h"
#include "common/number.h"
#include "common/result.h"
#include "workflow/config.h"

namespace imagefs::config_reading {

namespace pt = boost::property_tree;

// Line number (1-based) of `key` in `[section]`, or of the section header
// when key is empty; 0 when absent. Only used to make messages precise.
inline int LineOf(std::string_view text, std::string_view section, std::string_view key) {
  std::istringstream lines{std::string(text)};
  std::string line;
  std::string current;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    std::string trimmed = boost::trim_copy(line);
    if (trimmed.starts_with("[") && trimmed.ends_with("]")) {
      current = boost::trim_copy(trimmed.substr(1, trimmed.size() - 2));
      if (key.empty() && current == section) return number;
      continue;
    }
    if (current != section || key.empty()) continue;
    auto equals = trimmed.find('=');
    if (equals != std::string::npos && boost::trim_copy(trimmed.substr(0, equals)) == key) {
      return number;
    }
  }
  return 0;
}

class ConfigReader {
 public:
  // `files` in the order read (a later file's key wins); `tree` their merge.
  ConfigReader(const std::vector<ConfigText>& files, const pt::ptree& tree)
      : files_(files), tree_(tree) {}

  // Names the file and line the key came from: the last file that has it.
  Error Bad(std::string_view section, std::string_view key, std::string_view why) const {
    for (auto file = files_.rbegin(); file != files_.rend(); ++file) {
      int line = LineOf(file->text, section, key);
      if (line != 0)
        return Fail(EINVAL, "{}:{}: [{}] {}: {}", file->source, line, section, key, why);
    }
    return Fail(EINVAL, "{}: [{}] {}: {}", files_.back().source, section, key, why);
  }

  std::string Get(std::string_view section, std::string_view key, std::string fallback = "") const {
    auto value = tree_.get_optional<std::string>(
        pt::ptree::path_type(fmt::format("{}|{}", section, key), '|'));
    return value ? boost::trim_copy(*value) : fallback;
  }

  // The keys written in [section], in file order (merged).
  std::vector<std::string> KeysOf(std::string_view section) const {
    std::vector<std::string> keys;
    auto found = tree_.find(std::string(section));
    if (found == tree_.not_found()) return keys;
    for (const auto& [key, value] : found->second) keys.push_back(key);
    return keys;
  }

  bool Has(std::string_view section, std::string_view key) const {
    return tree_
        .get_optional<std::string>(pt::ptree::path_type(fmt::format("{}|{}", section, key), '|'))
        .has_value();
  }

  template <typename Number>
  Result<Number> GetNumber(std::string_view section, std::string_view key, Number fallback) const {
    std::string text = Get(section, key);
    if (text.empty()) return fallback;
    auto value = ParseNumber<Number>(text);
    if (!value) return Bad(section, key, fmt::format("'{}' is not a number", text));
    return *value;
  }

  // true/false, as oslo.config writes them (also yes/no, on/off, 1/0).
  Result<bool> GetBool(std::string_view section, std::string_view key, bool fallback) const {
    std::string text = boost::to_lower_copy(Get(section, key));
    if (text.empty()) return fallback;
    if (text == "true" || text == "yes" || text == "on" || text == "1") return true;
    if (text == "false" || text == "no" || text == "off" || text == "0") return false;
    return Bad(section, key, fmt::format("'{}' is not true or false", text));
  }

 private:
  const std::vector<ConfigText>& files_;
  const pt::ptree& tree_;
};

// ---- The table of keys ----
//
// Each key: its section ("" for a store's own), its name, and the rule
// that reads it into its destination. A key left out keeps the value the
// destination starts with: every default is written once, in config.h.

template <typename Target>
using KeyRule = std::function<Status(const ConfigReader&, std::string_view section,
                                     std::string_view key, Target&)>;

template <typename Target>
struct Key {
  std::string_view section;
  std::string_view key;
  KeyRule<Target> read;
};

// A number in [low, high], else `rule` is the message.
template <typename Target, typename Number>
KeyRule<Target> NumberIn(Number Target::*field, Number low, Number high, std::string rule) {
  return [=](const ConfigReader& reader, std::string_view section, std::string_view key,
             Target& target) -> Status {
    auto value = reader.GetNumber<Number>(section, key, target.*field);
    if (!value.ok()) return value.error();
    if (*value < low || *value > high) return reader.Bad(section, key, rule);
    target.*field = *value;
    return Ok();
  };
}

template <typename Target>
KeyRule<Target> Flag(bool Target::*field) {
  return [=](const ConfigReader& reader, std::string_view section, std::string_view key,
             Target& target) -> Status {
    auto value = reader.GetBool(section, key, target.*field);
    if (!value.ok()) return value.error();
    target.*field = *value;
    return Ok();
  };
}

// Text; when `allowed` is given, empty or one of it.
template <typename Target>
KeyRule<Target> Text(std::string Target::*field, std::vector<std::string> allowed = {}) {
  return [=](const ConfigReader& reader, std::string_view section, std::string_view key,
             Target& target) -> Status {
    std::string value = reader.Get(section, key, target.*field);
    if (!allowed.empty() && !value.empty() &&
        std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      return reader.Bad(section, key,
                        fmt::format("'{}' is not supported ({})", value, fmt::join(allowed, ", ")));
    }
    target.*field = value;
    return Ok();
  };
}

// A comma list of numbers in [low, high]; present, even empty, it replaces
// the default list.
template <typename Target, typename Number>
KeyRule<Target> NumberList(std::vector<Number> Target::*field, Number low, Number high,
                           std::string_view what) {
  return [=](const ConfigReader& reader, std::string_view section, std::string_view key,
             Target& target) -> Status {
    if (!reader.Has(section, key)) return Ok();
    std::vector<Number> values;
    for (const auto& item : SplitCommaList(reader.Get(section, key))) {
      auto value = ParseNumber<Number>(item);
      if (!value || *value < low || *value > high) {
        return reader.Bad(section, key, fmt::format("'{}' is not {}", item, what));
      }
      values.push_back(*value);
    }
    target.*field = std::move(values);
    return Ok();
  };
}

// A comma list of names (lower case); present, even empty, it replaces the
// default list.
template <typename Target>
KeyRule<Target> NameList(std::vector<std::string> Target::*field) {
  return [=](const ConfigReader& reader, std::string_view section, std::string_view key,
             Target& target) -> Status {
    if (reader.Has(section, key)) {
      target.*field = SplitCommaList(boost::to_lower_copy(reader.Get(section, key)));
    }
    return Ok();
  };
}

// A rule on a part of the destination (`part` picks it).
template <typename Target, typename Part>
KeyRule<Target> Within(Part Target::*part, KeyRule<Part> rule) {
  return [=](const ConfigReader& reader, std::string_view section, std::string_view key,
             Target& target) { return rule(reader, section, key, target.*part); };
}

template <typename Target>
Status ReadKeys(const ConfigReader& reader, const std::vector<Key<Target>>& keys,
                std::string_view own_section, Target& target) {
  for (const auto& key : keys) {
    std::string_view section = key.section.empty() ? own_section : key.section;
    IMAGEFS_RETURN_IF_ERROR(key.read(reader, section, key.key, target));
  }
  return Ok();
}

// Every key of [section] must be one of `table` or `more`: a misspelt key
// of imagefs's own sections ([imagefs], [catalog]) would otherwise be
// ignored without a word. Glance's sections are not checked: a
// glance-api.conf holds many keys imagefs has no use for.
template <typename Target>
Status CheckKnownKeys(const ConfigReader& reader, std::string_view section,
                      const std::vector<Key<Target>>& table,
                      std::initializer_list<std::string_view> more) {
  for (const auto& key : reader.KeysOf(section)) {
    bool known = std::find(more.begin(), more.end(), key) != more.end() ||
                 std::any_of(table.begin(), table.end(), [&](const Key<Target>& entry) {
                   return entry.key == key && (entry.section.empty() || entry.section == section);
                 });
    if (!known) return reader.Bad(section, key, fmt::format("is not a key of [{}]", section));
  }
  return Ok();
}

}  // namespace imagefs::config_reading

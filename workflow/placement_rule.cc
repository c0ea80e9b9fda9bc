#include "workflow/placement_rule.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cerrno>

#include "common/comma_list.h"

namespace imagefs {
namespace {

bool Contains(const std::vector<std::string>& items, std::string_view item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

bool IsStoreName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

}  // namespace

std::string PlacementRule::Format() const {
  std::vector<std::string> items;
  if (all) items.emplace_back("all");
  for (const auto& store : stores) items.push_back(store);
  for (const auto& store : excluded) items.push_back("-" + store);
  return fmt::format("{}", fmt::join(items, ","));
}

std::vector<std::string> PlacementRule::Stores(const std::vector<std::string>& configured,
                                               std::string_view central) const {
  std::vector<std::string> placed;
  for (const auto& store : configured) {
    if (Places(store, central)) placed.push_back(store);
  }
  return placed;
}

bool PlacementRule::Places(std::string_view store, std::string_view central) const {
  if (store == central) return true;
  return all ? !Contains(excluded, store) : Contains(stores, store);
}

PlacementRule PlacementRule::Without(std::string_view store) const {
  PlacementRule rule = *this;
  if (all) {
    if (!Contains(rule.excluded, store)) rule.excluded.emplace_back(store);
  } else {
    std::erase(rule.stores, std::string(store));
  }
  return rule;
}

namespace {

Error BadPlacement(std::string_view text, std::string_view why) {
  return Error{EINVAL, fmt::format("placement '{}': {} (expected all, all,-<store>..., or "
                                   "<store>,...)",
                                   text, why)};
}

}  // namespace

Status PlacementRule::CheckStores(const std::vector<std::string>& configured) const {
  for (const auto* names : {&stores, &excluded}) {
    for (const auto& name : *names) {
      if (!Contains(configured, name)) {
        return BadPlacement(Format(), fmt::format("no store {} is configured", name));
      }
    }
  }
  return Ok();
}

Result<PlacementRule> ParsePlacement(std::string_view text,
                                     const std::vector<std::string>& configured) {
  PlacementRule rule;
  std::vector<std::string> items = SplitCommaList(text);
  auto bad = [&](std::string_view why) { return BadPlacement(text, why); };
  for (const auto& item : items) {
    if (item == "all") {
      if (rule.all || !rule.stores.empty()) return bad("'all' with other stores named");
      rule.all = true;
      continue;
    }
    bool exclusion = item.starts_with('-');
    std::string name = exclusion ? item.substr(1) : item;
    if (!IsStoreName(name)) return bad(fmt::format("'{}' is not a store name", item));
    if (exclusion != rule.all) {
      return bad(exclusion ? "'-<store>' without 'all'" : "'all' with other stores named");
    }
    auto& list = exclusion ? rule.excluded : rule.stores;
    if (!Contains(list, name)) list.push_back(name);
  }
  if (!configured.empty()) IMAGEFS_RETURN_IF_ERROR(rule.CheckStores(configured));
  return rule;
}

PlacementRule PlacementOf(const ImageRecord& record, const PlacementRule& fallback) {
  auto property = record.properties.find(std::string(kPlacementProperty));
  if (property == record.properties.end()) return fallback;
  auto rule = ParsePlacement(property->second);
  return rule.ok() ? *rule : PlacementRule{};
}

bool TakeOutOfPlacement(ImageRecord& record, std::string_view store, std::string_view central,
                        const PlacementRule& fallback) {
  PlacementRule rule = PlacementOf(record, fallback);
  if (store == central || !rule.Places(store, central)) return false;
  record.properties[std::string(kPlacementProperty)] = rule.Without(store).Format();
  return true;
}

}  // namespace imagefs

// PlacementRule: where an image belongs, as its property
// `imagefs_placement` (the xattr user.imagefs.placement) or the mount's
// `[imagefs] placement` default says:
//
//   ""                 nowhere besides where it is copied by hand
//   "all"              every configured store (a store added to the
//                      configuration later too)
//   "all,-dcn1"        every configured store but dcn1
//   "central,dcn0"     those stores
//
// Central is always part of it: a copy always stays there.
//
// Thread safety: pure values and functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/image_record.h"
#include "common/result.h"

namespace imagefs {

// The image property that holds an image's own rule (Glance shows it as
// any other property).
constexpr std::string_view kPlacementProperty = "imagefs_placement";

struct PlacementRule {
  bool all = false;
  std::vector<std::string> stores;    // named (all: none)
  std::vector<std::string> excluded;  // all: taken out ("-dcn1")

  bool operator==(const PlacementRule&) const = default;
  // Its text, as ParsePlacement reads it.
  std::string Format() const;
  // The configured stores the image belongs in (in configured order);
  // `central` always.
  std::vector<std::string> Stores(const std::vector<std::string>& configured,
                                  std::string_view central) const;
  // Whether `store` is in it (central always is).
  bool Places(std::string_view store, std::string_view central) const;
  // The rule once `store` is taken out of it (`rm` of a placed copy).
  PlacementRule Without(std::string_view store) const;
  // EINVAL when it names a store not in `configured`.
  Status CheckStores(const std::vector<std::string>& configured) const;
};

// EINVAL for a malformed rule, or one naming a store not in `configured`
// (empty `configured`: any name).
Result<PlacementRule> ParsePlacement(std::string_view text,
                                     const std::vector<std::string>& configured = {});

// The rule of `record`: its property, else `fallback` (the mount's
// default). A property set by hand in the catalog that does not parse
// places the image nowhere more until it is fixed.
PlacementRule PlacementOf(const ImageRecord& record, const PlacementRule& fallback);

// `rm` of the copy in `store`: takes `store` out of the record's rule
// (written into its property) when the rule places it there; whether it
// did. Central is never taken out.
bool TakeOutOfPlacement(ImageRecord& record, std::string_view store, std::string_view central,
                        const PlacementRule& fallback);

}  // namespace imagefs

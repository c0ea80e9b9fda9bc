// The catalog conformance suite on the embedded backend (SQLite).
#include "tests/conformance/catalog_conformance.h"

namespace imagefs {
namespace {

INSTANTIATE_TEST_SUITE_P(Backends, CatalogConformanceTest,
                         ::testing::Values(CatalogBackend{"sqlite",
                                                          [](const std::string& directory) {
                                                            return OpenSqliteCatalog(directory +
                                                                                     "/catalog.db");
                                                          }}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace imagefs

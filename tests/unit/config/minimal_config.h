// The smallest valid configuration the config tests build on: one user, one database.
#pragma once

namespace pgsidecar::config::testing {

constexpr const char* kMinimalConfig = R"toml(
[[users]]
name = "app"
password = "secret"

[[databases]]
name = "app"
primary = "postgres://db:5432/app"
)toml";

}  // namespace pgsidecar::config::testing

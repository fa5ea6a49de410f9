// The version of this build, for --version and user agents: never a literal in
// the source (app/CMakeLists.txt writes it into the build tree).
#pragma once

#include <string>
#include <string_view>

namespace plng::app {

// CMake's PROJECT_VERSION, e.g. "0.1.0".
std::string_view projectVersion();

// `git describe --always --dirty --tags` of the source tree at build time, e.g.
// "835f069-dirty"; empty when built outside git.
std::string_view sourceRevision();

// "0.1.0 (835f069-dirty)", or "0.1.0" without a revision.
std::string versionText();

}  // namespace plng::app

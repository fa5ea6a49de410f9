#include "app/version.h"

#include "app/build_version.h"

namespace plng::app {

std::string_view projectVersion() { return PLNG_PROJECT_VERSION; }

std::string_view sourceRevision() { return PLNG_SOURCE_REVISION; }

std::string versionText() {
  std::string text(projectVersion());
  if (!sourceRevision().empty()) text += " (" + std::string(sourceRevision()) + ")";
  return text;
}

}  // namespace plng::app

// Reference images for node tests, built once per build tree.
#pragma once

#include <filesystem>

namespace plng::test {

// Runs deploy/images/build-image.sh busybox <dir> (a no-op when <dir> already
// holds the current busybox image; serialised with a lock file beside <dir>)
// and returns <dir>. Throws std::runtime_error when the build fails.
std::filesystem::path busyboxImage(const std::filesystem::path& build_script,
                                   const std::filesystem::path& dir);

}  // namespace plng::test

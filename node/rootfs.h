// A sliver's root filesystem: an overlay of the shared reference image
// (read-only lower layer) and the sliver's own upper layer.
//
// The image on disk is owned by host root (uid 0..65535 as an ordinary Debian
// tree). A sliver's root is host uid ids.first, so the image is attached to the
// overlay through an idmapped mount: the sliver's user namespace maps on-disk
// uid n to host uid ids.first + n, and root inside sees its image as its own —
// without one chowned copy of the image per slice. Only the upper layer holds
// files of the sliver, owned by ids.first + n on the host; its root directory
// must be owned by ids.first, or / would show as nobody inside and every write
// at the top level fail with EACCES.
//
// The overlay is built *detached* (new mount API) and never attached in the
// host's mount namespace: the sliver's first process moves it into its own
// mount namespace (launch.h). It lives exactly as long as that namespace, so
// a sliverd restart finds nothing to rebuild and a crashed sliverd leaves no
// mounts behind on the host.
#pragma once

#include <filesystem>
#include <string>

#include "base/error.h"
#include "base/fd.h"
#include "node/idrange.h"
#include "node/storage.h"

namespace plng::node {

// A detached clone of `dir` (recursive), idmapped through the user namespace
// `userns_fd`, and read-only. Throws SysError.
base::UniqueFd openIdmappedTree(const std::filesystem::path& dir, int userns_fd);

// The sliver's overlay as a detached mount: lower = `image` idmapped through
// `userns_fd` (a user namespace whose maps are already written), upper/work =
// `dirs`. Kernels before 6.8 cannot take the detached lower layer by fd: there
// it is attached at the empty directory `staging` in the caller's mount
// namespace just while the overlay is made. Throws SysError naming the step.
base::UniqueFd makeSliverOverlay(const std::filesystem::path& image, const SliverDirs& dirs,
                                 int userns_fd, const std::filesystem::path& staging = {});

// Makes the upper layer's root directory belong to the range's root (uid and
// gid ids.first), with the mode of the image's root, so that / is root's inside.
void chownUpperRoot(const std::filesystem::path& upper, const std::filesystem::path& image,
                    const IdRange& ids);

// Writes `content` to `relative` (e.g. "etc/plng/initscript") inside the
// upper layer, as the sliver's root would have: directories that do not exist in
// the upper layer yet are created with the owner (shifted into the range) and
// mode of the image's directory at the same place, so the overlay still shows
// them as they were. Owned by the sliver's root; `mode` for the file.
void writeUpperFile(const std::filesystem::path& upper, const std::filesystem::path& image,
                    const IdRange& ids, const std::string& relative, const std::string& content,
                    mode_t mode);

// Removes `relative` from the upper layer if it is there (never following a
// symlink on the way); the image's file at that place, if any, shows again.
void removeUpperFile(const std::filesystem::path& upper, const std::string& relative);

}  // namespace plng::node

// The one rule for a sliver's name, which is its slice's name.
//
// A sliver's name becomes a cgroup directory, a directory under the node's
// state and storage (and an overlay mount option), the sliver's hostname and
// the host account its slice logs in as. The strictest of these is the host
// account (useradd's user names): 1..32 characters of a-z, 0-9, '_' and '-',
// starting with a letter or '_'. Every other use accepts such a name (a
// directory or cgroup name takes 255 bytes without '/', a hostname 63, the
// overlay's option parser nothing of ",:="), and so do all of PLC's slice
// names (<login_base>_<name>, lowercase, at most 32 characters).
#pragma once

#include <cstddef>
#include <string_view>

namespace plng::node {

inline constexpr std::size_t kMaxSliverName = 32;

bool isValidSliverName(std::string_view name);

// Throws TagError (node/resources.h) naming the rule unless isValidSliverName.
void checkSliverName(std::string_view name);

}  // namespace plng::node

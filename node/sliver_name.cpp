#include "node/sliver_name.h"

#include <algorithm>
#include <string>

#include "node/resources.h"

namespace plng::node {

bool isValidSliverName(std::string_view name) {
  if (name.empty() || name.size() > kMaxSliverName) return false;
  if (!((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

void checkSliverName(std::string_view name) {
  if (!isValidSliverName(name)) {
    throw TagError("sliver name " + quotedTagValue(name) + ": must be 1.." +
                   std::to_string(kMaxSliverName) +
                   " characters of a-z, 0-9, '_' and '-', starting with a letter or '_'");
  }
}

}  // namespace plng::node

// Slice tags -> SliverConfig (runtime.h).
#include "node/runtime.h"

#include <algorithm>

#include "node/security.h"

namespace plng::node {
namespace {

// 2^50 bytes (1 PiB) bounds typos; 0 means no quota.
constexpr std::uint64_t kMaxDiskQuota = 1ull << 50;
// Below this not even a busybox image's first copy-up fits.
constexpr std::uint64_t kMinDiskQuota = 1ull << 20;

}  // namespace

// A reference image name is a directory under the node's images: no path
// separators, nothing hidden.
void validateVref(const std::string& vref) {
  bool ok = !vref.empty() && vref.size() <= 200 && vref.front() != '.' && vref.front() != '-' &&
            std::all_of(vref.begin(), vref.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '.' || c == '-';
            });
  if (!ok) {
    throw TagError("tag vref: value " + quotedTagValue(vref) +
                   " is not an image name ([A-Za-z0-9_.-], not starting with '.' or '-')");
  }
}

SliverConfig sliverConfigFromTags(const std::string& slice, std::uint32_t xid,
                                  const std::map<std::string, std::string>& tags) {
  SliverConfig config;
  config.slice = slice;
  config.xid = xid;
  config.resources = resourcesFromTags(tags);
  if (auto it = tags.find("disk_quota"); it != tags.end()) {
    config.disk_quota_bytes =
        numericTag("disk_quota", it->second, kMinDiskQuota, kMaxDiskQuota, /*zero_allowed=*/true);
  }
  if (auto it = tags.find("vref"); it != tags.end() && !it->second.empty()) {
    validateVref(it->second);
    config.vref = it->second;
  }
  if (auto it = tags.find("initscript"); it != tags.end()) config.initscript = it->second;
  if (auto it = tags.find("capabilities"); it != tags.end()) {
    capabilityPlanFromTag(it->second);  // throws TagError naming a bad capability
    config.capabilities = it->second;
  }
  return config;
}

}  // namespace plng::node

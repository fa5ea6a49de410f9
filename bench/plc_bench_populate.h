// Fills a fresh PLC through its public API, as operators and PIs would: sites,
// a PI and users per site (enabled, with roles and SSH keys), nodes (some tagged
// into an "alpha" node group), slices with members, nodes and tags; then logs in
// every slice member so the workloads can call as them.
#pragma once

#include <grpcpp/channel.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/ticket.pb.h"

namespace plng::bench {

struct PopulationSpec {
  int sites = 100;
  int slices = 1000;
  int nodes = 1000;
  int nodesPerSlice = 10;
  int membersPerSlice = 2;
  int threads = 4;  // concurrent API callers while populating
  std::uint64_t seed = 1;
};

// What the server should answer about a slice.
struct BenchSlice {
  std::string name;
  std::vector<std::string> members;  // emails
  std::vector<std::string> nodes;    // hostnames
};

struct Population {
  std::vector<BenchSlice> slices;
  std::unordered_map<std::string, std::string> tokens;  // member email -> session token
  int keysPerPerson = 0;
  int persons = 0;
  std::uint64_t apiCalls = 0;
  double seconds = 0;
  std::vector<planetlab::v1::PlcPublicKey> plcKeys;  // from GetPlcKeys, to verify tickets
};

// Populates through `channels` (one per plcd replica; callers are spread over them)
// as the admin holding `adminToken`. Prints progress on stderr. Throws
// std::runtime_error naming the call that failed, or Interrupted.
Population populate(const PopulationSpec& spec,
                    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                    const std::string& adminToken);

}  // namespace plng::bench

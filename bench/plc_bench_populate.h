// Fills a fresh PLC through its public API, as operators and PIs would: sites,
// a PI and users per site (enabled, with roles and SSH keys), nodes (some tagged
// into an "alpha" node group), slices with members, nodes and tags; then logs in
// every slice member so the workloads can call as them.
#pragma once

#include <grpcpp/channel.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "bench/plc_bench_workload.h"
#include "proto/ticket.pb.h"
#include "tests/support/plc_client.h"

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

// The pieces populate() is built from, for benchmarks that populate differently
// (fanout_bench).

// `value` in decimal, with leading zeros to `width` digits.
std::string zeroPadded(int value, int width);
// Digits of the largest index below `count`, so names sort in order.
int digitsFor(int count);

// Runs body(i, admin) for i in [0, count) on `threads` threads spread over the
// admins (one per replica); the first failure stops the others and is rethrown.
void parallelFor(std::size_t count, int threads, const std::vector<plng::test::PlcClient>& admins,
                 const std::function<void(std::size_t, const plng::test::PlcClient&)>& body);

// A unary call as `client`; throws std::runtime_error naming `what` unless it
// succeeds (or, with alreadyExistsIsFine, answers ALREADY_EXISTS). A failure
// that follows a stop request throws Interrupted instead.
template <class Stub, class Request, class Response>
Response callOrThrow(const plng::test::PlcClient& client,
                     grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                     const std::type_identity_t<Request>& request, const std::string& what,
                     bool alreadyExistsIsFine = false) {
  Response response;
  const grpc::Status status = client.call(method, request, &response);
  if (!status.ok() &&
      !(alreadyExistsIsFine && status.error_code() == grpc::StatusCode::ALREADY_EXISTS)) {
    throwIfStopRequested();
    throw std::runtime_error(what + ": " + plng::test::describeStatus(status));
  }
  return response;
}

}  // namespace plng::bench

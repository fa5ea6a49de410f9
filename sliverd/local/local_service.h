// LocalService: the handlers of the local API (service LocalNode in
// proto/node.proto), for callers identified by the kernel (peer_slice.h).
//
// Who may do what:
//   a sliver          reads and starts/stops/restarts its own sliver; "" names it
//   host root         (the node operator) reads and acts on every sliver
//   other host users  read every sliver, act on none
// A slice may also read and act on other slices' slivers when its `proper` tag
// on this node grants sliver control. Grammar of `proper`: privileges separated
// by commas or white space; this service reads only
//   sliver_control:<slice>   the sliver of <slice>
//   sliver_control:*         every sliver on the node
// (other privileges, for other privileged operations, are ignored here).
//
// What a SliverInfo says: `rspec` is what the slice was granted (tags/ticket);
// `effective` is the grant with bound rcaps applied (rcaps.h withBound), and for
// the dimensions the runtime enforces (cpu, memory, tasks, disk) what the
// runtime last applied, so a change not yet reconciled shows as a difference.
// state: "running"/"stopped" from the runtime; "creating" when granted but not
// yet created; "deleting" when it exists but is no longer granted; "failed"
// when the reconciler's last pass over it failed (`message` says why). Else
// `message` says who stopped a held sliver, or what was applied other than
// granted (a disk quota clamped to the node's ceiling).
#pragma once

#include <grpcpp/support/status.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/fd.h"
#include "node/paths.h"
#include "node/runtime.h"
#include "proto/node.pb.h"
#include "sliverd/core/rcaps.h"
#include "sliverd/core/reconciler.h"
#include "sliverd/local/peer_slice.h"

namespace plng::sliverd {

// What the node's desired state grants a slice (the daemon fills it from PLC
// sync and redeemed tickets).
struct GrantedSliver {
  std::uint32_t xid = 0;
  ResourceSpec rspec;                       // as granted, before rcaps
  std::string source;                       // "plc" | "ticket" | "plc+ticket"
  std::int64_t expires_at = 0;              // unix seconds, 0 = none
  std::map<std::string, std::string> tags;  // effective tags on this node
  node::ProperPrivileges proper;            // from the proper tag (none when invalid)
};

// The daemon's desired state, read-only. Called from the local API's handler
// threads (LocalApiServer's pool), concurrently: implementations must be
// thread-safe.
class GrantedSlivers {
 public:
  virtual ~GrantedSlivers() = default;
  virtual std::optional<GrantedSliver> find(const std::string& slice) const = 0;
  virtual std::vector<std::string> slices() const = 0;
};

// GrantedSlivers from two functions (e.g. lambdas over the daemon's DesiredState).
class GrantedSliversFrom : public GrantedSlivers {
 public:
  using Find = std::function<std::optional<GrantedSliver>(const std::string& slice)>;
  using Slices = std::function<std::vector<std::string>()>;
  GrantedSliversFrom(Find find, Slices slices)
      : find_(std::move(find)), slices_(std::move(slices)) {}
  std::optional<GrantedSliver> find(const std::string& slice) const override {
    return find_(slice);
  }
  std::vector<std::string> slices() const override { return slices_(); }

 private:
  Find find_;
  Slices slices_;
};

// The granted ResourceSpec of a sliver: the enforced dimensions from its
// config, the network rates (bit/s) from its network tags.
ResourceSpec grantedSpec(const node::SliverConfig& config, const node::NetworkLimits& network);

// Handlers run concurrently on LocalApiServer's pool threads: `runtime` must
// tolerate calls from several threads (and alongside the reconciler).
class LocalService {
 public:
  // The reconciler's word on a sliver (Daemon::reports, Reconciler::report).
  using Reports = std::function<SliverReport(const std::string& slice)>;
  // The node's port holdings (NetworkIsolation::ports): of the slice with this
  // xid, or of every owner (nullopt). Empty: network isolation is not running.
  using PortHoldings = std::function<std::vector<planetlab::v1::PortHolding>(
      std::optional<std::uint32_t> xid, const std::map<std::uint32_t, std::string>& names)>;
  // What the network programs refused a slice (NetworkIsolation::counters), by reason.
  using Refusals = std::function<std::map<std::string, std::uint64_t>(std::uint32_t xid)>;
  // A slice's daily byte budget (DailyBudgets), by slice name; nullopt when
  // budgets are not kept for it yet. Empty: network isolation is not running.
  using NetUsages = std::function<std::optional<planetlab::v1::NetUsage>(const std::string& slice)>;

  // A packet socket (AF_PACKET, SOCK_DGRAM, every protocol) that receives only
  // the packets of the slice `xid`, on `interface` ("" = every interface):
  // filtered and locked before it is bound (vnet-bpf/capture_filter.h). Throws
  // SysError (ENODEV: no such interface) or another exception (no isolation).
  using CaptureSockets =
      std::function<base::UniqueFd(std::uint32_t xid, const std::string& interface)>;
  // What runs on a connection once its answer is written, owning it from then
  // on (LocalApiServer hands it over): the stream of a capture.
  using Stream = std::function<void(base::UniqueFd connection)>;
  // Captures running at once on the node, every caller's together.
  static constexpr int kMaxCaptures = 8;

  // `paths`: where a stop records the sliver as held, so the reconciler leaves it
  // stopped until a start (see holdSliver). `reports`: empty = none (tests).
  LocalService(node::SliverRuntime& runtime, const GrantedSlivers& granted, const RcapTable& rcaps,
               node::NodePaths paths,
               std::chrono::milliseconds stop_grace = std::chrono::seconds(10),
               Reports reports = {}, PortHoldings ports = {}, Refusals refusals = {},
               CaptureSockets captures = {}, NetUsages net_usage = {});

  grpc::Status listSlivers(const Peer& peer, const planetlab::v1::ListSliversRequest& request,
                           planetlab::v1::ListSliversResponse* reply);
  grpc::Status getSliver(const Peer& peer, const planetlab::v1::GetSliverRequest& request,
                         planetlab::v1::SliverInfo* reply);
  grpc::Status startSliver(const Peer& peer, const planetlab::v1::SliverActionRequest& request,
                           planetlab::v1::SliverInfo* reply);
  grpc::Status stopSliver(const Peer& peer, const planetlab::v1::SliverActionRequest& request,
                          planetlab::v1::SliverInfo* reply);
  grpc::Status restartSliver(const Peer& peer, const planetlab::v1::SliverActionRequest& request,
                             planetlab::v1::SliverInfo* reply);
  // The ports a slice holds and has reserved (slice_name as for GetSliver), or,
  // for the node's root only, "*": every owner, the node's own ports included.
  grpc::Status getPorts(const Peer& peer, const planetlab::v1::GetPortsRequest& request,
                        planetlab::v1::GetPortsResponse* reply);
  // The daily byte budget of a slice (slice_name as for GetSliver): usage,
  // window, the ceil in force.
  grpc::Status getNetUsage(const Peer& peer, const planetlab::v1::GetNetUsageRequest& request,
                           planetlab::v1::NetUsage* reply);

  // `sliverctl capture`: the calling sliver's own packets, streamed as pcap on
  // the connection after the answer (*stream set; docs/vnet.md, "Packet
  // capture"). Slivers only; bounded in packets and time (CaptureLimits).
  grpc::Status capture(const Peer& peer, const planetlab::v1::CaptureRequest& request,
                       planetlab::v1::CaptureResponse* reply, Stream* stream);

  // Dispatches one decoded request by method name (LocalApiServer); returns
  // the encoded response body. `stream`: set when the connection is to be
  // handed over once the answer is written (Capture).
  std::string handle(const Peer& peer, const std::string& method, const std::string& payload,
                     Stream* stream = nullptr);

  // The sliver of `slice` as the API shows it; nullopt when neither granted nor
  // existing. Also RcapService's SliverLookup.
  std::optional<planetlab::v1::SliverInfo> describe(const std::string& slice);

 private:
  enum class Access { kRead, kAct };
  // Resolves "" to the caller's own slice and checks access; on refusal returns
  // the status to send.
  std::optional<grpc::Status> authorize(const Peer& peer, const std::string& requested,
                                        Access access, std::string& target) const;
  bool mayControl(const std::string& slice, const std::string& target) const;
  enum class Action { kStart, kStop, kRestart };
  grpc::Status act(const Peer& peer, const std::string& requested, Action action,
                   planetlab::v1::SliverInfo* reply);

  node::SliverRuntime& runtime_;
  const GrantedSlivers& granted_;
  const RcapTable& rcaps_;
  node::NodePaths paths_;
  std::chrono::milliseconds stop_grace_;
  Reports reports_;
  PortHoldings ports_;
  Refusals refusals_;
  CaptureSockets captures_;
  std::shared_ptr<std::atomic<int>> active_captures_ = std::make_shared<std::atomic<int>>(0);
  NetUsages net_usage_;
};

}  // namespace plng::sliverd

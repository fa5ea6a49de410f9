// What this node should run: the merge of PLC's latest NodeState and the tickets
// redeemed here.
//
//   <state_dir>/plc-state            the last NodeState from PLC (serialised protobuf,
//                                    with its epoch and version), loaded at start so
//                                    the last known state is enforced while PLC is
//                                    unreachable
//   <state_dir>/tickets/<ticket_id>  each redeemed SignedTicket (serialised), kept
//                                    until a day after it expires so a replay is
//                                    recognised
//
// Thread-safe: the PLC sync thread, gRPC handlers and the reconciler share one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "node/paths.h"
#include "node/runtime.h"
#include "proto/plc.pb.h"
#include "proto/ticket.h"
#include "proto/ticket.pb.h"

namespace plng::sliverd {

// What PLC says about a slice for outside administrators (SliverSpec.description,
// url, contacts): shown on the node's audit page (docs/vnet.md, "Flow auditing").
// Empty for a slice the node knows only from tickets.
struct SliceContact {
  std::string name;
  std::string email;
  std::string role;  // "pi"
  bool operator==(const SliceContact&) const = default;
};
struct SliceAbout {
  std::string description;
  std::string url;
  std::vector<SliceContact> contacts;
  bool operator==(const SliceAbout&) const = default;
};

struct DesiredSliver {
  plng::node::SliverConfig config;
  std::int64_t expires_at = 0;          // unix seconds; 0 = no end
  std::vector<std::string> keys;        // members' OpenSSH public key lines, sorted, unique
  std::string source;                   // "plc", "ticket" or "plc+ticket"
  std::string invalid;                  // why the slice's tags cannot be applied; empty = they can
  plng::node::NetworkLimits network;    // net_* tags (vnet-bpf's part)
  plng::node::NetworkRights rights;     // ports, net_max_ports, raw sockets (vnet-bpf)
  plng::node::ProperPrivileges proper;  // the proper tag
  std::map<std::string, std::string> tags;  // effective tags on this node
  SliceAbout about;                         // PLC's description, URL and PIs
  bool operator==(const DesiredSliver&) const = default;

  bool expired(std::int64_t now) const { return expires_at != 0 && expires_at <= now; }
};

using DesiredMap = std::map<std::string, DesiredSliver>;

// How far this node's copy of PLC's state goes: the epoch of PLC's history it
// belongs to and its version there (NodeState.epoch and .version).
struct PlcStatePosition {
  std::string epoch;
  std::int64_t version = 0;
};

class DesiredState {
 public:
  // How long a ticket's record outlives its not_after.
  static constexpr std::int64_t kTicketRetentionS = 24 * 3600;

  DesiredState(plng::node::NodePaths paths, std::string hostname);

  // Reads the persisted PLC state and tickets. A damaged file is skipped and
  // named in the returned warnings (the daemon logs them).
  std::vector<std::string> load();

  // Replaces PLC's part (persisting it first) and PLC's trusted keys. Returns
  // false, changing nothing, when `state` is of the current state's epoch and not
  // newer. A state of another epoch is always taken: PLC's history was cut short
  // or replaced (its database restarted, failed over or was restored), and its
  // versions may have gone back below ours.
  bool setPlcState(const planetlab::v1::NodeState& state);
  std::int64_t plcVersion() const;
  PlcStatePosition plcPosition() const;
  // PLC's keys from the latest NodeState, for ticket verification.
  std::shared_ptr<const plng::ticket::TrustedKeys> trustedKeys() const;

  // Records a verified ticket (persisting it first). Returns false when a ticket
  // with this id was redeemed before (nothing changes). Throws
  // std::invalid_argument when this node is not among body.nodes or the ticket id
  // is not a plain hex/alphanumeric id.
  bool addTicket(const planetlab::v1::SignedTicket& ticket, const planetlab::v1::TicketBody& body);
  bool hasTicket(const std::string& ticket_id) const;
  // Forgets tickets that expired more than kTicketRetentionS before `now`.
  void pruneTickets(std::int64_t now);

  // The merged desired state at `now`. A slice whose every source has expired
  // stays in the map (expired(now) true) so the reconciler deletes its sliver.
  DesiredMap desired(std::int64_t now) const;
  std::optional<DesiredSliver> lookup(const std::string& slice, std::int64_t now) const;

  // PLC's destination blacklist (NodeState.blacklist), as prefixes.
  std::vector<std::string> blacklist() const;
  // The tags PLC has set on this node (NodeState.node_tags), e.g. net_node_cap.
  std::map<std::string, std::string> nodeTags() const;
  // Bumped by every change; lets callers notice one cheaply.
  std::uint64_t generation() const;
  const std::string& hostname() const { return hostname_; }
  const plng::node::NodePaths& paths() const { return paths_; }

 private:
  struct TicketEntry {
    planetlab::v1::TicketBody body;
    DesiredSliver sliver;
  };
  TicketEntry ticketEntry(const planetlab::v1::TicketBody& body) const;
  void setPlcStateLocked(const planetlab::v1::NodeState& state);

  plng::node::NodePaths paths_;
  std::string hostname_;
  mutable std::mutex mutex_;
  planetlab::v1::NodeState plc_state_;
  std::map<std::string, DesiredSliver> plc_slivers_;
  std::shared_ptr<const plng::ticket::TrustedKeys> trusted_keys_;
  std::map<std::string, TicketEntry> tickets_;  // by ticket id
  std::uint64_t generation_ = 0;
};

// The desired sliver for one PLC SliverSpec or one ticket grant (tags → config;
// a bad tag leaves `invalid` set).
DesiredSliver desiredFromTags(const std::string& slice, std::uint32_t xid,
                              const std::map<std::string, std::string>& tags,
                              std::vector<std::string> keys, std::int64_t expires_at,
                              std::string source);

// Writes the slice members' keys (one OpenSSH line each) to
// NodePaths::authorizedKeys(slice), which sshd's AuthorizedKeysCommand reads.
// Writes (writeSliceAuthorizedKeys) only when the content differs.
void writeAuthorizedKeys(const plng::node::NodePaths& paths, const std::string& slice,
                         const std::vector<std::string>& keys);

}  // namespace plng::sliverd

// How each PLC message is shown to people: its list-table columns and its
// detail lines (JSON output needs no view).
#pragma once

#include <string>
#include <string_view>

#include "cli/output.h"
#include "proto/plc.pb.h"
#include "proto/ticket.pb.h"

namespace plcctl {

namespace v1 = planetlab::v1;

View<v1::Site> siteView();
View<v1::Organization> organizationView();
View<v1::Person> personView();
View<v1::Key> keyView();
View<v1::Node> nodeView();
View<v1::NodeGroup> nodeGroupView();
View<v1::TagType> tagTypeView();
View<v1::BlacklistEntry> blacklistView();
View<v1::PlcPublicKey> plcKeyView(std::string signing_key_id);
View<v1::ApiToken> apiTokenView();
View<v1::SliceInfo> sliceView();
View<v1::SliceTag> sliceTagView();
View<v1::Event> eventView();
// A node's status with (at most) one slice's daily byte budget: one table row.
View<v1::NodeStatus> nodeNetView();
// The fleet view: a node's state (up, down, never heard from), last contact and
// health, one row per node. `now` is PLC's clock (GetNodeStatusResponse.now).
View<v1::NodeStatus> nodeFleetView(std::int64_t now);
// One report of a node's history.
View<v1::NodeStatusRecord> nodeReportView(std::int64_t now);
View<v1::SliverFailure> sliverFailureView(std::int64_t now);
// "up", "down", or "never" (neither contact nor report ever).
std::string nodeState(const v1::NodeStatus& node);
View<v1::WhoAmIResponse> whoAmIView(std::string plc_address);
View<v1::TicketBody> ticketBodyView();
View<v1::NodeState> nodeStateView();
View<v1::SliverSpec> sliverView();

// "pi@princeton", or "admin" for a grant without a site.
std::string roleText(const v1::RoleGrant& grant);
// The PLC-style key id of a raw Ed25519 public key, or why there is none.
std::string nodeKeyId(std::string_view raw_public_key);

}  // namespace plcctl

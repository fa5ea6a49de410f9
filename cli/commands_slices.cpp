// Slices and tickets: slice add|list|show|update|renew|delete, slice members
// add|remove, slice nodes add|remove, slice tag set|delete|list, ticket get.
#include <iostream>

#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/values.h"
#include "cli/views.h"
#include "proto/ticket.h"

namespace plcctl {

namespace {

const PositionalSpec kSliceName =
    arg::one("NAME", "the slice's full name, <login_base>_<name> (e.g. princeton_codeen)");

std::vector<FlagSpec> sliceFlags() {
  return {
      flag::value("description", "TEXT", "what the slice is for"),
      flag::value("url", "URL", "the project's web page"),
      flag::value("instantiation", "MODE", "plc-instantiated (default) or delegated"),
      flag::value("max-nodes", "N", "how many nodes the slice may span"),
  };
}

template <class Request>
void applySliceFlags(const ParsedArgs& args, Request& request) {
  if (auto text = args.value("description")) request.set_description(*text);
  if (auto url = args.value("url")) request.set_url(*url);
  if (auto mode = args.value("instantiation")) request.set_instantiation(*mode);
  if (auto n = optionalInt32(args, "max-nodes")) request.set_max_nodes(*n);
}

void sliceAdd(Invocation& inv) {
  v1::AddSliceRequest request;
  request.set_name(inv.args.positional(0));
  applySliceFlags(inv.args, request);
  inv.out.item(inv.plc().call(&v1::Slice::Stub::AddSlice, request), sliceView());
}

void sliceList(Invocation& inv) {
  v1::GetSlicesRequest request;
  for (const std::string& name : inv.args.positionals()) request.add_names(name);
  request.set_login_base(inv.args.valueOr("site", ""));
  request.set_member(inv.args.valueOr("member", ""));
  request.set_hostname(inv.args.valueOr("node", ""));
  request.set_include_deleted(inv.args.has("deleted"));
  inv.out.list(inv.plc().call(&v1::Slice::Stub::GetSlices, request).slices(), sliceView());
}

void sliceShow(Invocation& inv) {
  v1::GetSlicesRequest request;
  request.add_names(inv.args.positional(0));
  request.set_include_deleted(true);
  const auto response = inv.plc().call(&v1::Slice::Stub::GetSlices, request);
  inv.out.item(theOne(response.slices(), "slice", request.names(0)), sliceView());
}

void sliceUpdate(Invocation& inv) {
  v1::UpdateSliceRequest request;
  request.set_name(inv.args.positional(0));
  applySliceFlags(inv.args, request);
  inv.out.item(inv.plc().call(&v1::Slice::Stub::UpdateSlice, request), sliceView());
}

void sliceRenew(Invocation& inv) {
  requireOneOf(inv.args, {"expires", "days"});
  v1::RenewSliceRequest request;
  request.set_name(inv.args.positional(0));
  request.set_expires_at(*expiryFromArgs(inv.args));
  inv.out.item(inv.plc().call(&v1::Slice::Stub::RenewSlice, request), sliceView());
}

void sliceDelete(Invocation& inv) {
  v1::DeleteSliceRequest request;
  request.set_name(inv.args.positional(0));
  const auto response = inv.plc().call(&v1::Slice::Stub::DeleteSlice, request);
  inv.out.done(response, "Deleted slice " + request.name() + ".");
}

v1::SliceMembersRequest sliceMembers(const ParsedArgs& args) {
  v1::SliceMembersRequest request;
  request.set_name(args.positional(0));
  for (std::size_t i = 1; i < args.positionals().size(); ++i) {
    request.add_emails(args.positional(i));
  }
  return request;
}

void membersAdd(Invocation& inv) {
  inv.out.item(inv.plc().call(&v1::Slice::Stub::AddSliceMembers, sliceMembers(inv.args)),
               sliceView());
}

void membersRemove(Invocation& inv) {
  inv.out.item(inv.plc().call(&v1::Slice::Stub::RemoveSliceMembers, sliceMembers(inv.args)),
               sliceView());
}

v1::SliceNodesRequest sliceNodes(const ParsedArgs& args) {
  v1::SliceNodesRequest request;
  request.set_name(args.positional(0));
  for (std::size_t i = 1; i < args.positionals().size(); ++i) {
    request.add_hostnames(args.positional(i));
  }
  return request;
}

void nodesAdd(Invocation& inv) {
  inv.out.item(inv.plc().call(&v1::Slice::Stub::AddSliceNodes, sliceNodes(inv.args)), sliceView());
}

void nodesRemove(Invocation& inv) {
  inv.out.item(inv.plc().call(&v1::Slice::Stub::RemoveSliceNodes, sliceNodes(inv.args)),
               sliceView());
}

void tagSet(Invocation& inv) {
  requireOneOf(inv.args, {"node", "nodegroup"}, /*exactly_one=*/false);
  v1::SetSliceTagRequest request;
  request.set_slice(inv.args.positional(0));
  request.set_tag(inv.args.positional(1));
  request.set_value(inv.args.positional(2));
  request.set_node(inv.args.valueOr("node", ""));
  request.set_nodegroup(inv.args.valueOr("nodegroup", ""));
  inv.out.item(inv.plc().call(&v1::Slice::Stub::SetSliceTag, request), sliceTagView());
}

v1::GetSliceTagsResponse sliceTags(Invocation& inv, const std::string& slice) {
  v1::GetSliceTagsRequest request;
  request.set_slice(slice);
  return inv.plc().call(&v1::Slice::Stub::GetSliceTags, request);
}

// The id of the slice's tag named `tag` in the scope given by --node or
// --nodegroup (the slice itself when neither is given).
std::int64_t findSliceTagId(Invocation& inv, const std::string& slice, const std::string& tag) {
  const std::string node = inv.args.valueOr("node", "");
  const std::string nodegroup = inv.args.valueOr("nodegroup", "");
  const v1::GetSliceTagsResponse tags = sliceTags(inv, slice);
  for (const v1::SliceTag& candidate : tags.tags()) {
    if (candidate.tag() == tag && candidate.node() == node && candidate.nodegroup() == nodegroup) {
      return candidate.slice_tag_id();
    }
  }
  std::string scope = node.empty() ? "" : " on node " + node;
  if (!nodegroup.empty()) scope = " on node group " + nodegroup;
  throw notFound("tag of slice " + slice + scope, tag);
}

void tagDelete(Invocation& inv) {
  requireOneOf(inv.args, {"node", "nodegroup"}, /*exactly_one=*/false);
  const auto tag = inv.args.optionalPositional(1);
  if (!tag && (inv.args.has("node") || inv.args.has("nodegroup"))) {
    throw UsageError("--node and --nodegroup go with SLICE TAG, not with an id");
  }
  v1::DeleteSliceTagRequest request;
  request.set_slice_tag_id(tag ? findSliceTagId(inv, inv.args.positional(0), *tag)
                               : parseInteger(inv.args.positional(0), "SLICE_TAG_ID", 1));
  const auto response = inv.plc().call(&v1::Slice::Stub::DeleteSliceTag, request);
  inv.out.done(response, "Deleted slice tag " + std::to_string(request.slice_tag_id()) + ".");
}

void tagList(Invocation& inv) {
  inv.out.list(sliceTags(inv, inv.args.positional(0)).tags(), sliceTagView());
}

// Checks the ticket's signature and validity with PLC's published keys, as a
// node would; throws LocalError saying why it would be refused.
void verifyTicket(Invocation& inv, const v1::SignedTicket& ticket) {
  const auto keys = inv.plc().call(&v1::Admin::Stub::GetPlcKeys, v1::Empty());
  try {
    const plng::ticket::TrustedKeys trusted(
        std::vector<v1::PlcPublicKey>(keys.keys().begin(), keys.keys().end()));
    plng::ticket::verifyTicket(ticket, trusted, unixNow());
  } catch (const plng::ticket::TicketError& error) {
    throw LocalError("the ticket does not verify (" +
                     std::string(plng::ticket::toString(error.code())) + "): " + error.what());
  } catch (const std::invalid_argument& error) {
    throw LocalError(std::string("PLC published an unusable key: ") + error.what());
  }
}

void ticketGet(Invocation& inv) {
  v1::GetSliceTicketRequest request;
  request.set_slice(inv.args.positional(0));
  for (const std::string& hostname : inv.args.values("node")) request.add_hostnames(hostname);
  const auto ticket = inv.plc().call(&v1::Slice::Stub::GetSliceTicket, request);
  const bool verify = inv.args.has("verify");
  if (verify) verifyTicket(inv, ticket);

  std::string bytes;
  if (!ticket.SerializeToString(&bytes)) throw LocalError("cannot serialise the ticket");
  const auto out_path = inv.args.value("out");
  if (out_path == "-") {
    std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    std::cout.flush();
    return;
  }
  if (out_path) writeFileAtomic(*out_path, bytes, 0644);

  v1::TicketBody body;
  if (!body.ParseFromString(ticket.body())) {
    throw LocalError("PLC sent a ticket whose body does not parse as a TicketBody");
  }
  if (inv.out.json()) {
    inv.out.printJsonObject({{"signed_ticket", &ticket}, {"body", &body}});
  } else {
    View<v1::TicketBody> view = ticketBodyView();
    view.columns.push_back(
        {"key_id", [key_id = ticket.key_id()](const v1::TicketBody&) { return key_id; }});
    view.columns.push_back({"signature", [size = ticket.signature().size()](const v1::TicketBody&) {
                              return std::to_string(size) + " bytes";
                            }});
    view.columns.push_back({"verified", [verify](const v1::TicketBody&) {
                              return verify ? "yes, with PLC's published keys"
                                            : "not checked (use --verify)";
                            }});
    inv.out.item(body, view);
  }
  if (out_path) inv.out.err() << "plcctl: ticket written to " << *out_path << "\n";
}

const PositionalSpec kSliceForTag = arg::one("SLICE", "the slice's full name");
const FlagSpec kTagNode = flag::value("node", "HOSTNAME", "scope the tag to one node");
const FlagSpec kTagNodegroup =
    flag::value("nodegroup", "NAME", "scope the tag to the nodes of a node group");

}  // namespace

void addSliceCommands(CommandTable& table) {
  table.section("Slices");
  table.group("slice", "Slices: a group's share of the testbed, one sliver per node");
  table.add({
      .path = "slice add",
      .summary = "Create a slice at your site (PI)",
      .positionals = {kSliceName},
      .flags = sliceFlags(),
      .examples = {"plcctl slice add princeton_codeen --description 'CoDeeN CDN' "
                   "--url https://codeen.cs.princeton.edu"},
      .run = sliceAdd,
  });
  table.add({
      .path = "slice list",
      .summary = "List slices, all, the ones named, or by site, member or node",
      .positionals = {arg::any("NAME", "only these slices")},
      .flags = {flag::value("site", "LOGIN_BASE", "only this site's slices"),
                flag::value("member", "EMAIL", "only slices this person belongs to"),
                flag::value("node", "HOSTNAME", "only slices bound to this node"),
                flag::toggle("deleted", "include deleted slices")},
      .examples = {"plcctl slice list --member alice@princeton.edu"},
      .run = sliceList,
      .details = "EXPIRES says how long each slice has left, with \"(!)\" when it expires\n"
                 "within 7 days (PLC mails its members reminders then, where configured).\n"
                 "With -o json the slices are printed whole, expires_at in unix seconds.",
  });
  table.add({
      .path = "slice show",
      .summary = "Show one slice with its members and nodes",
      .positionals = {kSliceName},
      .examples = {"plcctl slice show princeton_codeen"},
      .run = sliceShow,
  });
  table.add({
      .path = "slice update",
      .summary = "Change a slice's description, URL, instantiation or node limit",
      .positionals = {kSliceName},
      .flags = sliceFlags(),
      .examples = {"plcctl slice update princeton_codeen --max-nodes 200"},
      .run = sliceUpdate,
  });
  table.add({
      .path = "slice renew",
      .summary = "Move a slice's expiry",
      .positionals = {kSliceName},
      .flags = expiryFlags("the slice"),
      .examples = {"plcctl slice renew princeton_codeen --days 14",
                   "plcctl slice renew princeton_codeen --expires 2026-12-31"},
      .run = sliceRenew,
      .details = "A date alone means 00:00 UTC that day. PLC's policy decides how far ahead a\n"
                 "slice may be renewed.",
      .usage = "NAME (--expires TIME | --days N)",
  });
  table.add({
      .path = "slice delete",
      .summary = "Delete a slice; nodes tear its slivers down",
      .positionals = {kSliceName},
      .examples = {"plcctl slice delete princeton_codeen"},
      .run = sliceDelete,
  });
  table.group("slice members", "The persons whose keys get into a slice's slivers");
  table.add({
      .path = "slice members add",
      .summary = "Add persons to a slice",
      .positionals = {kSliceName, arg::some("EMAIL", "the persons to add")},
      .examples = {"plcctl slice members add princeton_codeen alice@princeton.edu bob@mit.edu"},
      .run = membersAdd,
  });
  table.add({
      .path = "slice members remove",
      .summary = "Remove persons from a slice",
      .positionals = {kSliceName, arg::some("EMAIL", "the persons to remove")},
      .examples = {"plcctl slice members remove princeton_codeen bob@mit.edu"},
      .run = membersRemove,
  });
  table.group("slice nodes", "The nodes a slice has slivers on");
  table.add({
      .path = "slice nodes add",
      .summary = "Bind nodes to a slice",
      .positionals = {kSliceName, arg::some("HOSTNAME", "the nodes to add")},
      .examples = {"plcctl slice nodes add princeton_codeen planetlab1.cs.princeton.edu"},
      .run = nodesAdd,
  });
  table.add({
      .path = "slice nodes remove",
      .summary = "Unbind nodes from a slice",
      .positionals = {kSliceName, arg::some("HOSTNAME", "the nodes to remove")},
      .examples = {"plcctl slice nodes remove princeton_codeen planetlab1.cs.princeton.edu"},
      .run = nodesRemove,
  });
  table.group("slice tag",
              "Slice tags: resources and behaviour (cpu_share, vref, initscript, ...)");
  table.add({
      .path = "slice tag set",
      .summary = "Set a slice tag, for the whole slice, one node or a node group",
      .positionals = {kSliceForTag, arg::one("TAG", "the tag type's name"),
                      arg::one("VALUE", "the value")},
      .flags = {kTagNode, kTagNodegroup},
      .examples = {"plcctl slice tag set princeton_codeen net_max_rate 20mbit",
                   "plcctl slice tag set princeton_codeen cpu_share 64 --nodegroup alpha"},
      .run = tagSet,
  });
  table.add({
      .path = "slice tag delete",
      .summary = "Delete a slice tag by id, or by slice, name and scope",
      .positionals = {arg::one("SLICE_TAG_ID|SLICE", "the tag's id, or the slice's name"),
                      arg::optional("TAG", "with SLICE: the tag's name")},
      .flags = {kTagNode, kTagNodegroup},
      .examples = {"plcctl slice tag delete 314",
                   "plcctl slice tag delete princeton_codeen cpu_share --nodegroup alpha"},
      .run = tagDelete,
      .usage = "(SLICE_TAG_ID | SLICE TAG [--node HOSTNAME | --nodegroup NAME])",
  });
  table.add({
      .path = "slice tag list",
      .summary = "List a slice's tags",
      .positionals = {kSliceForTag},
      .examples = {"plcctl slice tag list princeton_codeen"},
      .run = tagList,
  });

  table.group("ticket", "Signed tickets: PLC's word that a slice may run on nodes");
  table.add({
      .path = "ticket get",
      .summary = "Get a signed ticket for a slice and summarise or save it",
      .positionals = {kSliceName},
      .flags = {flag::repeated("node", "HOSTNAME", "only these nodes (default: all the slice's)"),
                flag::value("out", "FILE",
                            "write the SignedTicket as binary protobuf to FILE ('-': stdout)"),
                flag::toggle("verify", "check the signature and validity with PLC's keys")},
      .examples = {"plcctl ticket get princeton_codeen --node n1.example.org --out codeen.ticket",
                   "plcctl ticket get princeton_codeen --verify"},
      .run = ticketGet,
      .details = "The summary shows the decoded TicketBody. With -o json the output is\n"
                 "{\"signed_ticket\": SignedTicket, \"body\": TicketBody}.",
  });
}

}  // namespace plcctl

// Nodes and what classifies them: node add|list|show|update|delete|tag set|
// tag delete|login|keygen, nodegroup add|list|delete, tagtype add|list|
// update|delete.
#include <cstring>
#include <filesystem>

#include "base/strings.h"
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/values.h"
#include "cli/views.h"
#include "proto/node_protocol.h"
#include "proto/ticket.h"

namespace plcctl {

namespace {

const PositionalSpec kHostname = arg::one("HOSTNAME", "the node's fully qualified host name");
constexpr std::size_t kEd25519KeyBytes = 32;

// A raw 32-byte Ed25519 key from a file holding either the 32 bytes or 64 hex
// digits.
std::string readRawKey(const std::string& path) {
  const std::string content = readFile(path);
  if (content.size() == kEd25519KeyBytes) return content;
  const std::string_view text = plng::base::trim(content);
  if (text.size() == 2 * kEd25519KeyBytes) return parseHex(text, path);
  throw UsageError(path + ": expected a raw 32-byte Ed25519 key (or 64 hex digits), got " +
                   std::to_string(content.size()) + " bytes");
}

// The node public key from --public-key-file or --public-key-hex, if given.
std::optional<std::string> nodePublicKey(const ParsedArgs& args, bool required) {
  requireOneOf(args, {"public-key-file", "public-key-hex"}, required);
  if (auto path = args.value("public-key-file")) return readRawKey(*path);
  if (auto hex = args.value("public-key-hex")) {
    std::string key = parseHex(*hex, "--public-key-hex");
    if (key.size() != kEd25519KeyBytes) {
      throw UsageError("--public-key-hex: an Ed25519 public key is 32 bytes (64 hex digits), got " +
                       std::to_string(key.size()) + " bytes");
    }
    return key;
  }
  return std::nullopt;
}

std::vector<FlagSpec> publicKeyFlags() {
  return {
      flag::value("public-key-file", "PATH",
                  "the node's Ed25519 public key: raw 32 bytes (or 64 hex digits) in PATH"),
      flag::value("public-key-hex", "HEX", "the node's Ed25519 public key as 64 hex digits"),
  };
}

const FlagSpec kBootState =
    flag::value("boot-state", "STATE", "boot, safeboot, reinstall or disabled");

void nodeAdd(Invocation& inv) {
  v1::AddNodeRequest request;
  request.set_hostname(inv.args.positional(0));
  request.set_login_base(*inv.args.value("site"));
  request.set_public_key(*nodePublicKey(inv.args, /*required=*/true));
  request.set_boot_state(inv.args.valueOr("boot-state", ""));
  inv.out.item(inv.plc().call(&v1::Admin::Stub::AddNode, request), nodeView());
}

void nodeList(Invocation& inv) {
  v1::GetNodesRequest request;
  for (const std::string& hostname : inv.args.positionals()) request.add_hostnames(hostname);
  request.set_login_base(inv.args.valueOr("site", ""));
  request.set_nodegroup(inv.args.valueOr("nodegroup", ""));
  request.set_include_deleted(inv.args.has("deleted"));
  inv.out.list(inv.plc().call(&v1::Admin::Stub::GetNodes, request).nodes(), nodeView());
}

void nodeShow(Invocation& inv) {
  v1::GetNodesRequest request;
  request.add_hostnames(inv.args.positional(0));
  request.set_include_deleted(true);
  const auto response = inv.plc().call(&v1::Admin::Stub::GetNodes, request);
  inv.out.item(theOne(response.nodes(), "node", request.hostnames(0)), nodeView());
}

// A node's reports over time, newest first, and the failed slivers of the
// latest with their reasons.
void printHistory(Invocation& inv, const v1::NodeStatus& node, std::int64_t now) {
  auto& out = inv.out.out();
  out << node.hostname() << ": " << nodeState(node) << ", " << node.history_size() << " report"
      << (node.history_size() == 1 ? "" : "s") << " (newest first)\n";
  if (!node.history().empty()) inv.out.list(node.history(), nodeReportView(now));
  if (node.report().has_health() && !node.report().health().slivers_failed().empty()) {
    out << "failed slivers (latest report):\n";
    inv.out.list(node.report().health().slivers_failed(), sliverFailureView(now));
  }
}

void nodeStatus(Invocation& inv) {
  v1::GetNodeStatusRequest request;
  for (const std::string& hostname : inv.args.positionals()) request.add_hostnames(hostname);
  request.set_login_base(inv.args.valueOr("site", ""));
  if (auto history = inv.args.value("history")) {
    request.set_history(static_cast<std::uint32_t>(parseInt32(*history, "--history", 1)));
    if (request.hostnames().empty()) {
      throw UsageError("--history needs the nodes named: plcctl node status HOSTNAME --history N");
    }
  }
  const bool net = inv.args.has("net");
  if (net && request.history() > 0) throw UsageError("--net and --history do not go together");
  const auto response = inv.plc().call(&v1::Admin::Stub::GetNodeStatus, request);
  if (inv.out.json()) {
    inv.out.list(response.nodes(), nodeFleetView(response.now()));
    return;
  }
  if (request.history() > 0) {
    for (const v1::NodeStatus& node : response.nodes()) printHistory(inv, node, response.now());
    return;
  }
  if (!net) {
    inv.out.list(response.nodes(), nodeFleetView(response.now()));
    return;
  }
  // One row per slice of each node (a node that reported none: one row).
  std::vector<v1::NodeStatus> rows;
  for (const v1::NodeStatus& node : response.nodes()) {
    v1::NodeStatus row = node;
    row.mutable_report()->clear_slice_net();
    if (node.report().slice_net().empty()) rows.push_back(row);
    for (const v1::SliceNetUsage& usage : node.report().slice_net()) {
      *row.mutable_report()->add_slice_net() = usage;
      rows.push_back(row);
      row.mutable_report()->clear_slice_net();
    }
  }
  inv.out.list(rows, nodeNetView());
}

void nodeUpdate(Invocation& inv) {
  v1::UpdateNodeRequest request;
  request.set_hostname(inv.args.positional(0));
  if (auto state = inv.args.value("boot-state")) request.set_boot_state(*state);
  if (auto key = nodePublicKey(inv.args, /*required=*/false)) request.set_public_key(*key);
  inv.out.item(inv.plc().call(&v1::Admin::Stub::UpdateNode, request), nodeView());
}

void nodeDelete(Invocation& inv) {
  v1::DeleteNodeRequest request;
  request.set_hostname(inv.args.positional(0));
  const auto response = inv.plc().call(&v1::Admin::Stub::DeleteNode, request);
  inv.out.done(response, "Deleted node " + request.hostname() + ".");
}

void nodeTagSet(Invocation& inv) {
  v1::SetNodeTagRequest request;
  request.set_hostname(inv.args.positional(0));
  request.set_tag(inv.args.positional(1));
  request.set_value(inv.args.positional(2));
  inv.out.item(inv.plc().call(&v1::Admin::Stub::SetNodeTag, request), nodeView());
}

void nodeTagDelete(Invocation& inv) {
  v1::DeleteNodeTagRequest request;
  request.set_hostname(inv.args.positional(0));
  request.set_tag(inv.args.positional(1));
  inv.out.item(inv.plc().call(&v1::Admin::Stub::DeleteNodeTag, request), nodeView());
}

void nodeLogin(Invocation& inv) {
  const std::string& hostname = inv.args.positional(0);
  const std::string seed = readRawKey(*inv.args.value("key-file"));
  plng::ticket::PrivateKey private_key{};
  std::memcpy(private_key.data(), seed.data(), private_key.size());

  v1::NodeChallengeRequest challenge_request;
  challenge_request.set_hostname(hostname);
  const auto challenge =
      inv.plc().call(&v1::Auth::Stub::GetNodeChallenge, challenge_request, Auth::kAnonymous);

  // The signed message binds the nonce to this host name (see plc.proto).
  const auto signature =
      plng::ticket::sign(private_key, plng::proto::nodeLoginMessage(hostname, challenge.nonce()));

  v1::NodeLoginRequest request;
  request.set_hostname(hostname);
  request.set_nonce(challenge.nonce());
  request.set_signature(std::string(signature.begin(), signature.end()));
  const auto response = inv.plc().call(&v1::Auth::Stub::NodeLogin, request, Auth::kAnonymous);

  if (inv.args.has("save")) {
    const std::filesystem::path saved_in = saveSession(inv, response);
    inv.out.done(response,
                 "Logged in as node " + hostname + "; token saved in " + saved_in.string() + ".");
    return;
  }
  if (inv.out.json()) {
    inv.out.printJson(response);
    return;
  }
  inv.out.fields({{"token", response.token()},
                  {"expires_at", formatTimeFromNow(response.expires_at(), unixNow())}});
}

void nodeKeygen(Invocation& inv) {
  const std::filesystem::path path = *inv.args.value("out");
  const std::filesystem::path public_path = path.string() + ".pub";
  std::error_code error;
  if (!inv.args.has("force") &&
      (std::filesystem::exists(path, error) || std::filesystem::exists(public_path, error))) {
    throw LocalError(path.string() + " or " + public_path.string() +
                     " already exists; pass --force to replace it");
  }
  const plng::ticket::KeyPair pair = plng::ticket::generateKeyPair();
  const auto bytes = [](const auto& key) {
    return std::string(reinterpret_cast<const char*>(key.data()), key.size());
  };
  writeFileAtomic(path, bytes(pair.private_key), 0600);
  writeFileAtomic(public_path, bytes(pair.public_key), 0644);
  inv.out.fields({{"private_key_file", path.string()},
                  {"public_key_file", public_path.string()},
                  {"public_key_hex", plng::base::toHex(bytes(pair.public_key))},
                  {"key_id", plng::ticket::keyIdOf(pair.public_key)}});
}

void nodegroupAdd(Invocation& inv) {
  v1::AddNodeGroupRequest request;
  request.set_name(inv.args.positional(0));
  request.set_tag(*inv.args.value("tag"));
  request.set_value(*inv.args.value("value"));
  inv.out.item(inv.plc().call(&v1::Admin::Stub::AddNodeGroup, request), nodeGroupView());
}

void nodegroupList(Invocation& inv) {
  v1::GetNodeGroupsRequest request;
  for (const std::string& name : inv.args.positionals()) request.add_names(name);
  inv.out.list(inv.plc().call(&v1::Admin::Stub::GetNodeGroups, request).nodegroups(),
               nodeGroupView());
}

void nodegroupDelete(Invocation& inv) {
  v1::DeleteNodeGroupRequest request;
  request.set_name(inv.args.positional(0));
  const auto response = inv.plc().call(&v1::Admin::Stub::DeleteNodeGroup, request);
  inv.out.done(response, "Deleted node group " + request.name() + ".");
}

void tagtypeAdd(Invocation& inv) {
  v1::AddTagTypeRequest request;
  request.set_name(inv.args.positional(0));
  request.set_description(inv.args.valueOr("description", ""));
  request.set_category(inv.args.valueOr("category", ""));
  request.set_min_role(inv.args.valueOr("min-role", ""));
  request.set_value_kind(inv.args.valueOr("value-kind", ""));
  request.set_default_value(inv.args.valueOr("default", ""));
  inv.out.item(inv.plc().call(&v1::Admin::Stub::AddTagType, request), tagTypeView());
}

void tagtypeList(Invocation& inv) {
  v1::GetTagTypesRequest request;
  for (const std::string& name : inv.args.positionals()) request.add_names(name);
  inv.out.list(inv.plc().call(&v1::Admin::Stub::GetTagTypes, request).tag_types(), tagTypeView());
}

void tagtypeUpdate(Invocation& inv) {
  v1::UpdateTagTypeRequest request;
  request.set_name(inv.args.positional(0));
  if (auto text = inv.args.value("description")) request.set_description(*text);
  if (auto role = inv.args.value("min-role")) request.set_min_role(*role);
  if (auto value = inv.args.value("default")) request.set_default_value(*value);
  inv.out.item(inv.plc().call(&v1::Admin::Stub::UpdateTagType, request), tagTypeView());
}

void tagtypeDelete(Invocation& inv) {
  v1::DeleteTagTypeRequest request;
  request.set_name(inv.args.positional(0));
  const auto response = inv.plc().call(&v1::Admin::Stub::DeleteTagType, request);
  inv.out.done(response, "Deleted tag type " + request.name() + ".");
}

const FlagSpec kDescription = flag::value("description", "TEXT", "what the tag means");
const FlagSpec kMinRole =
    flag::value("min-role", "ROLE", "least role that may set it: admin, pi, tech or user");
const FlagSpec kDefault =
    flag::value("default", "VALUE", "value applied when a slice has no such tag (\"\" = none)");

}  // namespace

void addNodeCommands(CommandTable& table) {
  table.section("Nodes");
  table.group("node", "Nodes: machines that run slivers");
  std::vector<FlagSpec> add_flags = {flag::required("site", "LOGIN_BASE", "the hosting site"),
                                     kBootState};
  for (FlagSpec& spec : publicKeyFlags()) add_flags.push_back(std::move(spec));
  table.add({
      .path = "node add",
      .summary = "Register a node and its Ed25519 key (tech of the site, or admin)",
      .positionals = {kHostname},
      .flags = std::move(add_flags),
      .examples = {"plcctl node add planetlab1.cs.princeton.edu --site princeton "
                   "--public-key-file /etc/planetlab/node_key.pub"},
      .run = nodeAdd,
      .usage = "HOSTNAME --site LOGIN_BASE (--public-key-file PATH | --public-key-hex HEX) "
               "[--boot-state STATE]",
  });
  table.add({
      .path = "node list",
      .summary = "List nodes, all, the ones named, a site's or a node group's",
      .positionals = {arg::any("HOSTNAME", "only these nodes")},
      .flags = {flag::value("site", "LOGIN_BASE", "only this site's nodes"),
                flag::value("nodegroup", "NAME", "only the nodes in this node group"),
                flag::toggle("deleted", "include deleted nodes")},
      .examples = {"plcctl node list --site princeton", "plcctl node list --nodegroup alpha"},
      .run = nodeList,
  });
  table.add({
      .path = "node show",
      .summary = "Show one node with its key, tags, node groups and slices",
      .positionals = {kHostname},
      .examples = {"plcctl node show planetlab1.cs.princeton.edu"},
      .run = nodeShow,
  });
  table.add({
      .path = "node status",
      .summary = "The fleet view: each node up or down (silent longer than PLC's "
                 "node_down_after_s), its last contact and what it last reported (version, "
                 "load, memory available/total, slivers running/failed, features); --history "
                 "shows a node's reports over time and why its slivers failed, --net each "
                 "slice's use of its daily byte budget (net_daily_bytes)",
      .positionals = {arg::any("HOSTNAME", "only these nodes")},
      .flags = {flag::value("site", "LOGIN_BASE", "only this site's nodes"),
                flag::value("history", "N", "also the last N reports of each node named"),
                flag::toggle("net", "one row per node and slice: daily byte budgets and caps")},
      .examples = {"plcctl node status", "plcctl node status --site princeton",
                   "plcctl node status planetlab1.cs.princeton.edu --history 10",
                   "plcctl node status --net",
                   "plcctl -o json node status planetlab1.cs.princeton.edu"},
      .run = nodeStatus,
  });
  std::vector<FlagSpec> update_flags = {kBootState};
  for (FlagSpec& spec : publicKeyFlags()) update_flags.push_back(std::move(spec));
  table.add({
      .path = "node update",
      .summary = "Change a node's boot state or key",
      .positionals = {kHostname},
      .flags = std::move(update_flags),
      .examples = {"plcctl node update planetlab1.cs.princeton.edu --boot-state safeboot"},
      .run = nodeUpdate,
  });
  table.add({
      .path = "node delete",
      .summary = "Delete a node (kept for history, marked deleted)",
      .positionals = {kHostname},
      .examples = {"plcctl node delete planetlab1.cs.princeton.edu"},
      .run = nodeDelete,
  });
  table.group("node tag", "Node tags: attributes that node groups select on");
  table.add({
      .path = "node tag set",
      .summary = "Set a tag on a node",
      .positionals = {kHostname, arg::one("TAG", "the tag type's name"),
                      arg::one("VALUE", "the value")},
      .examples = {"plcctl node tag set planetlab1.cs.princeton.edu deployment alpha"},
      .run = nodeTagSet,
  });
  table.add({
      .path = "node tag delete",
      .summary = "Remove a tag from a node",
      .positionals = {kHostname, arg::one("TAG", "the tag type's name")},
      .examples = {"plcctl node tag delete planetlab1.cs.princeton.edu deployment"},
      .run = nodeTagDelete,
  });
  table.add({
      .path = "node login",
      .summary = "Log in as a node with its private key (challenge-response; for operators)",
      .positionals = {kHostname},
      .flags = {flag::required("key-file", "PATH",
                               "the node's Ed25519 private key: raw 32-byte seed or 64 hex digits"),
                flag::toggle("save",
                             "save the node token in the config file instead of "
                             "printing it")},
      .examples =
          {"plcctl node login planetlab1.cs.princeton.edu --key-file /etc/planetlab/node_key",
           "plcctl --token \"$(plcctl node login n1.example.org --key-file k -o json | "
           "jq -r .token)\" sync get"},
      .run = nodeLogin,
  });
  table.add({
      .path = "node keygen",
      .summary = "Create a node key pair: PATH (private, 0600) and PATH.pub (raw 32 bytes)",
      .flags = {flag::required("out", "PATH", "where to write the private key"),
                flag::toggle("force", "replace existing files")},
      .examples = {"plcctl node keygen --out /etc/planetlab/node_key"},
      .run = nodeKeygen,
      .details = "Runs locally, without PLC. Register the public key with 'plcctl node add\n"
                 "HOSTNAME --public-key-file PATH.pub'.",
  });

  table.group("nodegroup", "Node groups: the live nodes whose tag has a given value");
  table.add({
      .path = "nodegroup add",
      .summary = "Create a node group (admin)",
      .positionals = {arg::one("NAME", "the group's name")},
      .flags = {flag::required("tag", "TAG", "the node tag to select on"),
                flag::required("value", "VALUE", "the value the tag must have")},
      .examples = {"plcctl nodegroup add alpha --tag deployment --value alpha"},
      .run = nodegroupAdd,
  });
  table.add({
      .path = "nodegroup list",
      .summary = "List node groups, all or the ones named",
      .positionals = {arg::any("NAME", "only these groups")},
      .examples = {"plcctl nodegroup list"},
      .run = nodegroupList,
  });
  table.add({
      .path = "nodegroup delete",
      .summary = "Delete a node group",
      .positionals = {arg::one("NAME", "the group's name")},
      .examples = {"plcctl nodegroup delete alpha"},
      .run = nodegroupDelete,
  });

  table.group("tagtype", "Tag types: the slice and node tags PLC knows, and who may set them");
  table.add({
      .path = "tagtype add",
      .summary = "Define a tag type (admin)",
      .positionals = {arg::one("NAME", "the tag's name")},
      .flags = {kDescription,
                flag::value("category", "CATEGORY", "slice/rspec, slice/config, node, ..."),
                kMinRole,
                flag::value("value-kind", "KIND",
                            "int, bytes, rate, string, bool, ports or capabilities"),
                kDefault},
      .examples = {"plcctl tagtype add net_max_rate --category slice/rspec --min-role pi "
                   "--value-kind rate --default 10mbit --description 'bandwidth cap'"},
      .run = tagtypeAdd,
  });
  table.add({
      .path = "tagtype list",
      .summary = "List tag types, all or the ones named",
      .positionals = {arg::any("NAME", "only these tag types")},
      .examples = {"plcctl tagtype list"},
      .run = tagtypeList,
  });
  table.add({
      .path = "tagtype update",
      .summary = "Change a tag type's description, minimum role or default",
      .positionals = {arg::one("NAME", "the tag's name")},
      .flags = {kDescription, kMinRole, kDefault},
      .examples = {"plcctl tagtype update cpu_share --default 64"},
      .run = tagtypeUpdate,
  });
  table.add({
      .path = "tagtype delete",
      .summary = "Delete a tag type",
      .positionals = {arg::one("NAME", "the tag's name")},
      .examples = {"plcctl tagtype delete net_max_rate"},
      .run = tagtypeDelete,
  });
}

}  // namespace plcctl

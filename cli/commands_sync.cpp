// What PLC tells nodes: sync get and sync watch (NodeSync), for node operators
// and for debugging the fan-out of changes.
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/values.h"
#include "cli/views.h"

namespace plcctl {

namespace {

void printNodeState(Invocation& inv, const v1::NodeState& state) {
  inv.out.item(state, nodeStateView());
  if (!state.slivers().empty()) {
    inv.out.out() << '\n';
    inv.out.list(state.slivers(), sliverView());
  }
}

void syncGet(Invocation& inv) {
  v1::GetSliversRequest request;
  request.set_hostname(inv.args.valueOr("node", ""));
  const auto state = inv.plc().call(&v1::NodeSync::Stub::GetSlivers, request);
  if (inv.out.json()) {
    inv.out.printJson(state);
  } else {
    printNodeState(inv, state);
  }
}

void syncWatch(Invocation& inv) {
  v1::WatchSliversRequest request;
  request.set_hostname(inv.args.valueOr("node", ""));
  if (auto since = inv.args.value("since")) {
    request.set_since_version(parseInteger(*since, "--since", 0));
  }
  request.set_since_epoch(inv.args.valueOr("epoch", ""));
  const std::int64_t count =
      inv.args.has("count") ? parseInteger(*inv.args.value("count"), "--count", 1) : 0;

  // A watch runs until stopped: no deadline.
  auto context = inv.plc().newContext(Auth::kToken, /*with_deadline=*/false);
  auto reader = inv.plc().stub<v1::NodeSync::Stub>().WatchSlivers(context.get(), request);
  v1::NodeState state;
  std::int64_t received = 0;
  bool stopped_by_us = false;
  while (reader->Read(&state)) {
    ++received;
    if (inv.out.json()) {
      inv.out.printJsonLine(state);
    } else {
      if (received > 1) inv.out.out() << '\n';
      printNodeState(inv, state);
      inv.out.out().flush();
    }
    if (count != 0 && received >= count) {
      context->TryCancel();
      stopped_by_us = true;
      break;
    }
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok() && !stopped_by_us) throw inv.plc().error(status);
}

const FlagSpec kNode =
    flag::value("node", "HOSTNAME", "the node whose state to get (admins; default: the caller)");

}  // namespace

void addSyncCommands(CommandTable& table) {
  table.section("Nodes");
  table.group("sync", "The desired state PLC sends a node (NodeSync), for operators");
  table.add({
      .path = "sync get",
      .summary = "Show a node's full desired state: slivers, keys, PLC keys, blacklist",
      .flags = {kNode},
      .examples = {"plcctl sync get --node planetlab1.cs.princeton.edu",
                   "plcctl --token \"$NODE_TOKEN\" sync get -o json"},
      .run = syncGet,
  });
  table.add({
      .path = "sync watch",
      .summary = "Follow a node's desired state as it changes (no deadline; Ctrl-C stops)",
      .flags = {kNode,
                flag::value("since", "VERSION",
                            "skip the first state unless newer than VERSION of --epoch"),
                flag::value("epoch", "EPOCH",
                            "the epoch of --since (sync get shows it); a state of another "
                            "epoch is always sent"),
                flag::value("count", "N", "stop after N states")},
      .examples =
          {"plcctl sync watch --node planetlab1.cs.princeton.edu",
           "plcctl sync watch --node n1.example.org --since 41 --epoch \"$EPOCH\" --count 1 "
           "-o json"},
      .run = syncWatch,
      .details = "With -o json each state is printed as one JSON object on its own line.",
  });
}

}  // namespace plcctl

// PLC-wide policy and records: blacklist add|list|delete, plckey list|rotate|
// retire, events.
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/values.h"
#include "cli/views.h"

namespace plcctl {

namespace {

void blacklistAdd(Invocation& inv) {
  v1::AddBlacklistEntryRequest request;
  request.set_prefix(inv.args.positional(0));
  request.set_reason(inv.args.valueOr("reason", ""));
  inv.out.item(inv.plc().call(&v1::Admin::Stub::AddBlacklistEntry, request), blacklistView());
}

void blacklistList(Invocation& inv) {
  const auto response = inv.plc().call(&v1::Admin::Stub::GetBlacklist, v1::Empty());
  inv.out.list(response.entries(), blacklistView());
}

void blacklistDelete(Invocation& inv) {
  v1::DeleteBlacklistEntryRequest request;
  request.set_entry_id(parseInteger(inv.args.positional(0), "ENTRY_ID", 1));
  const auto response = inv.plc().call(&v1::Admin::Stub::DeleteBlacklistEntry, request);
  inv.out.done(response, "Deleted blacklist entry " + inv.args.positional(0) + ".");
}

void plckeyList(Invocation& inv) {
  const auto response = inv.plc().call(&v1::Admin::Stub::GetPlcKeys, v1::Empty());
  if (inv.out.json()) {
    // The signing key id lives beside the list: print the whole response.
    inv.out.printJson(response);
    return;
  }
  inv.out.list(response.keys(), plcKeyView(response.signing_key_id()));
}

void plckeyRotate(Invocation& inv) {
  const auto key = inv.plc().call(&v1::Admin::Stub::RotatePlcKey, v1::Empty());
  inv.out.item(key, plcKeyView(key.key_id()));
}

void plckeyRetire(Invocation& inv) {
  v1::RetirePlcKeyRequest request;
  request.set_key_id(inv.args.positional(0));
  const auto response = inv.plc().call(&v1::Admin::Stub::RetirePlcKey, request);
  inv.out.done(response, "Retired PLC key " + request.key_id() +
                             "; tickets it signs from now on are refused.");
}

void events(Invocation& inv) {
  v1::GetEventsRequest request;
  request.set_caller(inv.args.valueOr("caller", ""));
  request.set_method(inv.args.valueOr("method", ""));
  request.set_object(inv.args.valueOr("object", ""));
  if (auto since = inv.args.value("since")) {
    request.set_since(parseTimeOrAgo(*since, "--since", unixNow()));
  }
  if (auto limit = inv.args.value("limit")) {
    request.set_limit(parseInt32(*limit, "--limit", 1));
  }
  inv.out.list(inv.plc().call(&v1::Admin::Stub::GetEvents, request).events(), eventView());
}

}  // namespace

void addPolicyCommands(CommandTable& table) {
  table.section("Administration");
  table.group("blacklist", "Destinations no slice may send to (enforced on every node)");
  table.add({
      .path = "blacklist add",
      .summary = "Blacklist an IPv4 or IPv6 prefix (admin)",
      .positionals = {arg::one("PREFIX", "CIDR prefix, e.g. 192.0.2.0/24 or 2001:db8::/32")},
      .flags = {flag::value("reason", "TEXT", "why (shown to operators)")},
      .examples = {"plcctl blacklist add 192.0.2.0/24 --reason 'complaint #1234: opted out'"},
      .run = blacklistAdd,
  });
  table.add({
      .path = "blacklist list",
      .summary = "List blacklisted prefixes",
      .examples = {"plcctl blacklist list"},
      .run = blacklistList,
  });
  table.add({
      .path = "blacklist delete",
      .summary = "Remove a blacklist entry",
      .positionals = {arg::one("ENTRY_ID", "the entry's id, from 'plcctl blacklist list'")},
      .examples = {"plcctl blacklist delete 7"},
      .run = blacklistDelete,
  });

  table.group("plckey", "PLC's ticket-signing keys");
  table.add({
      .path = "plckey list",
      .summary = "List PLC's public keys and which one signs new tickets",
      .examples = {"plcctl plckey list"},
      .run = plckeyList,
      .details = "With -o json the whole response is printed: {\"keys\": [...], "
                 "\"signing_key_id\": ...}.",
  });
  table.add({
      .path = "plckey rotate",
      .summary = "Create a new signing key; older keys stay valid until retired (admin)",
      .examples = {"plcctl plckey rotate"},
      .run = plckeyRotate,
  });
  table.add({
      .path = "plckey retire",
      .summary = "Retire a key: nodes refuse tickets it signs after now (admin)",
      .positionals = {arg::one("KEY_ID", "the key's id, from 'plcctl plckey list'")},
      .examples = {"plcctl plckey retire 3f2a9c0d11e4b6a7"},
      .run = plckeyRetire,
  });

  table.add({
      .path = "events",
      .summary = "Show the audit log of API calls (who did what, when, with what result)",
      .flags = {flag::value("caller", "WHO", "only calls by this email or node:<hostname>"),
                flag::value("method", "METHOD", "only this RPC, e.g. AddSlice"),
                flag::value("object", "OBJECT", "only calls touching this, e.g. slice:princeton_x"),
                flag::value("since", "TIME",
                            "only calls at or after TIME, or this long ago (2h, 7d)"),
                flag::value("limit", "N", "at most N events (PLC's default 100, max 10000)")},
      .examples = {"plcctl events --object slice:princeton_codeen --since 7d",
                   "plcctl events --caller alice@princeton.edu --limit 20 -o json"},
      .run = events,
  });
}

}  // namespace plcctl

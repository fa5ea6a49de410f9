// audit: who sent traffic to an address, across the whole planet (PLC's flow
// archive, Admin.GetFlows), and who answers for those slices.
#include <arpa/inet.h>

#include <ctime>
#include <map>

#include "cli/commands.h"
#include "cli/values.h"

namespace plcctl {

namespace {

std::string protocolName(std::uint32_t protocol) {
  switch (protocol) {
    case 1:
      return "icmp";
    case 6:
      return "tcp";
    case 17:
      return "udp";
    case 58:
      return "icmpv6";
    default:
      return std::to_string(protocol);
  }
}

std::string addressText(const std::string& bytes) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (bytes.size() == 4 || bytes.size() == 16) {
    inet_ntop(bytes.size() == 4 ? AF_INET : AF_INET6, bytes.data(), text, sizeof text);
  }
  return text;
}

std::string withPort(const std::string& address_bytes, std::uint32_t port) {
  auto address = addressText(address_bytes);
  if (address_bytes.size() == 16) address = "[" + address + "]";
  return address + ":" + std::to_string(port);
}

// "10.0.0.1:40000 -> 192.0.2.7:80"; ICMP carries its type and code instead of ports.
std::string flowText(const v1::FlowRecord& f) {
  if (f.protocol() == 1 || f.protocol() == 58) {
    return addressText(f.src_addr()) + " -> " + addressText(f.dst_addr()) + " type " +
           std::to_string(f.dst_port() >> 8) + " code " + std::to_string(f.dst_port() & 0xff);
  }
  return withPort(f.src_addr(), f.src_port()) + " -> " + withPort(f.dst_addr(), f.dst_port());
}

// Seconds, in UTC: flows are short.
std::string flowTime(std::int64_t unix_ns) {
  const auto t = static_cast<std::time_t>(unix_ns / 1000000000);
  std::tm tm{};
  char text[32];
  if (gmtime_r(&t, &tm) == nullptr || std::strftime(text, sizeof text, "%F %T", &tm) == 0) {
    return std::to_string(unix_ns);
  }
  return text;
}

View<v1::AuditedFlow> auditedFlowView() {
  using A = v1::AuditedFlow;
  return {"flows",
          {
              {"node", [](const A& a) { return a.node(); }},
              {"slice",
               [](const A& a) {
                 return a.flow().slice_name().empty() ? std::string("-") : a.flow().slice_name();
               }},
              {"proto", [](const A& a) { return protocolName(a.flow().protocol()); }},
              {"flow", [](const A& a) { return flowText(a.flow()); }},
              {"packets", [](const A& a) { return std::to_string(a.flow().packets()); }},
              {"bytes", [](const A& a) { return std::to_string(a.flow().bytes()); }},
              {"first", [](const A& a) { return flowTime(a.flow().first_seen_ns()); }},
              {"last", [](const A& a) { return flowTime(a.flow().last_seen_ns()); }},
              {"refused",
               [](const A& a) { return a.flow().refused().empty() ? "-" : a.flow().refused(); }},
          }};
}

// Each slice of the answer once, with who answers for it.
void printContacts(Printer& out, const v1::GetFlowsResponse& response) {
  std::map<std::string, const v1::AuditedFlow*> slices;
  for (const auto& a : response.flows()) {
    if (!a.flow().slice_name().empty()) slices.emplace(a.flow().slice_name(), &a);
  }
  if (slices.empty()) return;
  out.out() << "\nWho answers for these slices:\n";
  Table table({"SLICE", "DESCRIPTION", "URL", "CONTACTS"});
  for (const auto& [name, a] : slices) {
    std::string contacts;
    for (const auto& c : a->contacts()) {
      if (!contacts.empty()) contacts += ", ";
      contacts += c.name() + " <" + c.email() + "> (" + c.role() + ")";
    }
    auto description = a->slice_description();
    if (auto nl = description.find('\n'); nl != std::string::npos) {
      description = description.substr(0, nl) + " ...";
    }
    table.addRow({name, description.empty() ? "-" : description,
                  a->slice_url().empty() ? "-" : a->slice_url(),
                  contacts.empty() ? "-" : contacts});
  }
  table.print(out.out());
}

void audit(Invocation& inv) {
  v1::GetFlowsRequest request;
  request.set_dst(*inv.args.value("dst"));
  const auto now = unixNow();
  if (auto since = inv.args.value("since")) {
    request.set_since(parseTimeOrAgo(*since, "--since", now));
  }
  if (auto until = inv.args.value("until")) {
    request.set_until(parseTimeOrAgo(*until, "--until", now));
  }
  request.set_node(inv.args.valueOr("node", ""));
  request.set_slice(inv.args.valueOr("slice", ""));
  if (auto limit = inv.args.value("limit")) {
    request.set_limit(parseInt32(*limit, "--limit", 1));
  }
  const auto response = inv.plc().call(&v1::Admin::Stub::GetFlows, request);
  if (inv.out.json()) {
    // The truncated flag lives beside the list: print the whole response.
    inv.out.printJson(response);
    return;
  }
  inv.out.list(response.flows(), auditedFlowView());
  if (response.truncated()) {
    inv.out.err() << "more flows matched than --limit " << response.flows_size()
                  << " shows; narrow the window, the node or the slice, or raise --limit\n";
  }
  printContacts(inv.out, response);
}

}  // namespace

void addAuditCommands(CommandTable& table) {
  table.section("Auditing");
  table.add({
      .path = "audit",
      .summary = "Who sent traffic to an address: flows from every node, with the slices' PIs",
      .flags = {flag::required("dst", "ADDR", "the destination: an address or CIDR prefix"),
                flag::value("since", "TIME",
                            "flows seen at or after TIME, or this long ago "
                            "(default: the last hour)"),
                flag::value("until", "TIME", "flows seen at or before TIME (default: now)"),
                flag::value("node", "HOSTNAME", "only flows from this node"),
                flag::value("slice", "SLICE", "only flows of this slice"),
                flag::value("limit", "N", "at most N flows (PLC's default 1000, max 100000)")},
      .examples = {"plcctl audit --dst 192.0.2.7",
                   "plcctl audit --dst 192.0.2.0/24 --since 7d --node planetlab1.cs.example.edu",
                   "plcctl audit --dst 2001:db8::/48 --since '2026-12-01 00:00' --until "
                   "'2026-12-02 00:00' -o json"},
      .run = audit,
      .details = "Nodes ship the flows their slices send to PLC, which keeps them for "
                 "flow_retention_days (90 by default). Anyone with an account may ask, as "
                 "PlanetLab's auditing service answered anyone: the answer names the slices "
                 "and the PIs who answer for them. A flow counts when it was seen in the "
                 "window; the latest come first.",
  });
}

}  // namespace plcctl

#include "plc/flow_archive.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <limits>
#include <set>

#include "plc/admin_views.h"
#include "plc/errors.h"
#include "plc/slice_contacts.h"
#include "plc/validate.h"

namespace plng::plc {

namespace pb = planetlab::v1;
using std::chrono::sys_days;

namespace {

// Serialises making and dropping partitions across plcd replicas.
constexpr int kPartitionLock = 7002;
// Serialises one node's batches, so its daily count holds.
constexpr int kNodeFlowLock = 7003;

constexpr std::int64_t kNsPerDay = 86400LL * 1000000000LL;
constexpr std::size_t kMaxBatchId = 64;
constexpr std::size_t kMaxRefused = 32;
constexpr auto kInt64Max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

bool allOf(const std::string& text, bool (*allowed)(char)) {
  for (char c : text) {
    if (!allowed(c)) return false;
  }
  return true;
}

bool batchIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

bool refusedChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

sys_days dayOf(std::int64_t unix_ns) { return sys_days{std::chrono::days{unix_ns / kNsPerDay}}; }

// The first day whose partition is still kept at `now`: its end is within
// retention_days of now.
sys_days firstKeptDay(int retention_days, std::chrono::system_clock::time_point now) {
  auto cutoff = now - std::chrono::days{retention_days};
  return std::chrono::floor<std::chrono::days>(cutoff);
}

// `day` as "<prefix>YYYY<separator>MM<separator>DD<suffix>".
std::string dayText(sys_days day, const char* prefix, const char* separator, const char* suffix) {
  std::chrono::year_month_day ymd{day};
  char text[40];
  std::snprintf(text, sizeof text, "%s%04d%s%02u%s%02u%s", prefix, static_cast<int>(ymd.year()),
                separator, static_cast<unsigned>(ymd.month()), separator,
                static_cast<unsigned>(ymd.day()), suffix);
  return text;
}

std::string utcMidnight(sys_days day) { return dayText(day, "", "-", " 00:00:00+00"); }

std::string addressText(const std::string& bytes) {
  char text[INET6_ADDRSTRLEN];
  inet_ntop(bytes.size() == 4 ? AF_INET : AF_INET6, bytes.data(), text, sizeof text);
  return text;
}

std::string addressBytes(const std::string& text) {
  unsigned char buf[16];
  const bool v6 = text.find(':') != std::string::npos;
  if (inet_pton(v6 ? AF_INET6 : AF_INET, text.c_str(), buf) != 1) return "";
  return std::string(reinterpret_cast<const char*>(buf), v6 ? 16 : 4);
}

void ensurePartition(Database& db, sys_days day) {
  const auto name = flowPartitionName(day);
  auto exists = db.readStatement([&](pqxx::transaction_base& tx) {
    return tx.exec_params1("SELECT to_regclass($1) IS NOT NULL", name)[0].as<bool>();
  });
  if (exists) return;
  db.write([&](pqxx::work& tx) {
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kPartitionLock);
    tx.exec0("CREATE TABLE IF NOT EXISTS " + tx.quote_name(name) + " PARTITION OF flows" +
             " FOR VALUES FROM (" + tx.quote(utcMidnight(day)) + ") TO (" +
             tx.quote(utcMidnight(day + std::chrono::days{1})) + ")");
  });
  spdlog::info("flow archive: partition {} created", name);
}

}  // namespace

std::string flowPartitionName(sys_days day) { return dayText(day, "flows_", "", ""); }

void validateFlowBatch(const pb::ReportFlowsRequest& batch, const PlcConfig& config,
                       std::int64_t now_ns) {
  const auto& id = batch.batch_id();
  if (id.empty() || id.size() > kMaxBatchId || !allOf(id, batchIdChar)) {
    invalidArgument("batch_id " + quoteForMessage(id) + " is invalid: 1 to " +
                    std::to_string(kMaxBatchId) +
                    " letters, digits and . _ : - naming the batch (a repeated batch is stored"
                    " once)");
  }
  if (batch.flows_size() > config.flow_batch_max) {
    invalidArgument("a batch carries at most " + std::to_string(config.flow_batch_max) +
                    " flows (flow_batch_max), not " + std::to_string(batch.flows_size()) +
                    "; send the rest in further batches");
  }
  if (batch.dropped() > kInt64Max) invalidArgument("dropped is out of range");
  for (int i = 0; i < batch.flows_size(); ++i) {
    const auto& f = batch.flows(i);
    const std::string at = "flows[" + std::to_string(i) + "].";
    if (!f.slice_name().empty()) {
      try {
        validateSliceName(f.slice_name());
      } catch (const ApiError& e) {
        invalidArgument(at + "slice_name: " + e.what());
      }
    }
    const auto family = f.src_addr().size();
    if (family != 4 && family != 16) {
      invalidArgument(at + "src_addr must be 4 bytes (IPv4) or 16 (IPv6), not " +
                      std::to_string(family));
    }
    if (f.dst_addr().size() != family) {
      invalidArgument(at + "dst_addr must be " + std::to_string(family) +
                      " bytes, as src_addr, not " + std::to_string(f.dst_addr().size()));
    }
    if (f.protocol() > 255) {
      invalidArgument(at + "protocol must be an IP protocol number 0..255, not " +
                      std::to_string(f.protocol()));
    }
    if (f.src_port() > 65535 || f.dst_port() > 65535) {
      invalidArgument(at + "src_port and dst_port must be 0..65535");
    }
    if (f.tcp_flags() > 255) invalidArgument(at + "tcp_flags must be 0..255");
    if (f.packets() > kInt64Max || f.bytes() > kInt64Max) {
      invalidArgument(at + "packets and bytes are out of range");
    }
    if (f.first_seen_ns() <= 0 || f.last_seen_ns() < f.first_seen_ns()) {
      invalidArgument(at +
                      "first_seen_ns must be a unix time in nanoseconds after 1970 and "
                      "last_seen_ns at least first_seen_ns");
    }
    if (f.last_seen_ns() > now_ns + kFlowClockSkewNs) {
      invalidArgument(at + "last_seen_ns is more than an hour ahead of PLC's clock (" +
                      utcTime(now_ns / 1000000000) + "); is the node's clock right?");
    }
    if (f.refused().size() > kMaxRefused || !allOf(f.refused(), refusedChar)) {
      invalidArgument(at + "refused " + quoteForMessage(f.refused()) +
                      " is invalid: empty (sent) or a reason of at most " +
                      std::to_string(kMaxRefused) + " characters a-z, 0-9, _");
    }
  }
}

std::int64_t storeFlowBatch(Database& db, const PlcConfig& config, std::int64_t node_id,
                            const pb::ReportFlowsRequest& batch,
                            std::chrono::system_clock::time_point now) {
  const auto first_kept = firstKeptDay(config.flow_retention_days, now);
  std::vector<const pb::FlowRecord*> kept;
  std::set<sys_days> days;
  for (const auto& f : batch.flows()) {
    auto day = dayOf(f.first_seen_ns());
    if (day < first_kept) continue;
    kept.push_back(&f);
    days.insert(day);
  }
  for (auto day : days) ensurePartition(db, day);

  std::vector<std::string> slice_names, srcs, dsts, refused;
  std::vector<std::int64_t> xids, protocols, src_ports, dst_ports, tcp_flags, packets, bytes,
      first_us, last_us;
  for (const auto* f : kept) {
    slice_names.push_back(f->slice_name());
    xids.push_back(f->xid());
    protocols.push_back(f->protocol());
    srcs.push_back(addressText(f->src_addr()));
    dsts.push_back(addressText(f->dst_addr()));
    src_ports.push_back(f->src_port());
    dst_ports.push_back(f->dst_port());
    tcp_flags.push_back(f->tcp_flags());
    packets.push_back(static_cast<std::int64_t>(f->packets()));
    bytes.push_back(static_cast<std::int64_t>(f->bytes()));
    first_us.push_back(f->first_seen_ns() / 1000);
    last_us.push_back(f->last_seen_ns() / 1000);
    refused.push_back(f->refused());
  }
  const auto stored = static_cast<std::int64_t>(kept.size());

  return db.write([&](pqxx::work& tx) -> std::int64_t {
    tx.exec_params("SELECT pg_advisory_xact_lock($1, ($2 % 2147483647)::integer)", kNodeFlowLock,
                   node_id);
    auto earlier =
        tx.exec_params("SELECT flows FROM flow_batches WHERE node_id = $1 AND batch_id = $2",
                       node_id, batch.batch_id());
    if (!earlier.empty()) return earlier[0][0].as<std::int64_t>();
    auto today = tx.exec_params1(
                       "SELECT coalesce(sum(flows), 0)::bigint FROM flow_batches"
                       " WHERE node_id = $1 AND received_at > now() - interval '1 day'",
                       node_id)[0]
                     .as<std::int64_t>();
    if (today + stored > config.flow_node_daily_max) {
      resourceExhausted("this node stored " + std::to_string(today) +
                        " flows in the last 24 hours; PLC takes at most " +
                        std::to_string(config.flow_node_daily_max) +
                        " (flow_node_daily_max): keep the batch and send it later");
    }
    tx.exec_params0(
        "INSERT INTO flow_batches (node_id, batch_id, flows, dropped) VALUES ($1, $2, $3, $4)",
        node_id, batch.batch_id(), stored, static_cast<std::int64_t>(batch.dropped()));
    if (stored == 0) return std::int64_t{0};
    tx.exec_params0(
        "INSERT INTO flows (node_id, slice_name, xid, slice_id, protocol, src, dst, src_port,"
        " dst_port, tcp_flags, packets, bytes, first_seen, last_seen, refused)"
        " SELECT $1, u.slice_name, u.xid,"
        "  (SELECT sl.slice_id FROM slices sl WHERE sl.xid = u.xid AND sl.name = u.slice_name),"
        "  u.protocol, u.src, u.dst, u.src_port, u.dst_port, u.tcp_flags, u.packets, u.bytes,"
        "  'epoch'::timestamptz + u.first_us * interval '1 microsecond',"
        "  'epoch'::timestamptz + u.last_us * interval '1 microsecond', u.refused"
        " FROM unnest($2::text[], $3::bigint[], $4::smallint[], $5::inet[], $6::inet[],"
        "  $7::integer[], $8::integer[], $9::smallint[], $10::bigint[], $11::bigint[],"
        "  $12::bigint[], $13::bigint[], $14::text[])"
        " AS u(slice_name, xid, protocol, src, dst, src_port, dst_port, tcp_flags, packets,"
        "  bytes, first_us, last_us, refused)",
        node_id, pgTextArray(slice_names), pgIdArray(xids), pgIdArray(protocols), pgTextArray(srcs),
        pgTextArray(dsts), pgIdArray(src_ports), pgIdArray(dst_ports), pgIdArray(tcp_flags),
        pgIdArray(packets), pgIdArray(bytes), pgIdArray(first_us), pgIdArray(last_us),
        pgTextArray(refused));
    return stored;
  });
}

pb::GetFlowsResponse queryFlows(pqxx::transaction_base& tx, const FlowQuery& query) {
  const auto rows = tx.exec_params(
      "SELECT n.hostname, f.slice_name, f.xid, f.protocol, host(f.src), host(f.dst),"
      " f.src_port, f.dst_port, f.tcp_flags, f.packets, f.bytes,"
      " (extract(epoch FROM f.first_seen) * 1000000)::bigint,"
      " (extract(epoch FROM f.last_seen) * 1000000)::bigint, f.refused,"
      " coalesce(f.slice_id, 0)"
      " FROM flows f JOIN nodes n USING (node_id)"
      " WHERE f.dst <<= $1::inet"
      " AND f.first_seen <= to_timestamp($3::bigint) AND f.last_seen >= to_timestamp($2::bigint)"
      " AND ($4::bigint = 0 OR f.node_id = $4::bigint)"
      " AND ($5::text = '' OR f.slice_name = $5::text)"
      " ORDER BY f.last_seen DESC, f.first_seen DESC, n.hostname"
      " LIMIT $6",
      query.dst, query.since, query.until, query.node_id, query.slice, query.limit + 1);
  pb::GetFlowsResponse response;
  std::vector<std::int64_t> slice_ids;
  std::vector<std::int64_t> row_slices;
  for (const auto& r : rows) {
    if (response.flows_size() == query.limit) {
      response.set_truncated(true);
      break;
    }
    auto* audited = response.add_flows();
    audited->set_node(r[0].as<std::string>());
    auto* f = audited->mutable_flow();
    f->set_slice_name(r[1].as<std::string>());
    f->set_xid(r[2].as<std::uint32_t>());
    f->set_protocol(r[3].as<std::uint32_t>());
    f->set_src_addr(addressBytes(r[4].as<std::string>()));
    f->set_dst_addr(addressBytes(r[5].as<std::string>()));
    f->set_src_port(r[6].as<std::uint32_t>());
    f->set_dst_port(r[7].as<std::uint32_t>());
    f->set_tcp_flags(r[8].as<std::uint32_t>());
    f->set_packets(r[9].as<std::uint64_t>());
    f->set_bytes(r[10].as<std::uint64_t>());
    f->set_first_seen_ns(r[11].as<std::int64_t>() * 1000);
    f->set_last_seen_ns(r[12].as<std::int64_t>() * 1000);
    f->set_refused(r[13].as<std::string>());
    row_slices.push_back(r[14].as<std::int64_t>());
    if (row_slices.back() != 0) slice_ids.push_back(row_slices.back());
  }
  auto contacts = sliceContacts(tx, slice_ids);
  for (int i = 0; i < response.flows_size(); ++i) {
    auto it = contacts.find(row_slices[static_cast<std::size_t>(i)]);
    if (it == contacts.end()) continue;
    auto* audited = response.mutable_flows(i);
    audited->set_slice_description(it->second.description);
    audited->set_slice_url(it->second.url);
    for (const auto& c : it->second.contacts) *audited->add_contacts() = c;
  }
  return response;
}

int dropExpiredFlowPartitions(Database& db, int retention_days,
                              std::chrono::system_clock::time_point now) {
  const auto first_kept = flowPartitionName(firstKeptDay(retention_days, now));
  const auto cutoff_s = std::chrono::duration_cast<std::chrono::seconds>(
                            (now - std::chrono::days{retention_days}).time_since_epoch())
                            .count();
  auto dropped = db.write([&](pqxx::work& tx) {
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kPartitionLock);
    // flows_YYYYMMDD names sort as their days do.
    std::vector<std::string> names;
    for (const auto& r :
         tx.exec_params("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                        " WHERE i.inhparent = 'flows'::regclass AND c.relname ~ '^flows_[0-9]{8}$'"
                        " AND c.relname < $1 ORDER BY c.relname",
                        first_kept)) {
      names.push_back(r[0].as<std::string>());
    }
    for (const auto& name : names) tx.exec0("DROP TABLE " + tx.quote_name(name));
    tx.exec_params0("DELETE FROM flow_batches WHERE received_at < to_timestamp($1::bigint)",
                    cutoff_s);
    return names;
  });
  for (const auto& name : dropped) spdlog::info("flow archive: partition {} dropped", name);
  return static_cast<int>(dropped.size());
}

FlowRetention::FlowRetention(Database& db, int retention_days, std::chrono::milliseconds interval)
    : task_("flow retention sweep", interval, [&db, retention_days] {
        dropExpiredFlowPartitions(db, retention_days, std::chrono::system_clock::now());
      }) {}

}  // namespace plng::plc

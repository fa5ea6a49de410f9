// plcd's configuration: a config file read by base::ConfigTable. Every key has a
// documented default (`plcd print-config`; deploy/plcd.conf lists them all and a
// test keeps the two identical); unknown keys and bad values are errors.
#pragma once

#include <cstdint>
#include <string>

#include "base/config.h"

namespace plng::plc {

struct PlcConfig {
  std::string listen = "127.0.0.1:8620";
  std::string database = "dbname=plc";
  int db_pool_size = 16;
  std::string log_level = "info";
  std::string tls_cert;  // PEM; empty = plaintext (loopback only)
  std::string tls_key;
  // Prometheus' GET /metrics (docs/metrics.md); empty = off. Loopback by
  // default: a scraper elsewhere reaches it through a proxy or a deliberate
  // address here.
  std::string metrics_listen = "127.0.0.1:9620";
  // The portal and the JSON API (docs/portal.md): HTTP(S) address, "" = off;
  // HTTPS with tls_cert/tls_key when those are set.
  std::string portal_listen;
  std::string portal_root;  // the built portal's directory; "" = the JSON API only
  std::int64_t portal_max_body_bytes = 1 << 20;
  int portal_threads = 8;

  std::int64_t session_ttl = 24 * 3600;
  std::int64_t api_token_ttl = 365 * 24 * 3600;
  std::int64_t node_session_ttl = 24 * 3600;
  std::int64_t node_challenge_ttl = 120;
  // Caller cache. Every change anywhere (a NOTIFY) clears it, and session expiry is
  // checked on each hit, so the TTL only bounds staleness while the change
  // listener is disconnected.
  int auth_cache_ms = 60000;
  int scrypt_log2_n = 15;  // password KDF cost (scrypt N = 2^value, r = 8, p = 1)

  int default_max_slices = 10;
  int default_max_slivers = 1000;
  int default_max_nodes = 100;
  std::int64_t slice_default_lifetime = 14 * 24 * 3600;  // two weeks
  std::int64_t slice_max_renewal = 8 * 7 * 24 * 3600;    // non-admins: now + 8 weeks
  std::int64_t ticket_lifetime = 7 * 24 * 3600;
  std::int64_t ticket_clock_skew = 300;  // not_before = now - skew
  int watch_recheck_s = 30;  // an open WatchSlivers stream is its node's contact this often
  int watch_resync_s = 600;  // each stream is recomputed whole at least this often
  int stream_workers = 4;    // threads computing WatchSlivers streams' states

  // Password guessing (docs/plc.md, Authentication). Per account, in the database
  // (every replica sees the same count): after `login_free_failures` failed logins
  // an account must wait login_lockout_base_s, doubling with each further failure,
  // at most login_lockout_max_s; a success or a password change clears it.
  int login_free_failures = 5;
  int login_lockout_base_s = 2;
  int login_lockout_max_s = 900;
  int login_failure_window_s = 3600;    // failures older than this are forgotten
  int login_failure_rows_max = 100000;  // login names remembered at most
  // Per client address, in each plcd's memory: failed logins and node logins.
  int login_source_burst = 20;
  int login_source_refill_s = 30;
  // Tokens one holder keeps: a new login past max_login_sessions ends the oldest;
  // API tokens past max_api_tokens_per_person are refused.
  int max_login_sessions = 100;
  int max_api_tokens_per_person = 100;

  // Joining and registration (docs/plc.md, "Joining and registration"): the
  // anonymous RequestSite and RegisterPerson calls per client address, in each
  // plcd's memory (every call counts, whatever its outcome); sites requested and
  // not yet approved, in all; disabled members of one site (registered people
  // awaiting a PI, among others).
  int join_source_burst = 10;
  int join_source_refill_s = 360;
  int max_pending_sites = 100;
  int max_pending_persons_per_site = 50;

  // What one person or slice can make PLC store and send to nodes (docs/plc.md,
  // Limits: the worst-case size of a node's state follows from these).
  int max_keys_per_person = 10;
  int max_key_length = 2048;  // an OpenSSH public key line, comment included
  int max_key_comment_length = 256;
  int max_slice_members = 1000;
  int max_slice_key_bytes = 65536;   // a slice's member keys as nodes receive them
  int max_slice_tags = 100;          // slice tags of one slice, every scope
  int max_tag_value_length = 16384;  // one tag value (an initscript is one)
  int max_slice_tag_bytes = 32768;   // a slice's tags, names and values

  // The flow archive (docs/plc.md, "Flow archive"): days of flows kept (whole
  // days: a day's partition is dropped once all of it is older), flows one
  // ReportFlows batch may carry, flows one node may store in 24 hours.
  int flow_retention_days = 90;
  int flow_batch_max = 10000;
  int flow_node_daily_max = 5000000;

  // Node health (docs/plc.md, "Node health"): reports kept per node (every
  // report, one per net_budget_interval_s: 30 s by default, so 120 is an hour),
  // and how long a node may be silent (no contact, no report) before it is
  // shown as down (CoMon showed nodes down after minutes).
  int node_status_history = 120;
  int node_down_after_s = 300;

  // Expiry reminders (docs/plc.md, "Expiry reminders"): mail through an SMTP
  // relay without authentication (an MTA on the PLC host), plain unless
  // smtp_starttls, off while smtp_server is empty. smtp_from is then required.
  std::string smtp_server;  // host:port
  std::string smtp_from;
  std::string smtp_helo;  // empty: this host's name
  int smtp_timeout_s = 30;
  bool smtp_starttls = false;
  std::string smtp_ca_file;  // empty: the system's CAs
  std::string slice_reminder_days = "7,1";
  int slice_reminder_interval_s = 300;
  std::string portal_url;  // named in reminder mails; empty: not named
};

// Every key of PlcConfig: its meaning, type and allowed values.
const plng::base::ConfigTable<PlcConfig>& plcdConfigTable();

}  // namespace plng::plc

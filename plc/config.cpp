#include "plc/config.h"

#include "app/logging.h"
#include "plc/db.h"
#include "plc/expiry_reminders.h"
#include "plc/smtp_client.h"

namespace plng::plc {

const plng::base::ConfigTable<PlcConfig>& plcdConfigTable() {
  using C = PlcConfig;
  // Limits of zero or below would refuse everything or nothing: refused at start.
  static const auto kTable =
      plng::base::ConfigTable<PlcConfig>("plcd")
          .string("listen", &C::listen,
                  "gRPC listen address (host:port), or several separated by commas (the local "
                  "planet: loopback and the address its nodes reach)",
                  plng::base::requireNotEmpty)
          .string("database", &C::database,
                  "libpq connection string of PLC's PostgreSQL database, as a role that "
                  "owns it and nothing more (never a superuser); over a network with "
                  "sslmode=verify-full; the password in a passfile (docs/plc.md). A primary "
                  "and its standbys: host=a,b ... target_session_attrs=read-write "
                  "(docs/database-failover.md)",
                  [](const std::string& value) {
                    plng::base::requireNotEmpty(value);
                    checkDatabaseConnectionString(value);
                  })
          .integer("db_pool_size", &C::db_pool_size, "database connections per plcd", 1, 1000)
          .string("log_level", &C::log_level, "trace, debug, info, warn or error",
                  plng::app::checkLogLevel)
          .string("tls_cert", &C::tls_cert, "PEM certificate chain for TLS; empty = plaintext")
          .string("tls_key", &C::tls_key, "PEM private key for TLS")
          .string("metrics_listen", &C::metrics_listen,
                  "address (host:port) of Prometheus' GET /metrics (docs/metrics.md); empty = "
                  "off; keep it on loopback or a monitoring network")
          .string("portal_listen", &C::portal_listen,
                  "address (host:port) of the portal and the JSON API (docs/portal.md); empty "
                  "= off; HTTPS when tls_cert and tls_key are set")
          .string("portal_root", &C::portal_root,
                  "directory of the built portal (index.html and its files, the build's "
                  "web/dist or share/plng/portal when installed); empty = the JSON API only")
          .integer("portal_max_body_bytes", &C::portal_max_body_bytes,
                   "largest JSON request body, bytes (larger: 413)", 1024, 64 << 20)
          .integer("portal_threads", &C::portal_threads,
                   "threads serving portal and JSON requests (each JSON call holds one)", 1, 256)
          .integer("session_ttl", &C::session_ttl, "seconds a Login session lasts", 1)
          .integer("api_token_ttl", &C::api_token_ttl,
                   "default and longest lifetime of API tokens, seconds", 1)
          .integer("node_session_ttl", &C::node_session_ttl, "seconds a node session lasts", 1)
          .integer("node_challenge_ttl", &C::node_challenge_ttl,
                   "seconds a node login challenge stays valid", 1)
          .integer("auth_cache_ms", &C::auth_cache_ms,
                   "milliseconds a resolved token is cached (cleared on every change)", 0)
          // scrypt needs 1 KiB * N here; plcd allows it 256 MiB (auth.cpp).
          .integer("scrypt_log2_n", &C::scrypt_log2_n, "password hashing cost: scrypt N = 2^value",
                   10, 17)
          .integer("default_max_slices", &C::default_max_slices, "max_slices of a new site", 0)
          .integer("default_max_slivers", &C::default_max_slivers, "max_slivers of a new site", 0)
          .integer("default_max_nodes", &C::default_max_nodes, "max_nodes of a new slice", 0)
          .integer("slice_default_lifetime", &C::slice_default_lifetime,
                   "seconds a new slice lives before it expires", 1)
          .integer("slice_max_renewal", &C::slice_max_renewal,
                   "non-admins may renew up to now + this many seconds", 1)
          .integer("ticket_lifetime", &C::ticket_lifetime,
                   "seconds a ticket is valid (capped by slice expiry)", 1)
          .integer("ticket_clock_skew", &C::ticket_clock_skew,
                   "tickets are valid from this many seconds ago", 0)
          .integer("watch_recheck_s", &C::watch_recheck_s,
                   "seconds between records of last contact for the nodes of open WatchSlivers "
                   "streams (one batch)",
                   1)
          .integer("watch_resync_s", &C::watch_resync_s,
                   "each open WatchSlivers stream's state is recomputed whole at least this often, "
                   "seconds (a safety net: every change notifies its nodes)",
                   1)
          .integer("stream_workers", &C::stream_workers,
                   "threads that compute the states of open WatchSlivers streams (a stream "
                   "holds no thread while it waits)",
                   1)
          .integer("login_free_failures", &C::login_free_failures,
                   "failed logins of one account before it must wait between attempts", 0)
          .integer("login_lockout_base_s", &C::login_lockout_base_s,
                   "an account's first wait after those, seconds; doubles per further failure", 1)
          .integer("login_lockout_max_s", &C::login_lockout_max_s,
                   "the longest an account waits between failed logins", 1)
          .integer("login_failure_window_s", &C::login_failure_window_s,
                   "seconds without a failed login after which an account's count is forgotten", 1)
          .integer("login_failure_rows_max", &C::login_failure_rows_max,
                   "login names (known or not) whose failures are remembered at most", 1)
          .integer("login_source_burst", &C::login_source_burst,
                   "failed logins and node logins one client address may make in a row (also: "
                   "how many calls without a valid token from one address are recorded as "
                   "events)",
                   1)
          .integer(
              "login_source_refill_s", &C::login_source_refill_s,
              "a client address gets one more failed login every this many seconds; 0 = no limit",
              0)
          .integer("max_login_sessions", &C::max_login_sessions,
                   "live login sessions of one person or node; a new login ends the oldest", 1)
          .integer("max_api_tokens_per_person", &C::max_api_tokens_per_person,
                   "live API tokens of one person", 1)
          .integer("join_source_burst", &C::join_source_burst,
                   "RequestSite and RegisterPerson calls without a token one client address may "
                   "make in a row",
                   1)
          .integer("join_source_refill_s", &C::join_source_refill_s,
                   "a client address gets one more RequestSite or RegisterPerson call every this "
                   "many seconds; 0 = no limit",
                   0)
          .integer("max_pending_sites", &C::max_pending_sites,
                   "sites requested (RequestSite) and not yet approved, in all", 1)
          .integer("max_pending_persons_per_site", &C::max_pending_persons_per_site,
                   "disabled members of one site; RegisterPerson beyond is refused", 1)
          .integer("max_keys_per_person", &C::max_keys_per_person, "SSH keys one person may have",
                   1)
          .integer("max_key_length", &C::max_key_length,
                   "bytes of an SSH public key line, comment included", 1)
          .integer("max_key_comment_length", &C::max_key_comment_length,
                   "bytes of an SSH key's comment", 1)
          .integer("max_slice_members", &C::max_slice_members, "members of one slice", 1)
          .integer("max_slice_key_bytes", &C::max_slice_key_bytes,
                   "bytes of a slice's member keys on a node (each key: line, email, 16)", 1)
          .integer("max_slice_tags", &C::max_slice_tags,
                   "slice tags of one slice, every scope counted", 1)
          .integer("max_tag_value_length", &C::max_tag_value_length,
                   "bytes of one tag value (an initscript is one)", 1)
          .integer("max_slice_tag_bytes", &C::max_slice_tag_bytes,
                   "bytes of a slice's tags, every scope (each tag: name, value, 16)", 1)
          .integer("flow_retention_days", &C::flow_retention_days,
                   "days of flow records PLC keeps; older days' partitions are dropped", 1, 36500)
          .integer("flow_batch_max", &C::flow_batch_max,
                   "flow records one ReportFlows batch may carry", 1, 1000000)
          .integer("flow_node_daily_max", &C::flow_node_daily_max,
                   "flow records one node may store in 24 hours; more are refused", 1)
          .integer("node_status_history", &C::node_status_history,
                   "status reports PLC keeps per node (the newest; older ones are pruned as new "
                   "ones arrive)",
                   1, 100000)
          .integer("node_down_after_s", &C::node_down_after_s,
                   "seconds without contact or report after which a node is shown as down", 1)
          .string("smtp_server", &C::smtp_server,
                  "host:port of the SMTP relay that slice expiry reminders are mailed through "
                  "(no authentication; plain unless smtp_starttls; an MTA on this host or its "
                  "network); empty = no reminders",
                  [](const std::string& value) {
                    if (!value.empty()) parseSmtpServer(value);
                  })
          .string("smtp_from", &C::smtp_from,
                  "the From address of PLC's mail (required with smtp_server)",
                  [](const std::string& value) {
                    if (value.empty()) return;
                    try {
                      checkMailAddress("address", value);
                    } catch (const MailError& e) {
                      throw std::invalid_argument(e.what());
                    }
                  })
          .string("smtp_helo", &C::smtp_helo,
                  "the name plcd gives in SMTP's EHLO; empty = this host's name",
                  [](const std::string& value) {
                    if (value.find_first_of(" \t\r\n") != std::string::npos)
                      throw std::invalid_argument("a host name has no blanks");
                  })
          .integer("smtp_timeout_s", &C::smtp_timeout_s,
                   "seconds plcd waits for the SMTP server to connect and to answer each command",
                   1, 600)
          .boolean("smtp_starttls", &C::smtp_starttls,
                   "require STARTTLS: mail only over TLS, with a certificate valid for "
                   "smtp_server's host name")
          .string("smtp_ca_file", &C::smtp_ca_file,
                  "PEM CA certificates trusted for the relay's certificate (smtp_starttls); "
                  "empty = the system's")
          .string("slice_reminder_days", &C::slice_reminder_days,
                  "days before a slice expires that its members are mailed a reminder, a list "
                  "(7,1); a slice within several gets only the nearest",
                  [](const std::string& value) { parseReminderDays(value); })
          .integer("slice_reminder_interval_s", &C::slice_reminder_interval_s,
                   "seconds between plcd's looks for slice expiry reminders due", 1, 86400)
          .string("portal_url", &C::portal_url,
                  "address of PLC's web portal, named in reminder mails; empty = not named")
          .rule(
              {"login_lockout_base_s", "login_lockout_max_s"},
              [](const C& c) { return c.login_lockout_max_s >= c.login_lockout_base_s; },
              "login_lockout_max_s must be at least login_lockout_base_s")
          .rule(
              {"smtp_server", "smtp_from"},
              [](const C& c) { return c.smtp_server.empty() || !c.smtp_from.empty(); },
              "smtp_from must be set when smtp_server is: the From address of slice expiry "
              "reminders (e.g. smtp_from = plc@planet.example.org)");
  return kTable;
}

}  // namespace plng::plc

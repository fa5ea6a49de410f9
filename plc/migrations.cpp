// PLC's schema, as numbered append-only migrations. Each runs in one transaction
// (Database::migrate). To change the schema, append a migration; never edit one
// that has been released.
#include "plc/db.h"

namespace plng::plc {

namespace {

constexpr const char* kInitialSchema = R"SQL(
-- One row: the version of the whole PLC state, bumped by every change.
-- expiries_seen_until: slice expiries up to this instant have been announced
-- (ExpirySweeper bumps the version when a slice expires, as expiry is not a write).
CREATE TABLE plc_state (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  version bigint NOT NULL,
  expiries_seen_until timestamptz NOT NULL DEFAULT now()
);
INSERT INTO plc_state (version) VALUES (1);

-- ----------------------------------------------------------------- AdminDB
CREATE TABLE sites (
  site_id     bigserial PRIMARY KEY,
  login_base  text NOT NULL,
  name        text NOT NULL,
  url         text NOT NULL DEFAULT '',
  enabled     boolean NOT NULL DEFAULT true,
  max_slices  integer NOT NULL CHECK (max_slices >= 0),
  max_slivers integer NOT NULL CHECK (max_slivers >= 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  deleted_at  timestamptz
);
CREATE UNIQUE INDEX sites_login_base_live ON sites (login_base) WHERE deleted_at IS NULL;

CREATE TABLE organizations (
  organization_id bigserial PRIMARY KEY,
  name            text NOT NULL UNIQUE,
  description     text NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE organization_sites (
  organization_id bigint NOT NULL REFERENCES organizations ON DELETE CASCADE,
  site_id         bigint NOT NULL REFERENCES sites,
  PRIMARY KEY (organization_id, site_id)
);

CREATE TABLE persons (
  person_id     bigserial PRIMARY KEY,
  email         text NOT NULL,
  first_name    text NOT NULL,
  last_name     text NOT NULL,
  password_hash text NOT NULL,
  enabled       boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  deleted_at    timestamptz
);
CREATE UNIQUE INDEX persons_email_live ON persons (lower(email)) WHERE deleted_at IS NULL;

CREATE TABLE person_sites (
  person_id  bigint NOT NULL REFERENCES persons,
  site_id    bigint NOT NULL REFERENCES sites,
  is_primary boolean NOT NULL DEFAULT false,
  PRIMARY KEY (person_id, site_id)
);
CREATE UNIQUE INDEX person_sites_one_primary ON person_sites (person_id) WHERE is_primary;

-- Roles are per site (pi, tech, user); admin is global (site_id NULL).
CREATE TABLE person_roles (
  person_id bigint NOT NULL REFERENCES persons,
  role      text NOT NULL CHECK (role IN ('admin', 'pi', 'tech', 'user')),
  site_id   bigint REFERENCES sites,
  CHECK ((role = 'admin') = (site_id IS NULL))
);
CREATE UNIQUE INDEX person_roles_unique ON person_roles (person_id, role, coalesce(site_id, 0));

CREATE TABLE keys (
  key_id      bigserial PRIMARY KEY,
  person_id   bigint NOT NULL REFERENCES persons,
  key_type    text NOT NULL,
  key_text    text NOT NULL,
  fingerprint text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (person_id, fingerprint)
);
CREATE INDEX keys_fingerprint ON keys (fingerprint);

CREATE TABLE key_blacklist (
  fingerprint text PRIMARY KEY,
  key_text    text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tag_types (
  tag_type_id   bigserial PRIMARY KEY,
  name          text NOT NULL UNIQUE,
  description   text NOT NULL DEFAULT '',
  category      text NOT NULL DEFAULT '',
  min_role      text NOT NULL CHECK (min_role IN ('admin', 'pi', 'tech', 'user')),
  value_kind    text NOT NULL
                CHECK (value_kind IN ('int', 'bytes', 'rate', 'string', 'bool', 'ports',
                                      'capabilities')),
  default_value text NOT NULL DEFAULT ''
);

CREATE TABLE nodes (
  node_id      bigserial PRIMARY KEY,
  hostname     text NOT NULL,
  site_id      bigint NOT NULL REFERENCES sites,
  boot_state   text NOT NULL CHECK (boot_state IN ('boot', 'safeboot', 'reinstall', 'disabled')),
  public_key   bytea NOT NULL CHECK (length(public_key) = 32),
  last_contact timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  deleted_at   timestamptz
);
CREATE UNIQUE INDEX nodes_hostname_live ON nodes (lower(hostname)) WHERE deleted_at IS NULL;
CREATE INDEX nodes_site ON nodes (site_id);

CREATE TABLE node_tags (
  node_id     bigint NOT NULL REFERENCES nodes,
  tag_type_id bigint NOT NULL REFERENCES tag_types,
  value       text NOT NULL,
  PRIMARY KEY (node_id, tag_type_id)
);

-- A node group holds every live node whose tag `tag_type_id` equals `value`.
CREATE TABLE nodegroups (
  nodegroup_id bigserial PRIMARY KEY,
  name         text NOT NULL UNIQUE,
  tag_type_id  bigint NOT NULL REFERENCES tag_types,
  value        text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- ----------------------------------------------------------------- SliceDB
CREATE SEQUENCE slice_xid_seq START 1000;

CREATE TABLE slices (
  slice_id      bigserial PRIMARY KEY,
  name          text NOT NULL,
  site_id       bigint NOT NULL REFERENCES sites,
  description   text NOT NULL DEFAULT '',
  url           text NOT NULL DEFAULT '',
  instantiation text NOT NULL CHECK (instantiation IN ('plc-instantiated', 'delegated')),
  creator_id    bigint REFERENCES persons,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  max_nodes     integer NOT NULL CHECK (max_nodes >= 0),
  xid           integer NOT NULL UNIQUE DEFAULT nextval('slice_xid_seq'),
  deleted_at    timestamptz
);
CREATE UNIQUE INDEX slices_name_live ON slices (name) WHERE deleted_at IS NULL;
CREATE INDEX slices_site ON slices (site_id);

CREATE TABLE slice_members (
  slice_id  bigint NOT NULL REFERENCES slices,
  person_id bigint NOT NULL REFERENCES persons,
  PRIMARY KEY (slice_id, person_id)
);
CREATE INDEX slice_members_person ON slice_members (person_id);

CREATE TABLE slice_nodes (
  slice_id bigint NOT NULL REFERENCES slices,
  node_id  bigint NOT NULL REFERENCES nodes,
  PRIMARY KEY (slice_id, node_id)
);
CREATE INDEX slice_nodes_node ON slice_nodes (node_id);

-- Scope: the whole slice (both NULL), a node group, or one node.
-- Precedence when computing a node's effective tags: node > nodegroup > slice.
CREATE TABLE slice_tags (
  slice_tag_id bigserial PRIMARY KEY,
  slice_id     bigint NOT NULL REFERENCES slices,
  tag_type_id  bigint NOT NULL REFERENCES tag_types,
  value        text NOT NULL,
  node_id      bigint REFERENCES nodes,
  nodegroup_id bigint REFERENCES nodegroups ON DELETE CASCADE,
  CHECK (node_id IS NULL OR nodegroup_id IS NULL)
);
CREATE UNIQUE INDEX slice_tags_scope ON slice_tags
  (slice_id, tag_type_id, coalesce(node_id, 0), coalesce(nodegroup_id, 0));

-- ----------------------------------------------------------------- Auth
-- Only the SHA-256 of a token is stored.
CREATE TABLE sessions (
  session_id  bigserial PRIMARY KEY,
  token_hash  bytea NOT NULL UNIQUE,
  kind        text NOT NULL CHECK (kind IN ('session', 'api', 'node')),
  person_id   bigint REFERENCES persons,
  node_id     bigint REFERENCES nodes,
  description text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz,
  CHECK ((person_id IS NULL) <> (node_id IS NULL))
);

CREATE TABLE node_challenges (
  nonce      bytea PRIMARY KEY,
  node_id    bigint NOT NULL REFERENCES nodes,
  expires_at timestamptz NOT NULL
);

-- ----------------------------------------------------------------- Policy
CREATE TABLE destination_blacklist (
  entry_id   bigserial PRIMARY KEY,
  prefix     cidr NOT NULL UNIQUE,
  reason     text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);

-- PLC's Ed25519 ticket-signing keys. Exactly one signs new tickets; retired keys
-- stay published until their not_after so tickets they signed still verify.
CREATE TABLE plc_keys (
  key_id      text PRIMARY KEY,
  public_key  bytea NOT NULL CHECK (length(public_key) = 32),
  private_key bytea NOT NULL CHECK (length(private_key) = 32),
  created_at  timestamptz NOT NULL DEFAULT now(),
  retired_at  timestamptz,
  is_signing  boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX plc_keys_one_signing ON plc_keys (is_signing) WHERE is_signing;

-- ----------------------------------------------------------------- Audit
CREATE TABLE events (
  event_id    bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  caller      text NOT NULL,
  person_id   bigint,
  node_id     bigint,
  role_used   text NOT NULL DEFAULT '',
  method      text NOT NULL,
  arguments   text NOT NULL DEFAULT '',
  objects     text[] NOT NULL DEFAULT '{}',
  result      text NOT NULL,
  message     text NOT NULL DEFAULT '',
  duration_us bigint NOT NULL DEFAULT 0
);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_caller ON events (caller, at);
CREATE INDEX events_objects ON events USING gin (objects);

-- ----------------------------------------------------------------- Seed
-- Resource and behaviour tags with PlanetLab's historic defaults. Units are
-- canonical: bytes, bits per second, CPU shares, percent of one CPU.
INSERT INTO tag_types (name, description, category, min_role, value_kind, default_value) VALUES
 ('cpu_share', 'CPU shares (weight) of the slice on a node', 'slice/rspec', 'admin', 'int', '32'),
 ('cpu_cap', 'CPU cap in percent of one CPU (0 = no cap)', 'slice/rspec', 'pi', 'int', '0'),
 ('mem_limit', 'memory limit in bytes', 'slice/rspec', 'admin', 'bytes', '134217728'),
 ('tasks', 'maximum number of tasks (processes and threads)', 'slice/rspec', 'admin', 'int', '256'),
 ('disk_quota', 'disk quota of the sliver''s writable layer in bytes', 'slice/rspec', 'admin', 'bytes', '5368709120'),
 ('net_min_rate', 'guaranteed outgoing bandwidth in bit/s', 'slice/rspec', 'admin', 'rate', '5000'),
 ('net_max_rate', 'outgoing bandwidth cap in bit/s', 'slice/rspec', 'admin', 'rate', '10000000'),
 ('net_daily_bytes', 'daily outgoing byte budget (0 = unlimited)', 'slice/rspec', 'admin', 'bytes', '0'),
 ('ports', 'reserved ports, e.g. 80,443,8000-8100', 'slice/rspec', 'admin', 'ports', ''),
 ('initscript', 'script run at every start of the sliver', 'slice/config', 'user', 'string', ''),
 ('vref', 'reference image of the sliver''s root filesystem', 'slice/config', 'user', 'string', 'debian12'),
 ('capabilities', 'extra capabilities in the sliver''s bounding set, e.g. CAP_NET_RAW', 'slice/privilege', 'admin', 'capabilities', ''),
 ('proper', 'privileged operations the slice may ask of the node', 'slice/privilege', 'admin', 'string', ''),
 ('delegations', 'may acquire, bind and split resource capabilities', 'slice/privilege', 'admin', 'bool', 'false'),
 ('arch', 'node architecture', 'node', 'tech', 'string', ''),
 ('deployment', 'node deployment, e.g. alpha or production', 'node', 'admin', 'string', ''),
 ('net_node_cap', 'node uplink cap in bit/s', 'node', 'tech', 'rate', '100000000');
)SQL";

// Issue 7 (hostile users): nothing an anonymous caller sends is stored per
// request, and password guessing is counted where every replica sees it.
constexpr const char* kAuthHardening = R"SQL(
-- Node login challenges are stateless (an HMAC under a secret all replicas
-- share); only a challenge that logged in is remembered, until it expires, so
-- that it logs in once.
DROP TABLE node_challenges;
CREATE TABLE plc_secrets (
  name       text PRIMARY KEY,
  secret     bytea NOT NULL CHECK (length(secret) >= 32),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE node_challenges_used (
  nonce      bytea PRIMARY KEY,
  node_id    bigint NOT NULL REFERENCES nodes,
  expires_at timestamptz NOT NULL
);
CREATE INDEX node_challenges_used_expires ON node_challenges_used (expires_at);

-- Failed password logins per login name: a lower-case email, whether or not an
-- account has it, so that throttling never tells the two apart. Rows go when
-- their failures are older than login_failure_window_s (or the table is full).
CREATE TABLE login_failures (
  login        text PRIMARY KEY,
  failures     integer NOT NULL CHECK (failures > 0),
  last_failure timestamptz NOT NULL,
  locked_until timestamptz NOT NULL
);
CREATE INDEX login_failures_last ON login_failures (last_failure);
)SQL";

// Issue 9 (network isolation): a `ports` value names its protocol
// (proto/port_spec.h, "tcp:80,udp:53"). A value of the old grammar (bare ports,
// "80,8000-8100") reserved each port whatever the protocol: it becomes both, so
// a slice keeps what it held. net_max_ports caps the ports a slice holds at once.
constexpr const char* kPortProtocols = R"SQL(
CREATE FUNCTION pg_temp.ports_with_protocols(old text) RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN old ~ '^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$'
              THEN regexp_replace(old, '([0-9]+(-[0-9]+)?)', 'tcp:\1', 'g') || ',' ||
                   regexp_replace(old, '([0-9]+(-[0-9]+)?)', 'udp:\1', 'g')
              ELSE old END
$$;
UPDATE slice_tags st SET value = pg_temp.ports_with_protocols(st.value)
  FROM tag_types tt WHERE tt.tag_type_id = st.tag_type_id AND tt.value_kind = 'ports';
UPDATE node_tags nt SET value = pg_temp.ports_with_protocols(nt.value)
  FROM tag_types tt WHERE tt.tag_type_id = nt.tag_type_id AND tt.value_kind = 'ports';
UPDATE tag_types SET default_value = pg_temp.ports_with_protocols(default_value)
 WHERE value_kind = 'ports';
DROP FUNCTION pg_temp.ports_with_protocols(text);
UPDATE tag_types
   SET description = 'ports only this slice may bind on a node, e.g. tcp:80,udp:53,tcp:6000-6010'
 WHERE name = 'ports';
INSERT INTO tag_types (name, description, category, min_role, value_kind, default_value) VALUES
 ('net_max_ports', 'ports the slice may hold at once on a node, bound or ephemeral, TCP and UDP together (0 = no cap)', 'slice/rspec', 'admin', 'int', '2000')
ON CONFLICT (name) DO NOTHING;
)SQL";

// Issue 10 (bandwidth): a slice's ICMP and IP-options packets are limited in
// packets per second on each node's uplink (docs/vnet.md, "Bandwidth").
constexpr const char* kIcmpRate = R"SQL(
INSERT INTO tag_types (name, description, category, min_role, value_kind, default_value) VALUES
 ('net_icmp_pps', 'ICMP and IP-options packets the slice may send per second on a node (1..10000)', 'slice/rspec', 'admin', 'int', '100')
ON CONFLICT (name) DO NOTHING;
)SQL";

// Issue 10 (daily byte budgets): the latest status each node reported
// (NodeSync.ReportStatus: its slices' use of their net_daily_bytes), kept as
// the node sent it, for Admin.GetNodeStatus.
constexpr const char* kNodeStatus = R"SQL(
CREATE TABLE node_status (
  node_id     bigint PRIMARY KEY REFERENCES nodes,
  received_at timestamptz NOT NULL,
  report      bytea NOT NULL
);
)SQL";

// Issue 10 (flow auditing): the flows nodes report (NodeSync.ReportFlows),
// partitioned by day on first_seen. Partitions (flows_YYYYMMDD) are made as
// batches need them and dropped whole by the retention sweep (flow_archive.h).
// flow_batches is the ledger of batches received: a batch repeated is stored
// once, and it is the record of each report (no audit event per batch).
constexpr const char* kFlowArchive = R"SQL(
CREATE TABLE flow_batches (
  node_id     bigint NOT NULL REFERENCES nodes,
  batch_id    text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  flows       integer NOT NULL CHECK (flows >= 0),
  dropped     bigint NOT NULL CHECK (dropped >= 0),
  PRIMARY KEY (node_id, batch_id)
);
CREATE INDEX flow_batches_received ON flow_batches (received_at);
CREATE INDEX flow_batches_node_received ON flow_batches (node_id, received_at);

CREATE TABLE flows (
  node_id    bigint NOT NULL REFERENCES nodes,
  slice_name text NOT NULL,
  xid        bigint NOT NULL,
  slice_id   bigint,  -- the slice with that xid and name, when PLC knows it
  protocol   smallint NOT NULL CHECK (protocol BETWEEN 0 AND 255),
  src        inet NOT NULL,
  dst        inet NOT NULL,
  src_port   integer NOT NULL CHECK (src_port BETWEEN 0 AND 65535),
  dst_port   integer NOT NULL CHECK (dst_port BETWEEN 0 AND 65535),
  tcp_flags  smallint NOT NULL CHECK (tcp_flags BETWEEN 0 AND 255),
  packets    bigint NOT NULL CHECK (packets >= 0),
  bytes      bigint NOT NULL CHECK (bytes >= 0),
  first_seen timestamptz NOT NULL,
  last_seen  timestamptz NOT NULL CHECK (last_seen >= first_seen),
  refused    text NOT NULL DEFAULT ''
) PARTITION BY RANGE (first_seen);
-- Serves dst <<= prefix (and =) in every partition.
CREATE INDEX flows_dst ON flows USING gist (dst inet_ops);
)SQL";

// Issue 10 (packet capture): a slice granted net_capture runs stock tcpdump in
// its slivers, seeing its own packets only (docs/vnet.md, "Packet capture").
// Numbered 7: 5 and 6 are other parts of issue 10's.
constexpr const char* kPacketCapture = R"SQL(
INSERT INTO tag_types (name, description, category, min_role, value_kind, default_value) VALUES
 ('net_capture', 'may capture its own packets with tcpdump in its slivers (packet sockets filtered to the slice''s traffic)', 'slice/privilege', 'admin', 'bool', 'false')
ON CONFLICT (name) DO NOTHING;
)SQL";

// Issue 11 (node health): the reports each node sent, newest kept
// (node_status_history reports per node, pruned as each arrives), for
// Admin.GetNodeStatus's history. node_status keeps the latest as before.
constexpr const char* kNodeStatusHistory = R"SQL(
CREATE TABLE node_status_history (
  report_id   bigserial PRIMARY KEY,
  node_id     bigint NOT NULL REFERENCES nodes,
  received_at timestamptz NOT NULL,
  report      bytea NOT NULL
);
CREATE INDEX node_status_history_node ON node_status_history (node_id, report_id);
)SQL";

// Issue 12 (expiry reminders): the reminders claimed and sent, one row per
// slice, expiry date and threshold (ExpiryReminders). A plcd claims a reminder
// by inserting its row and mails only if it did; sent_at is set once the relay
// took the mail, and a failed mail deletes its row. Rows of expiry dates long
// past are deleted.
constexpr const char* kSliceReminders = R"SQL(
CREATE TABLE slice_reminders (
  slice_id    bigint NOT NULL REFERENCES slices,
  expires_at  timestamptz NOT NULL,
  days_before integer NOT NULL CHECK (days_before > 0),
  claimed_at  timestamptz NOT NULL DEFAULT now(),
  sent_at     timestamptz,
  PRIMARY KEY (slice_id, expires_at, days_before)
);
CREATE INDEX slice_reminders_expires ON slice_reminders (expires_at);
)SQL";

// Issue 12 (web portal): sites asked for by RequestSite, pending until an admin
// approves them (ApproveSite), with the PI who asked and the site's tech
// contact. A site is pending while requested and neither approved nor deleted.
constexpr const char* kSiteRequests = R"SQL(
ALTER TABLE sites
  ADD COLUMN requested_at       timestamptz,
  ADD COLUMN requested_by       bigint REFERENCES persons,
  ADD COLUMN approved_at        timestamptz,
  ADD COLUMN tech_contact_name  text NOT NULL DEFAULT '',
  ADD COLUMN tech_contact_email text NOT NULL DEFAULT '',
  ADD CONSTRAINT sites_approved_requested CHECK (approved_at IS NULL OR requested_at IS NOT NULL);
CREATE INDEX sites_pending ON sites (requested_at)
  WHERE requested_at IS NOT NULL AND approved_at IS NULL AND deleted_at IS NULL;
)SQL";

}  // namespace

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "initial AdminDB, SliceDB, auth, policy and audit schema", kInitialSchema},
      {2, "stateless node challenges, used-challenge record, login failure counts", kAuthHardening},
      {3, "ports name their protocol; net_max_ports", kPortProtocols},
      {4, "net_icmp_pps", kIcmpRate},
      {5, "node_status: the latest status report of each node", kNodeStatus},
      {6, "flow archive: flows partitioned by day, flow_batches", kFlowArchive},
      {7, "net_capture", kPacketCapture},
      {8, "node_status_history: the last reports of each node", kNodeStatusHistory},
      {9, "slice_reminders: expiry reminders claimed and sent", kSliceReminders},
      {10, "site join requests: requested_at, requested_by, approved_at, tech contact",
       kSiteRequests},
  };
  return kMigrations;
}

}  // namespace plng::plc

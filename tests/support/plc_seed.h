// Sites, persons, keys and nodes for the Slice and NodeSync tests.
//
// Each helper goes through the Admin API and falls back to SQL only while the
// Admin method it needs answers UNIMPLEMENTED (AdminService is written in
// parallel), so these tests switch to the API by themselves once it lands.
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <ctime>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "base/strings.h"
#include "plc/auth.h"
#include "proto/node_protocol.h"
#include "proto/ticket.h"
#include "tests/support/plc_fixture.h"
#include "tests/support/plc_node_login.h"
#include "tests/support/ssh_key.h"

namespace plng::test {

namespace pb = planetlab::v1;

inline std::int64_t unixNow() { return static_cast<std::int64_t>(std::time(nullptr)); }

inline bool unimplemented(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNIMPLEMENTED;
}

// SetSliceTag as `c`: the whole slice, one node or one node group.
inline std::pair<grpc::Status, pb::SliceTag> setSliceTag(
    const PlcClient& c, const std::string& slice, const std::string& tag, const std::string& value,
    const std::string& node = "", const std::string& nodegroup = "") {
  pb::SetSliceTagRequest req;
  req.set_slice(slice);
  req.set_tag(tag);
  req.set_value(value);
  req.set_node(node);
  req.set_nodegroup(nodegroup);
  return c.call(&pb::Slice::Stub::SetSliceTag, req);
}

// AddSliceNodes (or RemoveSliceNodes when `add` is false) as `c`.
inline grpc::Status sliceNodes(const PlcClient& c, const std::string& slice,
                               const std::vector<std::string>& hostnames, bool add = true) {
  pb::SliceNodesRequest req;
  req.set_name(slice);
  for (const auto& h : hostnames) req.add_hostnames(h);
  return c.call(add ? &pb::Slice::Stub::AddSliceNodes : &pb::Slice::Stub::RemoveSliceNodes, req)
      .first;
}

struct SeededNode {
  std::string hostname;
  plng::ticket::PrivateKey private_key{};
};

// Seeds through `fix`'s admin; SQL goes to the fixture's database.
class Seeder {
 public:
  explicit Seeder(PlcFixture& fix) : fix_(fix) {}

  // Runs SQL on the fixture's database (commit included).
  template <class... Args>
  pqxx::result sql(const std::string& query, Args&&... args) {
    pqxx::connection c(fix_.connectionString());
    pqxx::work tx(c);
    auto r = tx.exec_params(query, std::forward<Args>(args)...);
    tx.commit();
    return r;
  }
  // Marks the state changed, as every API write does.
  void bump() {
    sql("UPDATE plc_state SET version = version + 1");
    sql("SELECT pg_notify('plc_changes', 'seed')");
  }

  void site(const std::string& login_base, int max_slices = 10, int max_slivers = 1000) {
    pb::AddSiteRequest req;
    req.set_login_base(login_base);
    req.set_name("Site " + login_base);
    req.set_url("https://" + login_base + ".example.edu/");
    req.set_max_slices(max_slices);
    req.set_max_slivers(max_slivers);
    auto [status, site] = fix_.admin().call(&pb::Admin::Stub::AddSite, req);
    if (unimplemented(status)) {
      sql("INSERT INTO sites (login_base, name, url, max_slices, max_slivers)"
          " VALUES ($1, $2, $3, $4, $5)",
          login_base, req.name(), req.url(), max_slices, max_slivers);
      return;
    }
    REQUIRE_OK(status);
  }

  // An enabled person of `login_base` holding `roles` there, logged in.
  PlcClient person(const std::string& email, const std::string& login_base,
                   const std::vector<std::string>& roles) {
    const std::string password = "password-" + email;
    pb::AddPersonRequest add;
    add.set_email(email);
    add.set_first_name("First");
    add.set_last_name("Last");
    add.set_password(password);
    add.set_login_base(login_base);
    auto status = fix_.admin().call(&pb::Admin::Stub::AddPerson, add).first;
    bool via_api = !unimplemented(status);
    if (via_api) {
      REQUIRE_OK(status);
      pb::UpdatePersonRequest enable;
      enable.set_email(email);
      enable.set_enabled(true);
      status = fix_.admin().call(&pb::Admin::Stub::UpdatePerson, enable).first;
      via_api = !unimplemented(status);
      if (via_api) REQUIRE_OK(status);
    }
    if (!via_api) {
      sql("INSERT INTO persons (email, first_name, last_name, password_hash, enabled)"
          " VALUES ($1, 'First', 'Last', 'none', true)"
          " ON CONFLICT DO NOTHING",
          email);
      sql("UPDATE persons SET enabled = true WHERE email = $1", email);
      sql("INSERT INTO person_sites (person_id, site_id, is_primary)"
          " SELECT p.person_id, s.site_id, true FROM persons p, sites s"
          " WHERE p.email = $1 AND s.login_base = $2 ON CONFLICT DO NOTHING",
          email, login_base);
    }
    for (const auto& role : roles) addRole(email, role, login_base);
    if (via_api) return fix_.loginAs(email, password);
    return tokenFor(email);
  }

  void addRole(const std::string& email, const std::string& role, const std::string& login_base) {
    pb::PersonRoleRequest req;
    req.set_email(email);
    req.set_role(role);
    req.set_login_base(login_base);
    auto status = fix_.admin().call(&pb::Admin::Stub::AddRoleToPerson, req).first;
    if (unimplemented(status)) {
      sql("INSERT INTO person_roles (person_id, role, site_id)"
          " SELECT p.person_id, $2, s.site_id FROM persons p, sites s"
          " WHERE p.email = $1 AND s.login_base = $3 ON CONFLICT DO NOTHING",
          email, role, login_base);
      return;
    }
    // AddPerson may already have granted the person "user" at their site.
    if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS) return;
    REQUIRE_OK(status);
  }

  // Adds a fresh SSH key to `email` and returns its text as stored.
  std::string key(const std::string& email) {
    auto text = newSshKey(email);
    pb::AddPersonKeyRequest req;
    req.set_email(email);
    req.set_key(text);
    auto [status, key] = fix_.admin().call(&pb::Admin::Stub::AddPersonKey, req);
    if (unimplemented(status)) {
      sql("INSERT INTO keys (person_id, key_type, key_text, fingerprint)"
          " SELECT person_id, 'ssh-ed25519', $2, md5($2) FROM persons WHERE email = $1",
          email, text);
      return text;
    }
    REQUIRE_OK(status);
    return key.key();
  }

  SeededNode node(const std::string& hostname, const std::string& login_base) {
    auto pair = plng::ticket::generateKeyPair();
    std::string public_key(reinterpret_cast<const char*>(pair.public_key.data()), 32);
    pb::AddNodeRequest req;
    req.set_hostname(hostname);
    req.set_login_base(login_base);
    req.set_public_key(public_key);
    auto status = fix_.admin().call(&pb::Admin::Stub::AddNode, req).first;
    if (unimplemented(status)) {
      sql("INSERT INTO nodes (hostname, site_id, boot_state, public_key)"
          " SELECT $1, site_id, 'boot', decode($2, 'hex') FROM sites WHERE login_base = $3",
          hostname, plng::base::toHex(public_key), login_base);
    } else {
      REQUIRE_OK(status);
    }
    return SeededNode{hostname, pair.private_key};
  }

  void nodeTag(const std::string& hostname, const std::string& tag, const std::string& value) {
    pb::SetNodeTagRequest req;
    req.set_hostname(hostname);
    req.set_tag(tag);
    req.set_value(value);
    auto status = fix_.admin().call(&pb::Admin::Stub::SetNodeTag, req).first;
    if (unimplemented(status)) {
      sql("INSERT INTO node_tags (node_id, tag_type_id, value)"
          " SELECT n.node_id, t.tag_type_id, $3 FROM nodes n, tag_types t"
          " WHERE n.hostname = $1 AND t.name = $2",
          hostname, tag, value);
      bump();
      return;
    }
    REQUIRE_OK(status);
  }

  void nodeGroup(const std::string& name, const std::string& tag, const std::string& value) {
    pb::AddNodeGroupRequest req;
    req.set_name(name);
    req.set_tag(tag);
    req.set_value(value);
    auto status = fix_.admin().call(&pb::Admin::Stub::AddNodeGroup, req).first;
    if (unimplemented(status)) {
      sql("INSERT INTO nodegroups (name, tag_type_id, value)"
          " SELECT $1, tag_type_id, $3 FROM tag_types WHERE name = $2",
          name, tag, value);
      bump();
      return;
    }
    REQUIRE_OK(status);
  }

  void blacklist(const std::string& prefix, const std::string& reason) {
    pb::AddBlacklistEntryRequest req;
    req.set_prefix(prefix);
    req.set_reason(reason);
    auto status = fix_.admin().call(&pb::Admin::Stub::AddBlacklistEntry, req).first;
    if (unimplemented(status)) {
      sql("INSERT INTO destination_blacklist (prefix, reason) VALUES ($1::cidr, $2)", prefix,
          reason);
      bump();
      return;
    }
    REQUIRE_OK(status);
  }

  // PLC's published keys, as nodes and brokers trust them.
  std::vector<pb::PlcPublicKey> plcKeys() {
    auto [status, resp] = fix_.admin().call(&pb::Admin::Stub::GetPlcKeys, pb::Empty());
    std::vector<pb::PlcPublicKey> keys;
    if (unimplemented(status)) {
      for (const auto& r :
           sql("SELECT key_id, encode(public_key, 'hex'), extract(epoch FROM created_at)::bigint,"
               " coalesce(extract(epoch FROM retired_at)::bigint, 0) FROM plc_keys")) {
        pb::PlcPublicKey k;
        k.set_key_id(r[0].as<std::string>());
        k.set_public_key(plng::base::fromHex(r[1].as<std::string>()));
        k.set_created_at(r[2].as<std::int64_t>());
        k.set_not_after(r[3].as<std::int64_t>());
        keys.push_back(k);
      }
      return keys;
    }
    REQUIRE_OK(status);
    keys.assign(resp.keys().begin(), resp.keys().end());
    return keys;
  }

  // A client of `channel` logged in as the node (challenge–response).
  static PlcClient nodeClient(std::shared_ptr<grpc::Channel> channel, const SeededNode& node) {
    return loggedInNode(PlcClient(std::move(channel)), node.hostname, node.private_key);
  }
  PlcClient nodeClient(const SeededNode& node) { return nodeClient(fix_.plcd().channel(), node); }

 private:
  // A session row for `email`, as Login would create (SQL path only).
  PlcClient tokenFor(const std::string& email) {
    auto token = plng::plc::newToken();
    sql("INSERT INTO sessions (token_hash, kind, person_id, expires_at)"
        " SELECT decode($1, 'hex'), 'session', person_id, now() + interval '1 day'"
        " FROM persons WHERE email = $2",
        plng::plc::tokenHashHex(token), email);
    return fix_.anonymous().withToken(token);
  }

  PlcFixture& fix_;
};

}  // namespace plng::test

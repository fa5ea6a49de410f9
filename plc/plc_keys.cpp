#include "plc/plc_keys.h"

#include <spdlog/spdlog.h>

#include <stdexcept>
#include <utility>

#include "base/strings.h"
#include "plc/auth.h"
#include "plc/errors.h"

namespace plng::plc {

namespace {

std::string bytesOf(const std::array<std::uint8_t, 32>& a) {
  return std::string(reinterpret_cast<const char*>(a.data()), a.size());
}

}  // namespace

void PlcKeys::ensureSigningKey() {
  db_.write([&](pqxx::work& tx) {
    tx.exec0("LOCK TABLE plc_keys IN EXCLUSIVE MODE");
    if (!tx.exec("SELECT 1 FROM plc_keys WHERE is_signing").empty()) return;
    auto pair = plng::ticket::generateKeyPair();
    plng::ticket::parsePublicKey(bytesOf(pair.public_key));
    tx.exec_params0(
        "INSERT INTO plc_keys (key_id, public_key, private_key, is_signing)"
        " VALUES ($1, decode($2, 'hex'), decode($3, 'hex'), true)",
        plng::ticket::keyIdOf(pair.public_key), base::toHex(bytesOf(pair.public_key)),
        base::toHex(bytesOf(pair.private_key)));
    Database::bumpStateVersion(tx);
  });
}

std::vector<planetlab::v1::PlcPublicKey> PlcKeys::published(pqxx::transaction_base& tx) const {
  std::vector<planetlab::v1::PlcPublicKey> keys;
  for (const auto& r :
       tx.exec("SELECT key_id, encode(public_key, 'hex'), extract(epoch FROM created_at)::bigint,"
               " coalesce(extract(epoch FROM retired_at)::bigint, 0)"
               " FROM plc_keys ORDER BY created_at, key_id")) {
    planetlab::v1::PlcPublicKey k;
    k.set_key_id(r[0].as<std::string>());
    k.set_public_key(base::fromHex(r[1].as<std::string>()));
    // Never publish a key nodes must refuse (a row altered behind plcd's back):
    // they would drop the whole key set.
    try {
      plng::ticket::parsePublicKey(k.public_key());
    } catch (const std::invalid_argument& e) {
      spdlog::error("PLC key {} is not published: {}", k.key_id(), e.what());
      continue;
    }
    k.set_created_at(r[2].as<std::int64_t>());
    k.set_not_after(r[3].as<std::int64_t>());
    keys.push_back(std::move(k));
  }
  return keys;
}

std::string PlcKeys::signingKeyId(pqxx::transaction_base& tx) const {
  auto rows = tx.exec("SELECT key_id FROM plc_keys WHERE is_signing");
  return rows.empty() ? "" : rows[0][0].as<std::string>();
}

planetlab::v1::SignedTicket PlcKeys::sign(planetlab::v1::TicketBody body) {
  plng::ticket::PrivateKey key;
  {
    std::lock_guard lock(mutex_);
    if (!loaded_) {
      auto hex = db_.read([](pqxx::transaction_base& tx) {
        auto rows = tx.exec(
            "SELECT encode(private_key, 'hex'), encode(public_key, 'hex') FROM plc_keys"
            " WHERE is_signing");
        if (rows.empty()) {
          failedPrecondition("PLC has no signing key; an admin must run plcctl plckey rotate");
        }
        return std::make_pair(rows[0][0].as<std::string>(), rows[0][1].as<std::string>());
      });
      auto raw = base::fromHex(hex.first);
      if (raw.size() != signing_key_.size()) {
        throw std::runtime_error("PLC's signing key in the database is not a 32-byte seed");
      }
      std::copy(raw.begin(), raw.end(), signing_key_.begin());
      // The stored public key is what nodes trust: it must be this seed's.
      auto derived = plng::ticket::publicKeyOf(signing_key_);
      if (bytesOf(derived) != base::fromHex(hex.second)) {
        throw std::runtime_error(
            "PLC's signing key in the database does not match its published public key;"
            " rotate it (plcctl plckey rotate)");
      }
      plng::ticket::parsePublicKey(bytesOf(derived));
      loaded_ = true;
    }
    key = signing_key_;
  }
  return plng::ticket::signTicket(std::move(body), key);
}

planetlab::v1::PlcPublicKey PlcKeys::rotate(pqxx::work& tx, std::int64_t retire_grace_s) {
  tx.exec0("LOCK TABLE plc_keys IN EXCLUSIVE MODE");
  // The old signing key stops signing now and is retired after the grace period:
  // tickets it already signed are issued before its not_after and keep verifying.
  tx.exec_params0(
      "UPDATE plc_keys SET is_signing = false,"
      " retired_at = now() + make_interval(secs => $1) WHERE is_signing",
      retire_grace_s);
  auto pair = plng::ticket::generateKeyPair();
  plng::ticket::parsePublicKey(bytesOf(pair.public_key));
  auto key_id = plng::ticket::keyIdOf(pair.public_key);
  tx.exec_params0(
      "INSERT INTO plc_keys (key_id, public_key, private_key, is_signing)"
      " VALUES ($1, decode($2, 'hex'), decode($3, 'hex'), true)",
      key_id, base::toHex(bytesOf(pair.public_key)), base::toHex(bytesOf(pair.private_key)));
  Database::bumpStateVersion(tx);
  invalidate();
  planetlab::v1::PlcPublicKey out;
  out.set_key_id(key_id);
  out.set_public_key(bytesOf(pair.public_key));
  out.set_created_at(std::time(nullptr));
  return out;
}

void PlcKeys::retire(pqxx::work& tx, const std::string& key_id) {
  auto rows = tx.exec_params("SELECT is_signing FROM plc_keys WHERE key_id = $1", key_id);
  if (rows.empty()) notFound("no PLC key with id '" + key_id + "'");
  if (rows[0][0].as<bool>()) {
    failedPrecondition("key " + key_id +
                       " is the current signing key; rotate first (plcctl plckey rotate)");
  }
  tx.exec_params0("UPDATE plc_keys SET retired_at = now() WHERE key_id = $1", key_id);
  Database::bumpStateVersion(tx);
}

void PlcKeys::invalidate() {
  std::lock_guard lock(mutex_);
  loaded_ = false;
}

}  // namespace plng::plc

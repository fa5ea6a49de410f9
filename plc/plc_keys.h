// PLC's Ed25519 ticket-signing keys, kept in the database so that every plcd
// replica signs with the same key. The signing key is cached in memory and
// reloaded when it changes (rotation through any replica).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "plc/db.h"
#include "proto/ticket.h"
#include "proto/ticket.pb.h"

namespace plng::plc {

class PlcKeys {
 public:
  explicit PlcKeys(Database& db) : db_(db) {}

  // Creates the first signing key if the database has none.
  void ensureSigningKey();
  // Every published key (signing, and retired ones still inside their window).
  std::vector<planetlab::v1::PlcPublicKey> published(pqxx::transaction_base& tx) const;
  std::string signingKeyId(pqxx::transaction_base& tx) const;
  // Signs a ticket body with the current signing key.
  planetlab::v1::SignedTicket sign(planetlab::v1::TicketBody body);

  // Makes a new signing key; the old one stays valid for verification. Returns it.
  planetlab::v1::PlcPublicKey rotate(pqxx::work& tx, std::int64_t retire_grace_s);
  // Retires a key now: tickets it signs after this instant are refused by nodes.
  void retire(pqxx::work& tx, const std::string& key_id);
  // Drops the cached signing key (after a change notification).
  void invalidate();

 private:
  Database& db_;
  std::mutex mutex_;
  bool loaded_ = false;
  plng::ticket::PrivateKey signing_key_{};
};

}  // namespace plng::plc

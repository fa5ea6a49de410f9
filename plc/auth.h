// Authentication: password hashing (scrypt), bearer tokens, node challenge
// signatures, and resolving a token to a Caller (cached briefly; the cache is
// cleared whenever any plcd reports a change).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "caller.h"
#include "db.h"

namespace plng::plc {

// "scrypt$<log2N>$<r>$<p>$<salt hex>$<hash hex>"
std::string hashPassword(const std::string& password, int log2_n);
bool verifyPassword(const std::string& password, const std::string& encoded);

// A new random bearer token (256 bits, hex) and the hash stored for it.
std::string newToken();
std::string tokenHashHex(const std::string& token);

// The exact bytes a node signs to log in.
std::string nodeLoginMessage(const std::string& hostname, const std::string& nonce);

std::string toHex(std::string_view bytes);
std::string fromHex(std::string_view hex);  // throws std::invalid_argument

class Authenticator {
 public:
  Authenticator(Database& db, int cache_ms) : db_(db), cache_ms_(cache_ms) {}

  // Resolves the token (without "Bearer "); throws ApiError UNAUTHENTICATED for an
  // unknown, expired or revoked token, or a disabled/deleted person or node.
  Caller resolve(const std::string& token);
  // Loads a person's roles and sites into `caller`.
  static void loadPerson(pqxx::transaction_base& tx, std::int64_t person_id, Caller& caller);
  void invalidate();
  // Advances on every invalidate(): after each change through this plcd and each
  // change notification from any plcd. Other caches trusting notifications as
  // this one does compare it to tell whether anything may have changed.
  std::uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }

 private:
  Caller load(const std::string& hash_hex);

  Database& db_;
  int cache_ms_;
  std::shared_mutex mutex_;
  struct Entry {
    Caller caller;
    std::chrono::steady_clock::time_point at;
  };
  std::unordered_map<std::string, Entry> cache_;
  std::atomic<std::uint64_t> epoch_{0};
};

}  // namespace plng::plc

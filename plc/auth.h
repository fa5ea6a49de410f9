// Authentication: password hashing (scrypt), bearer tokens, node challenge
// signatures, and resolving a token to a Caller (cached briefly; the cache is
// cleared whenever any plcd reports a change).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "plc/caller.h"
#include "plc/db.h"

namespace plng::plc {

// "scrypt$<log2N>$<r>$<p>$<salt hex>$<hash hex>"
std::string hashPassword(const std::string& password, int log2_n);
bool verifyPassword(const std::string& password, const std::string& encoded);

// Password hashing as the services use it: one key derivation per call, at the
// cost the configuration sets. An interface so that tests can count derivations.
class PasswordHasher {
 public:
  virtual ~PasswordHasher() = default;
  virtual std::string hash(const std::string& password) = 0;
  virtual bool verify(const std::string& password, const std::string& encoded) = 0;
  // Whether `encoded` was made at another cost than hash() uses now.
  virtual bool outdated(const std::string& encoded) const = 0;
};

class ScryptHasher : public PasswordHasher {
 public:
  explicit ScryptHasher(int log2_n) : log2_n_(log2_n) {}
  std::string hash(const std::string& password) override { return hashPassword(password, log2_n_); }
  bool verify(const std::string& password, const std::string& encoded) override {
    return verifyPassword(password, encoded);
  }
  bool outdated(const std::string& encoded) const override;

 private:
  int log2_n_;
};

// Failed authentications per client address, in this plcd's memory: a token
// bucket of `burst` failures refilled by one every `refill_s` seconds (0: no
// limit). Each attempt takes a token before any password is tried, so that
// concurrent attempts cannot all pass; one that did not fail gives it back.
// Bounded: at most kMaxSources addresses are tracked (full buckets are
// forgotten first).
class SourceLimiter {
 public:
  static constexpr std::size_t kMaxSources = 65536;
  using Clock = std::chrono::steady_clock;
  struct Verdict {
    bool allowed = true;
    std::int64_t retry_after_s = 0;  // when refused
    bool first_refusal = false;      // the first refusal since the source last had a token
  };
  SourceLimiter(int burst, int refill_s) : burst_(burst), refill_s_(refill_s) {}
  Verdict take(const std::string& source, Clock::time_point now = Clock::now());
  // Gives back the token of an attempt that did not fail.
  void refund(const std::string& source);
  std::size_t tracked() const;

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point at;
    bool refusal_recorded = false;
  };
  void refill(Bucket& b, Clock::time_point now) const;
  int burst_;
  int refill_s_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

// The client address a limit applies to, from grpc's peer string: an IPv4
// address, the /64 of an IPv6 address (one host usually owns a whole /64), or
// the peer string itself for anything else (a unix socket).
std::string clientSource(const std::string& peer);

// A new random bearer token (256 bits, hex) and the hash stored for it.
std::string newToken();
std::string tokenHashHex(const std::string& token);

// Forgets the failed logins counted against `email` (after a password change).
void clearLoginFailures(pqxx::work& tx, const std::string& email);

// Node login challenges are stateless, so that asking for one (anonymously)
// makes PLC store nothing: a 32-byte nonce is the challenge's expiry (8 bytes,
// big-endian unix seconds), 8 random bytes, and the first 16 bytes of
// HMAC-SHA256 under `secret` (shared by every plcd through the database) over
// the node's id and lower-case hostname and those 16 bytes. NodeLogin records
// a nonce once used, until it expires, so each challenge logs in at most once.
std::string newNodeChallenge(std::string_view secret, std::int64_t node_id,
                             const std::string& hostname, std::int64_t expires_at);
// The expiry of `nonce` when PLC issued it for that node; nullopt when it did not.
std::optional<std::int64_t> nodeChallengeExpiry(std::string_view secret, std::int64_t node_id,
                                                const std::string& hostname,
                                                std::string_view nonce);

class Authenticator {
 public:
  Authenticator(Database& db, int cache_ms, std::shared_ptr<PasswordHasher> passwords)
      : db_(db), cache_ms_(cache_ms), passwords_(std::move(passwords)) {}

  PasswordHasher& passwords() { return *passwords_; }
  // A hash of a random password at the configured cost, made once: Login checks
  // a password for an unknown email against it, so that an unknown email costs
  // exactly the one key derivation a wrong password costs.
  const std::string& dummyPasswordHash();

  // Resolves the token (without "Bearer "); throws ApiError UNAUTHENTICATED for an
  // unknown, expired or revoked token, or a disabled/deleted person or node.
  Caller resolve(const std::string& token);
  // Loads a person's roles and sites into `caller`.
  static void loadPerson(pqxx::transaction_base& tx, std::int64_t person_id, Caller& caller);
  void invalidate();
  // The node challenge secret (plc_secrets 'node_challenge'), created by the
  // first plcd that needs it and then cached: it never changes.
  std::string nodeChallengeSecret();
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
  std::shared_ptr<PasswordHasher> passwords_;
  std::once_flag dummy_once_;
  std::string dummy_hash_;
  std::mutex secret_mutex_;
  std::string challenge_secret_;
};

}  // namespace plng::plc

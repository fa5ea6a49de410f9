#include "plc/auth.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <stdexcept>
#include <vector>

#include "base/strings.h"
#include "plc/errors.h"

namespace plng::plc {

const char* toString(Role role) {
  switch (role) {
    case Role::kUser:
      return "user";
    case Role::kTech:
      return "tech";
    case Role::kPi:
      return "pi";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

std::optional<Role> parseRole(std::string_view name) {
  if (name == "user") return Role::kUser;
  if (name == "tech") return Role::kTech;
  if (name == "pi") return Role::kPi;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

std::optional<Role> Caller::highestRole() const {
  if (admin) return Role::kAdmin;
  std::optional<Role> best;
  for (const auto& [site, roles] : site_roles) {
    for (auto r : roles) {
      if (!best || r > *best) best = r;
    }
  }
  return best;
}

std::string Caller::describe() const {
  switch (kind) {
    case Kind::kAnonymous:
      return "anonymous";
    case Kind::kNode:
      return "node:" + hostname;
    case Kind::kPerson:
      return email;
  }
  return "?";
}

namespace {

std::string randomBytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  return out;
}

std::string scrypt(const std::string& password, const std::string& salt, int log2_n, int r, int p) {
  std::string out(32, '\0');
  if (EVP_PBE_scrypt(password.data(), password.size(),
                     reinterpret_cast<const unsigned char*>(salt.data()), salt.size(),
                     std::uint64_t{1} << log2_n, static_cast<std::uint64_t>(r),
                     static_cast<std::uint64_t>(p), 256ull << 20,
                     reinterpret_cast<unsigned char*>(out.data()), out.size()) != 1) {
    throw std::runtime_error("EVP_PBE_scrypt failed");
  }
  return out;
}

}  // namespace

std::string hashPassword(const std::string& password, int log2_n) {
  auto salt = randomBytes(16);
  constexpr int kR = 8, kP = 1;
  return "scrypt$" + std::to_string(log2_n) + "$" + std::to_string(kR) + "$" + std::to_string(kP) +
         "$" + base::toHex(salt) + "$" + base::toHex(scrypt(password, salt, log2_n, kR, kP));
}

bool verifyPassword(const std::string& password, const std::string& encoded) {
  auto parts = base::split(encoded, '$');
  if (parts.size() != 6 || parts[0] != "scrypt") return false;
  try {
    auto expected = base::fromHex(parts[5]);
    auto actual = scrypt(password, base::fromHex(parts[4]), std::stoi(parts[1]),
                         std::stoi(parts[2]), std::stoi(parts[3]));
    return actual.size() == expected.size() &&
           CRYPTO_memcmp(actual.data(), expected.data(), actual.size()) == 0;
  } catch (const std::exception&) {
    return false;
  }
}

bool ScryptHasher::outdated(const std::string& encoded) const {
  auto parts = base::split(encoded, '$');
  return parts.size() != 6 || parts[0] != "scrypt" || parts[1] != std::to_string(log2_n_) ||
         parts[2] != "8" || parts[3] != "1";
}

const std::string& Authenticator::dummyPasswordHash() {
  std::call_once(dummy_once_,
                 [&] { dummy_hash_ = passwords_->hash(base::toHex(randomBytes(16))); });
  return dummy_hash_;
}

void SourceLimiter::refill(Bucket& b, Clock::time_point now) const {
  if (refill_s_ <= 0) {
    b.tokens = burst_;
  } else {
    auto elapsed = std::chrono::duration<double>(now - b.at).count();
    b.tokens = std::min<double>(burst_, b.tokens + elapsed / refill_s_);
  }
  b.at = now;
  if (b.tokens >= 1) b.refusal_recorded = false;
}

SourceLimiter::Verdict SourceLimiter::take(const std::string& source, Clock::time_point now) {
  if (refill_s_ <= 0) return {};
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(source);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxSources) {
      // Forget the sources that have their whole budget back; if an attacker
      // holds every slot, start over (the per-account limit still holds).
      for (auto b = buckets_.begin(); b != buckets_.end();) {
        refill(b->second, now);
        b = b->second.tokens >= burst_ ? buckets_.erase(b) : std::next(b);
      }
      if (buckets_.size() >= kMaxSources) buckets_.clear();
    }
    it = buckets_.emplace(source, Bucket{static_cast<double>(burst_), now, false}).first;
  }
  auto& bucket = it->second;
  refill(bucket, now);
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return {};
  }
  Verdict v;
  v.allowed = false;
  v.retry_after_s = static_cast<std::int64_t>(std::ceil((1 - bucket.tokens) * refill_s_));
  v.first_refusal = !bucket.refusal_recorded;
  bucket.refusal_recorded = true;
  return v;
}

void SourceLimiter::refund(const std::string& source) {
  if (refill_s_ <= 0) return;
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(source);
  if (it != buckets_.end()) it->second.tokens = std::min<double>(burst_, it->second.tokens + 1);
}

std::size_t SourceLimiter::tracked() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

std::string clientSource(const std::string& peer) {
  if (peer.rfind("ipv4:", 0) == 0) {
    auto address = peer.substr(5);
    return address.substr(0, address.rfind(':'));
  }
  if (peer.rfind("ipv6:", 0) == 0) {
    auto open = peer.find('[');
    auto close = peer.find(']');
    if (open == std::string::npos || close == std::string::npos || close < open) return peer;
    auto address = peer.substr(open + 1, close - open - 1);
    auto percent = address.find('%');  // zone index
    if (percent != std::string::npos) address.resize(percent);
    unsigned char bytes[16];
    if (inet_pton(AF_INET6, address.c_str(), bytes) != 1) return peer;
    // An IPv4-mapped address is that IPv4 address.
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped, kMapped + 12, bytes)) {
      return std::to_string(bytes[12]) + "." + std::to_string(bytes[13]) + "." +
             std::to_string(bytes[14]) + "." + std::to_string(bytes[15]);
    }
    std::fill(bytes + 8, bytes + 16, 0);
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, bytes, text, sizeof text);
    return std::string(text) + "/64";
  }
  return peer;
}

std::string newToken() { return base::toHex(randomBytes(32)); }

std::string tokenHashHex(const std::string& token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return base::toHex(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

namespace {

std::string challengeMac(std::string_view secret, std::int64_t node_id, const std::string& hostname,
                         std::string_view head) {
  std::string lower = hostname;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string input = "planetlab-node-challenge";
  input.push_back('\0');
  input += std::to_string(node_id);
  input.push_back('\0');
  input += lower;
  input.push_back('\0');
  input += head;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
           &length) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(mac), 16);
}

constexpr std::size_t kChallengeHead = 16;  // expiry + random bytes

}  // namespace

std::string newNodeChallenge(std::string_view secret, std::int64_t node_id,
                             const std::string& hostname, std::int64_t expires_at) {
  std::string head(8, '\0');
  for (int i = 0; i < 8; ++i) {
    head[static_cast<std::size_t>(i)] =
        static_cast<char>(static_cast<std::uint64_t>(expires_at) >> (56 - 8 * i));
  }
  head += randomBytes(kChallengeHead - 8);
  return head + challengeMac(secret, node_id, hostname, head);
}

std::optional<std::int64_t> nodeChallengeExpiry(std::string_view secret, std::int64_t node_id,
                                                const std::string& hostname,
                                                std::string_view nonce) {
  if (nonce.size() != kChallengeHead + 16) return std::nullopt;
  auto mac = challengeMac(secret, node_id, hostname, nonce.substr(0, kChallengeHead));
  if (CRYPTO_memcmp(mac.data(), nonce.data() + kChallengeHead, mac.size()) != 0) {
    return std::nullopt;
  }
  std::uint64_t expires = 0;
  for (std::size_t i = 0; i < 8; ++i) expires = expires << 8 | static_cast<unsigned char>(nonce[i]);
  return static_cast<std::int64_t>(expires);
}

void clearLoginFailures(pqxx::work& tx, const std::string& email) {
  tx.exec_params0("DELETE FROM login_failures WHERE login = lower($1)", email);
}

std::string Authenticator::nodeChallengeSecret() {
  std::lock_guard lock(secret_mutex_);
  if (challenge_secret_.empty()) {
    auto fresh = randomBytes(32);
    challenge_secret_ = db_.write([&](pqxx::work& tx) {
      tx.exec_params0(
          "INSERT INTO plc_secrets (name, secret) VALUES ('node_challenge', decode($1, 'hex'))"
          " ON CONFLICT (name) DO NOTHING",
          base::toHex(fresh));
      return base::fromHex(
          tx.exec(
                "SELECT encode(secret, 'hex') FROM plc_secrets WHERE name = 'node_challenge'")[0][0]
              .as<std::string>());
    });
  }
  return challenge_secret_;
}

void Authenticator::loadPerson(pqxx::transaction_base& tx, std::int64_t person_id, Caller& caller) {
  for (const auto& row :
       tx.exec_params("SELECT r.role, r.site_id FROM person_roles r"
                      " LEFT JOIN sites s ON s.site_id = r.site_id"
                      " WHERE r.person_id = $1 AND (r.site_id IS NULL OR s.deleted_at IS NULL)",
                      person_id)) {
    auto role = parseRole(row[0].as<std::string>());
    if (!role) continue;
    if (*role == Role::kAdmin) {
      caller.admin = true;
    } else {
      caller.site_roles[row[1].as<std::int64_t>()].insert(*role);
    }
  }
  for (const auto& row :
       tx.exec_params("SELECT ps.site_id FROM person_sites ps JOIN sites s USING (site_id)"
                      " WHERE ps.person_id = $1 AND s.deleted_at IS NULL",
                      person_id)) {
    caller.sites.insert(row[0].as<std::int64_t>());
  }
}

Caller Authenticator::load(const std::string& hash_hex) {
  return db_.read([&](pqxx::transaction_base& tx) {
    auto rows = tx.exec_params(
        "SELECT s.session_id, extract(epoch FROM s.expires_at)::bigint, s.person_id, s.node_id,"
        " p.email, p.enabled, p.deleted_at IS NOT NULL,"
        " n.hostname, n.site_id, n.deleted_at IS NOT NULL, n.boot_state, s.kind"
        " FROM sessions s"
        " LEFT JOIN persons p ON p.person_id = s.person_id"
        " LEFT JOIN nodes n ON n.node_id = s.node_id"
        " WHERE s.token_hash = decode($1, 'hex') AND s.revoked_at IS NULL"
        " AND s.expires_at > now()",
        hash_hex);
    if (rows.empty()) {
      unauthenticated("token is unknown, expired or revoked; log in again (plcctl login)");
    }
    const auto& r = rows[0];
    Caller caller;
    caller.session_id = r[0].as<std::int64_t>();
    caller.session_expires_at = r[1].as<std::int64_t>();
    caller.token_kind = r[11].as<std::string>();
    if (!r[2].is_null()) {
      if (r[6].as<bool>()) unauthenticated("account " + r[4].as<std::string>() + " was deleted");
      if (!r[5].as<bool>()) {
        unauthenticated("account " + r[4].as<std::string>() +
                        " is disabled; a PI of its site or an admin must enable it");
      }
      caller.kind = Caller::Kind::kPerson;
      caller.person_id = r[2].as<std::int64_t>();
      caller.email = r[4].as<std::string>();
      loadPerson(tx, caller.person_id, caller);
    } else {
      if (r[9].as<bool>()) unauthenticated("node " + r[7].as<std::string>() + " was deleted");
      caller.kind = Caller::Kind::kNode;
      caller.node_id = r[3].as<std::int64_t>();
      caller.hostname = r[7].as<std::string>();
      caller.node_site_id = r[8].as<std::int64_t>();
    }
    return caller;
  });
}

Caller Authenticator::resolve(const std::string& token) {
  auto hash = tokenHashHex(token);
  auto now = std::chrono::steady_clock::now();
  if (cache_ms_ > 0) {
    std::shared_lock lock(mutex_);
    auto it = cache_.find(hash);
    if (it != cache_.end() && now - it->second.at < std::chrono::milliseconds(cache_ms_) &&
        it->second.caller.session_expires_at > std::time(nullptr)) {
      return it->second.caller;
    }
  }
  auto caller = load(hash);
  if (cache_ms_ > 0) {
    std::unique_lock lock(mutex_);
    if (cache_.size() > 100000) cache_.clear();
    cache_[hash] = Entry{caller, now};
  }
  return caller;
}

void Authenticator::invalidate() {
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  std::unique_lock lock(mutex_);
  cache_.clear();
}

}  // namespace plng::plc

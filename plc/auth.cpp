#include "auth.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <ctime>
#include <stdexcept>
#include <vector>

#include "errors.h"

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

std::string toHex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string fromHex(std::string_view hex) {
  if (hex.size() % 2) throw std::invalid_argument("odd-length hex string");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument("not a hex digit");
  };
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
  return out;
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

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    auto pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos - start));
    if (pos == std::string::npos) return parts;
    start = pos + 1;
  }
}

}  // namespace

std::string hashPassword(const std::string& password, int log2_n) {
  auto salt = randomBytes(16);
  constexpr int kR = 8, kP = 1;
  return "scrypt$" + std::to_string(log2_n) + "$" + std::to_string(kR) + "$" + std::to_string(kP) +
         "$" + toHex(salt) + "$" + toHex(scrypt(password, salt, log2_n, kR, kP));
}

bool verifyPassword(const std::string& password, const std::string& encoded) {
  auto parts = split(encoded, '$');
  if (parts.size() != 6 || parts[0] != "scrypt") return false;
  try {
    auto expected = fromHex(parts[5]);
    auto actual = scrypt(password, fromHex(parts[4]), std::stoi(parts[1]), std::stoi(parts[2]),
                         std::stoi(parts[3]));
    return actual.size() == expected.size() &&
           CRYPTO_memcmp(actual.data(), expected.data(), actual.size()) == 0;
  } catch (const std::exception&) {
    return false;
  }
}

std::string newToken() { return toHex(randomBytes(32)); }

std::string tokenHashHex(const std::string& token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return toHex(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string nodeLoginMessage(const std::string& hostname, const std::string& nonce) {
  std::string m = "planetlab-node-login";
  m.push_back('\0');
  m += hostname;
  m.push_back('\0');
  m += nonce;
  return m;
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
        " n.hostname, n.site_id, n.deleted_at IS NOT NULL, n.boot_state"
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

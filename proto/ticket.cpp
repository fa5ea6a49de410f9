#include "ticket.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <optional>

namespace plng::ticket {
namespace {

namespace v1 = planetlab::v1;

struct PkeyDeleter {
  void operator()(EVP_PKEY* pkey) const { EVP_PKEY_free(pkey); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using UniquePkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using UniqueMdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// OpenSSL reports failures through a thread-local queue; turn the oldest entry
// into the exception text and leave the queue empty so that later, unrelated
// OpenSSL users in this thread (gRPC's TLS) do not see stale errors.
[[noreturn]] void throwOpenSsl(const char* what) {
  std::string message = std::string("OpenSSL: ") + what;
  if (unsigned long code = ERR_get_error(); code != 0) {
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    message += ": ";
    message += text.data();
  }
  ERR_clear_error();
  throw std::runtime_error(message);
}

const unsigned char* bytesOf(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

UniquePkey privateKeyObject(const PrivateKey& private_key) {
  UniquePkey pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, private_key.data(),
                                               private_key.size()));
  if (!pkey) throwOpenSsl("cannot load Ed25519 private key");
  return pkey;
}

PublicKey publicKeyOfObject(EVP_PKEY* pkey) {
  PublicKey public_key{};
  size_t length = public_key.size();
  if (EVP_PKEY_get_raw_public_key(pkey, public_key.data(), &length) != 1 ||
      length != public_key.size()) {
    throwOpenSsl("cannot derive Ed25519 public key");
  }
  return public_key;
}

Signature signWith(EVP_PKEY* pkey, std::string_view message) {
  UniqueMdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) throwOpenSsl("EVP_MD_CTX_new");
  // Ed25519 hashes internally (PureEdDSA): the digest must be NULL and the
  // message is signed in one shot, there is no streaming update.
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey) != 1) {
    throwOpenSsl("EVP_DigestSignInit");
  }
  Signature signature{};
  size_t length = signature.size();
  if (EVP_DigestSign(ctx.get(), signature.data(), &length, bytesOf(message), message.size()) != 1 ||
      length != signature.size()) {
    throwOpenSsl("EVP_DigestSign");
  }
  return signature;
}

// Loading a raw Ed25519 private key derives its public key, a scalar
// multiplication as costly as a signature. PLC signs thousands of tickets a
// second with one key, so each thread keeps the key it last loaded (an EVP_PKEY
// is not shared between threads here) and reloads only when the key changes.
struct SigningKey {
  PrivateKey private_key{};
  UniquePkey pkey;
  std::string key_id;
  ~SigningKey() { OPENSSL_cleanse(private_key.data(), private_key.size()); }
};

const SigningKey& signingKey(const PrivateKey& private_key) {
  thread_local SigningKey loaded;
  if (!loaded.pkey ||
      CRYPTO_memcmp(loaded.private_key.data(), private_key.data(), private_key.size()) != 0) {
    UniquePkey pkey = privateKeyObject(private_key);
    loaded.key_id = keyIdOf(publicKeyOfObject(pkey.get()));
    loaded.pkey = std::move(pkey);
    loaded.private_key = private_key;
  }
  return loaded;
}

// Strings in error messages may come from an unverified ticket: keep them short
// and printable so that a forged ticket cannot flood or garble a log line.
std::string printable(std::string_view text) {
  constexpr std::size_t kMaxShown = 64;
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  if (text.size() > kMaxShown) out += "...";
  return out;
}

std::string quoted(std::string_view text) { return "'" + printable(text) + "'"; }

std::string utcTime(std::int64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  std::array<char, 32> text{};
  if (gmtime_r(&t, &tm) == nullptr ||
      std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    // Out of the calendar's range (a corrupt or absurd timestamp).
    return "unix time " + std::to_string(unix_seconds);
  }
  return text.data();
}

// Names a ticket whose signature is not verified yet by the slice it claims,
// so that a person can tell which of their tickets was refused.
std::string describeUnverified(const v1::SignedTicket& ticket) {
  v1::TicketBody body;
  if (!body.ParseFromString(ticket.body()) || body.slice_name().empty()) return "ticket";
  return "ticket claiming slice " + printable(body.slice_name());
}

}  // namespace

KeyPair generateKeyPair() {
  KeyPair pair{};
  if (RAND_bytes(pair.private_key.data(), static_cast<int>(pair.private_key.size())) != 1) {
    throwOpenSsl("RAND_bytes");
  }
  pair.public_key = publicKeyOf(pair.private_key);
  return pair;
}

PublicKey publicKeyOf(const PrivateKey& private_key) {
  return publicKeyOfObject(privateKeyObject(private_key).get());
}

std::string keyIdOf(const PublicKey& public_key) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(public_key.data(), public_key.size(), digest.data());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  id.reserve(16);
  for (std::size_t i = 0; i < 8; ++i) {
    id.push_back(kHex[digest[i] >> 4]);
    id.push_back(kHex[digest[i] & 0xf]);
  }
  return id;
}

Signature sign(const PrivateKey& private_key, std::string_view message) {
  return signWith(privateKeyObject(private_key).get(), message);
}

bool verifySignature(const PublicKey& public_key, std::string_view message,
                     std::string_view signature) {
  if (signature.size() != std::tuple_size_v<Signature>) return false;
  UniquePkey pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()));
  if (!pkey) throwOpenSsl("cannot load Ed25519 public key");
  UniqueMdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) throwOpenSsl("EVP_MD_CTX_new");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) {
    throwOpenSsl("EVP_DigestVerifyInit");
  }
  const int result = EVP_DigestVerify(ctx.get(), bytesOf(signature), signature.size(),
                                      bytesOf(message), message.size());
  // A mismatch may leave an entry in the thread's error queue; it is an answer,
  // not an error.
  ERR_clear_error();
  return result == 1;
}

PublicKey publicKeyFromBytes(std::string_view bytes) {
  PublicKey key{};
  if (bytes.size() != key.size()) {
    throw std::invalid_argument("Ed25519 public key must be " + std::to_string(key.size()) +
                                " raw bytes, got " + std::to_string(bytes.size()));
  }
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

const char* toString(VerifyError error) {
  switch (error) {
    case VerifyError::kMalformed:
      return "malformed";
    case VerifyError::kUnknownKey:
      return "unknown_key";
    case VerifyError::kBadSignature:
      return "bad_signature";
    case VerifyError::kRetiredKey:
      return "retired_key";
    case VerifyError::kNotYetValid:
      return "not_yet_valid";
    case VerifyError::kExpired:
      return "expired";
  }
  return "unknown";
}

v1::SignedTicket signTicket(v1::TicketBody body, const PrivateKey& private_key) {
  const SigningKey& key = signingKey(private_key);
  body.set_issuer_key_id(key.key_id);

  v1::SignedTicket ticket;
  if (!body.SerializeToString(ticket.mutable_body())) {
    throw std::runtime_error("cannot serialise ticket body for slice " +
                             printable(body.slice_name()));
  }
  const Signature signature = signWith(key.pkey.get(), ticket.body());
  ticket.set_signature(signature.data(), signature.size());
  ticket.set_key_id(key.key_id);
  return ticket;
}

void TrustedKeys::replace(const std::vector<v1::PlcPublicKey>& keys) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto& key = keys[i];
    if (key.public_key().size() != std::tuple_size_v<PublicKey>) {
      throw std::invalid_argument("PLC key " + quoted(key.key_id()) + " has a " +
                                  std::to_string(key.public_key().size()) +
                                  "-byte public key, expected 32 raw Ed25519 bytes");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (keys[j].key_id() == key.key_id()) {
        throw std::invalid_argument("PLC key id " + quoted(key.key_id()) +
                                    " is listed twice; refusing an ambiguous key set");
      }
    }
  }
  keys_ = keys;
}

const v1::PlcPublicKey* TrustedKeys::find(std::string_view key_id) const {
  const auto it = std::find_if(keys_.begin(), keys_.end(),
                               [key_id](const auto& key) { return key.key_id() == key_id; });
  return it == keys_.end() ? nullptr : &*it;
}

v1::TicketBody verifyTicket(const v1::SignedTicket& ticket, const TrustedKeys& keys,
                            std::int64_t now) {
  const std::string key_id = quoted(ticket.key_id());
  const v1::PlcPublicKey* trusted = keys.find(ticket.key_id());
  if (trusted == nullptr) {
    throw TicketError(VerifyError::kUnknownKey,
                      describeUnverified(ticket) + " is signed by unknown PLC key " + key_id +
                          (keys.empty() ? " (no PLC keys are trusted here yet)" : "") +
                          "; refresh PLC keys (plcctl / GetPlcKeys) or check the "
                          "ticket's origin");
  }
  if (ticket.signature().size() != std::tuple_size_v<Signature>) {
    throw TicketError(VerifyError::kMalformed,
                      describeUnverified(ticket) + " signed by PLC key " + key_id + " has a " +
                          std::to_string(ticket.signature().size()) +
                          "-byte signature, expected 64; the ticket was truncated or corrupted "
                          "on its way, fetch it again from PLC");
  }
  if (!verifySignature(publicKeyFromBytes(trusted->public_key()), ticket.body(),
                       ticket.signature())) {
    throw TicketError(VerifyError::kBadSignature,
                      describeUnverified(ticket) + ": signature does not verify against PLC key " +
                          key_id +
                          "; the ticket was altered or forged, fetch a fresh one from PLC");
  }

  v1::TicketBody body;
  if (!body.ParseFromString(ticket.body())) {
    throw TicketError(VerifyError::kMalformed,
                      "ticket signed by PLC key " + key_id +
                          " has a body that is not a TicketBody; PLC and this verifier may run "
                          "incompatible versions");
  }
  const std::string what = "ticket for slice " + printable(body.slice_name());
  if (body.issuer_key_id() != ticket.key_id()) {
    throw TicketError(VerifyError::kMalformed,
                      what + " names issuer key " + quoted(body.issuer_key_id()) +
                          " in its body but is signed with PLC key " + key_id +
                          "; refusing it, report this ticket to the PLC operators");
  }
  if (trusted->not_after() != 0 && body.issued_at() > trusted->not_after()) {
    throw TicketError(VerifyError::kRetiredKey,
                      what + " was issued at " + utcTime(body.issued_at()) + " with PLC key " +
                          key_id + ", retired at " + utcTime(trusted->not_after()) +
                          "; request a new ticket from PLC (signed with its current key)");
  }
  if (now < body.not_before()) {
    throw TicketError(VerifyError::kNotYetValid,
                      what + " is not valid before " + utcTime(body.not_before()) + " (now " +
                          utcTime(now) + "); wait, or check this machine's clock");
  }
  if (now >= body.not_after()) {
    throw TicketError(VerifyError::kExpired, what + " expired at " + utcTime(body.not_after()) +
                                                 " (now " + utcTime(now) +
                                                 "); request a new ticket from PLC");
  }
  return body;
}

}  // namespace plng::ticket

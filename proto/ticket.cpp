#include "proto/ticket.h"

#include <openssl/bn.h>
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

// ------------------------------------------------------------ strict Ed25519
//
// Ed25519 works on the twisted Edwards curve -x^2 + y^2 = 1 + d x^2 y^2 over
// GF(p), p = 2^255 - 19, d = -121665/121666. A point is encoded in 32 bytes,
// little-endian: y in bits 0..254, the sign (low bit) of x in bit 255. The
// group has order 8 L (L prime): 8 points have an order dividing 8, and with
// such a public key A (or nonce point R) the verification equation
// [S]B = R + [h]A can hold without any secret, e.g. A = R = identity, S = 0.
// The checks below compare encodings as field elements (y mod p), so every
// encoding of a point is caught: both sign bits, and y + p where it fits.

using Bytes32 = std::array<std::uint8_t, 32>;

struct BnDeleter {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
struct BnCtxDeleter {
  void operator()(BN_CTX* ctx) const { BN_CTX_free(ctx); }
};
using UniqueBn = std::unique_ptr<BIGNUM, BnDeleter>;
using UniqueBnCtx = std::unique_ptr<BN_CTX, BnCtxDeleter>;

UniqueBn newBn() {
  UniqueBn bn(BN_new());
  if (!bn) throwOpenSsl("BN_new");
  return bn;
}

UniqueBnCtx newBnCtx() {
  UniqueBnCtx ctx(BN_CTX_new());
  if (!ctx) throwOpenSsl("BN_CTX_new");
  return ctx;
}

void bnCheck(int ok, const char* what) {
  if (ok != 1) throwOpenSsl(what);
}

Bytes32 littleEndian(const BIGNUM* bn) {
  Bytes32 out{};
  if (BN_bn2lebinpad(bn, out.data(), static_cast<int>(out.size())) !=
      static_cast<int>(out.size())) {
    throwOpenSsl("BN_bn2lebinpad");
  }
  return out;
}

UniqueBn fromLittleEndian(const Bytes32& bytes) {
  UniqueBn bn(BN_lebin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  if (!bn) throwOpenSsl("BN_lebin2bn");
  return bn;
}

// a < b, both little-endian.
bool lessThan(const Bytes32& a, const Bytes32& b) {
  for (std::size_t i = a.size(); i-- > 0;) {
    if (a[i] != b[i]) return a[i] < b[i];
  }
  return false;
}

// a - b, little-endian, for a >= b.
Bytes32 minus(const Bytes32& a, const Bytes32& b) {
  Bytes32 out{};
  int borrow = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    int v = int{a[i]} - int{b[i]} - borrow;
    borrow = v < 0 ? 1 : 0;
    out[i] = static_cast<std::uint8_t>(v + 256 * borrow);
  }
  return out;
}

struct CurveConstants {
  UniqueBn p, d;
  Bytes32 p_bytes{};
  Bytes32 order_bytes{};                // L
  std::vector<Bytes32> small_order_ys;  // y of the 8 points of order dividing 8
};

// x is a square mod p (0 counts): Euler's criterion, x^((p-1)/2) is 0 or 1.
bool isSquare(const BIGNUM* x, const BIGNUM* p, BN_CTX* ctx) {
  if (BN_is_zero(x)) return true;
  auto exponent = newBn();
  bnCheck(BN_sub(exponent.get(), p, BN_value_one()), "BN_sub");
  bnCheck(BN_rshift1(exponent.get(), exponent.get()), "BN_rshift1");
  auto power = newBn();
  bnCheck(BN_mod_exp(power.get(), x, exponent.get(), p, ctx), "BN_mod_exp");
  return BN_is_one(power.get());
}

// Derived from the curve's definition once, with OpenSSL's big numbers.
CurveConstants deriveCurveConstants() {
  auto ctx = newBnCtx();
  CurveConstants c;
  c.p = newBn();
  bnCheck(BN_set_bit(c.p.get(), 255), "BN_set_bit");
  bnCheck(BN_sub_word(c.p.get(), 19), "BN_sub_word");
  const BIGNUM* p = c.p.get();
  c.p_bytes = littleEndian(p);

  // d = -121665 / 121666 mod p.
  auto num = newBn(), den = newBn(), inv = newBn();
  bnCheck(BN_set_word(num.get(), 121665), "BN_set_word");
  bnCheck(BN_set_word(den.get(), 121666), "BN_set_word");
  if (!BN_mod_inverse(inv.get(), den.get(), p, ctx.get())) throwOpenSsl("BN_mod_inverse");
  c.d = newBn();
  bnCheck(BN_mod_mul(c.d.get(), num.get(), inv.get(), p, ctx.get()), "BN_mod_mul");
  bnCheck(BN_sub(c.d.get(), p, c.d.get()), "BN_sub");
  const BIGNUM* d = c.d.get();

  // L = 2^252 + 27742317777372353535851937790883648493.
  BIGNUM* tail = nullptr;
  if (BN_dec2bn(&tail, "27742317777372353535851937790883648493") == 0) throwOpenSsl("BN_dec2bn");
  UniqueBn order(tail);
  auto top = newBn();
  bnCheck(BN_set_bit(top.get(), 252), "BN_set_bit");
  bnCheck(BN_add(order.get(), order.get(), top.get()), "BN_add");
  c.order_bytes = littleEndian(order.get());

  // Order 1: the identity (0, 1). Order 2: (0, -1). Order 4: (+-sqrt(-1), 0).
  auto value = newBn();
  c.small_order_ys.push_back(littleEndian(BN_value_one()));
  bnCheck(BN_sub(value.get(), p, BN_value_one()), "BN_sub");
  c.small_order_ys.push_back(littleEndian(value.get()));
  BN_zero(value.get());
  c.small_order_ys.push_back(littleEndian(value.get()));
  // Order 8: P with 2P of order 4, i.e. y(2P) = (x^2 + y^2) / (2 + x^2 - y^2) = 0, so
  // x^2 = -y^2; on the curve that gives d y^4 + 2 y^2 - 1 = 0, hence
  // y^2 = (-1 +- sqrt(1 + d)) / d. Each root that is a square gives y and -y
  // (and -1 is a square mod p, so x^2 = -y^2 has a root too).
  auto one_plus_d = newBn(), root = newBn(), d_inv = newBn();
  bnCheck(BN_mod_add(one_plus_d.get(), BN_value_one(), d, p, ctx.get()), "BN_mod_add");
  if (!BN_mod_sqrt(root.get(), one_plus_d.get(), p, ctx.get())) throwOpenSsl("BN_mod_sqrt(1+d)");
  if (!BN_mod_inverse(d_inv.get(), d, p, ctx.get())) throwOpenSsl("BN_mod_inverse(d)");
  for (int sign : {1, -1}) {
    auto y2 = newBn();
    if (sign > 0) {
      bnCheck(BN_mod_sub(y2.get(), root.get(), BN_value_one(), p, ctx.get()), "BN_mod_sub");
    } else {
      auto minus_root = newBn();
      bnCheck(BN_sub(minus_root.get(), p, root.get()), "BN_sub");
      bnCheck(BN_mod_sub(y2.get(), minus_root.get(), BN_value_one(), p, ctx.get()), "BN_mod_sub");
    }
    bnCheck(BN_mod_mul(y2.get(), y2.get(), d_inv.get(), p, ctx.get()), "BN_mod_mul");
    if (!isSquare(y2.get(), p, ctx.get())) continue;
    auto y = newBn();
    if (!BN_mod_sqrt(y.get(), y2.get(), p, ctx.get())) throwOpenSsl("BN_mod_sqrt(y^2)");
    c.small_order_ys.push_back(littleEndian(y.get()));
    bnCheck(BN_sub(value.get(), p, y.get()), "BN_sub");
    c.small_order_ys.push_back(littleEndian(value.get()));
  }
  if (c.small_order_ys.size() != 5) {
    throw std::logic_error("Ed25519: expected 5 y values of small-order points, derived " +
                           std::to_string(c.small_order_ys.size()));
  }
  return c;
}

const CurveConstants& curve() {
  static const CurveConstants constants = deriveCurveConstants();
  return constants;
}

// Is there an x with -x^2 + y^2 = 1 + d x^2 y^2, i.e. is (y^2 - 1) / (d y^2 + 1)
// a square? (d is not a square mod p, so the denominator is never 0.)
bool onCurve(const Bytes32& y_bytes) {
  const CurveConstants& c = curve();
  auto ctx = newBnCtx();
  auto y = fromLittleEndian(y_bytes);
  auto y2 = newBn(), u = newBn(), v = newBn(), v_inv = newBn();
  bnCheck(BN_mod_sqr(y2.get(), y.get(), c.p.get(), ctx.get()), "BN_mod_sqr");
  bnCheck(BN_mod_sub(u.get(), y2.get(), BN_value_one(), c.p.get(), ctx.get()), "BN_mod_sub");
  bnCheck(BN_mod_mul(v.get(), c.d.get(), y2.get(), c.p.get(), ctx.get()), "BN_mod_mul");
  bnCheck(BN_mod_add(v.get(), v.get(), BN_value_one(), c.p.get(), ctx.get()), "BN_mod_add");
  if (!BN_mod_inverse(v_inv.get(), v.get(), c.p.get(), ctx.get())) throwOpenSsl("BN_mod_inverse");
  bnCheck(BN_mod_mul(u.get(), u.get(), v_inv.get(), c.p.get(), ctx.get()), "BN_mod_mul");
  return isSquare(u.get(), c.p.get(), ctx.get());
}

// What is wrong with a point encoding (a public key, or a signature's R), or ""
// when nothing is. The curve membership test costs big-number arithmetic: keys
// are tested when registered or trusted; verification leaves it to OpenSSL,
// which refuses points it cannot decode.
std::string pointProblem(const std::uint8_t* encoding, bool test_on_curve) {
  const CurveConstants& c = curve();
  Bytes32 y{};
  std::copy(encoding, encoding + y.size(), y.begin());
  y[31] &= 0x7f;
  const bool canonical = lessThan(y, c.p_bytes);
  const Bytes32 reduced = canonical ? y : minus(y, c.p_bytes);
  if (std::find(c.small_order_ys.begin(), c.small_order_ys.end(), reduced) !=
      c.small_order_ys.end()) {
    return "a small-order point (signatures would verify without any private key)";
  }
  if (!canonical) return "not canonically encoded (its y is not below 2^255 - 19)";
  if (test_on_curve && !onCurve(y)) return "not a point on the Ed25519 curve";
  return "";
}

}  // namespace

std::string publicKeyProblem(const PublicKey& key) {
  return pointProblem(key.data(), /*test_on_curve=*/true);
}

PublicKey parsePublicKey(std::string_view bytes) {
  const PublicKey key = publicKeyFromBytes(bytes);
  if (auto problem = publicKeyProblem(key); !problem.empty()) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (auto b : key) {
      hex.push_back(kHex[b >> 4]);
      hex.push_back(kHex[b & 0xf]);
    }
    throw std::invalid_argument("Ed25519 public key " + hex + " is " + problem);
  }
  return key;
}

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
  const auto* sig = reinterpret_cast<const std::uint8_t*>(signature.data());
  Bytes32 s{};
  std::copy(sig + 32, sig + 64, s.begin());
  if (!pointProblem(public_key.data(), /*test_on_curve=*/false).empty() ||
      !pointProblem(sig, /*test_on_curve=*/false).empty() || !lessThan(s, curve().order_bytes)) {
    return false;
  }
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
    PublicKey raw{};
    std::copy(key.public_key().begin(), key.public_key().end(), raw.begin());
    if (auto problem = publicKeyProblem(raw); !problem.empty()) {
      throw std::invalid_argument("PLC key " + quoted(key.key_id()) + " is " + problem +
                                  "; refusing the key set");
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

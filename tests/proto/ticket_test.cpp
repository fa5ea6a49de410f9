// Ticket signing and offline verification: what a node or broker relies on when
// it accepts or refuses a ticket, including the reason it gives a person.
#include "proto/ticket.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/strings.h"

namespace v1 = planetlab::v1;
using namespace plng::ticket;
using Catch::Matchers::Contains;

namespace Catch {
template <>
struct StringMaker<VerifyError> {
  static std::string convert(VerifyError error) { return toString(error); }
};
}  // namespace Catch

namespace {

constexpr std::int64_t kHour = 3600;
// 2026-11-23T10:00:00Z
constexpr std::int64_t kNow = 1795428000;

std::string hex(const auto& bytes) {
  return plng::base::toHex(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// N bytes from 2N hex digits (base::fromHex refuses anything else).
template <std::size_t N>
std::array<std::uint8_t, N> bytesFromHex(std::string_view text) {
  const std::string bytes = plng::base::fromHex(text);
  if (bytes.size() != N) throw std::logic_error("expected " + std::to_string(N) + " bytes of hex");
  std::array<std::uint8_t, N> out{};
  std::memcpy(out.data(), bytes.data(), N);
  return out;
}

v1::TicketBody makeBody(const std::string& slice = "princeton_x") {
  v1::TicketBody body;
  body.set_ticket_id("00112233445566778899aabbccddeeff");
  body.set_slice_name(slice);
  body.set_xid(1042);
  auto* key = body.add_member_keys();
  key->set_person_email("alice@cs.princeton.edu");
  key->set_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample alice");
  auto* node = body.add_nodes();
  node->set_hostname("planetlab1.cs.princeton.edu");
  (*node->mutable_tags())["cpu_share"] = "32";
  body.set_not_before(kNow - kHour);
  body.set_not_after(kNow + kHour);
  body.set_issued_at(kNow - kHour);
  body.set_instantiation("plc-instantiated");
  return body;
}

v1::PlcPublicKey plcKey(const KeyPair& pair, std::int64_t not_after = 0) {
  v1::PlcPublicKey key;
  key.set_key_id(keyIdOf(pair.public_key));
  key.set_public_key(pair.public_key.data(), pair.public_key.size());
  key.set_created_at(kNow - 24 * kHour);
  key.set_not_after(not_after);
  return key;
}

// The refusal verifyTicket gives; fails the test when the ticket is accepted.
TicketError refusal(const v1::SignedTicket& ticket, const TrustedKeys& keys,
                    std::int64_t now = kNow) {
  try {
    const v1::TicketBody body = verifyTicket(ticket, keys, now);
    FAIL("ticket for slice " << body.slice_name() << " was accepted");
  } catch (const TicketError& error) {
    return error;
  }
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("Ed25519 matches the RFC 8032 test vector", "[ticket]") {
  // RFC 8032 section 7.1, TEST 1 (empty message).
  const auto secret =
      bytesFromHex<32>("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  const auto expected_public =
      bytesFromHex<32>("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const auto expected_signature = bytesFromHex<64>(
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
      "701cf9b46bd25bf5f0595bbe24655141438e7a100b");

  CHECK(publicKeyOf(secret) == expected_public);
  CHECK(sign(secret, "") == expected_signature);
  const std::string_view signature(reinterpret_cast<const char*>(expected_signature.data()),
                                   expected_signature.size());
  CHECK(verifySignature(expected_public, "", signature));
  // First 8 bytes of SHA-256 of the public key, lowercase hex.
  CHECK(keyIdOf(expected_public) == "21fe31dfa154a261");
}

TEST_CASE("generated keys sign and verify raw messages", "[ticket]") {
  const KeyPair pair = generateKeyPair();
  const KeyPair other = generateKeyPair();
  CHECK(pair.private_key != other.private_key);
  CHECK(publicKeyOf(pair.private_key) == pair.public_key);

  const Signature signature = sign(pair.private_key, "hello node");
  const std::string_view sig(reinterpret_cast<const char*>(signature.data()), signature.size());
  CHECK(verifySignature(pair.public_key, "hello node", sig));
  CHECK_FALSE(verifySignature(pair.public_key, "hello nodf", sig));
  CHECK_FALSE(verifySignature(other.public_key, "hello node", sig));
  CHECK_FALSE(verifySignature(pair.public_key, "hello node", sig.substr(0, 63)));
}

TEST_CASE("keyIdOf is stable, 16 lowercase hex chars, distinct per key", "[ticket]") {
  const KeyPair pair = generateKeyPair();
  const std::string id = keyIdOf(pair.public_key);
  CHECK(id == keyIdOf(pair.public_key));
  CHECK(id == keyIdOf(publicKeyOf(pair.private_key)));
  REQUIRE(id.size() == 16);
  CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(id != keyIdOf(generateKeyPair().public_key));
}

TEST_CASE("publicKeyFromBytes accepts exactly 32 bytes", "[ticket]") {
  const KeyPair pair = generateKeyPair();
  const std::string raw(reinterpret_cast<const char*>(pair.public_key.data()), 32);
  CHECK(publicKeyFromBytes(raw) == pair.public_key);
  CHECK_THROWS_AS(publicKeyFromBytes(raw.substr(0, 31)), std::invalid_argument);
  CHECK_THROWS_AS(publicKeyFromBytes(raw + "x"), std::invalid_argument);
}

TEST_CASE("a signed ticket round-trips through verification", "[ticket]") {
  const KeyPair plc = generateKeyPair();
  const v1::SignedTicket ticket = signTicket(makeBody(), plc.private_key);

  CHECK(ticket.key_id() == keyIdOf(plc.public_key));
  CHECK(ticket.signature().size() == 64);

  const v1::TicketBody body = verifyTicket(ticket, TrustedKeys({plcKey(plc)}), kNow);
  CHECK(body.slice_name() == "princeton_x");
  CHECK(body.xid() == 1042);
  CHECK(body.issuer_key_id() == keyIdOf(plc.public_key));
  REQUIRE(body.member_keys_size() == 1);
  CHECK(body.member_keys(0).person_email() == "alice@cs.princeton.edu");
  REQUIRE(body.nodes_size() == 1);
  CHECK(body.nodes(0).tags().at("cpu_share") == "32");
}

TEST_CASE("signTicket overrides a caller-set issuer key id", "[ticket]") {
  const KeyPair plc = generateKeyPair();
  v1::TicketBody body = makeBody();
  body.set_issuer_key_id("stale");
  const v1::SignedTicket ticket = signTicket(body, plc.private_key);
  CHECK(verifyTicket(ticket, TrustedKeys({plcKey(plc)}), kNow).issuer_key_id() ==
        keyIdOf(plc.public_key));
}

TEST_CASE("tampered tickets are refused as bad signatures", "[ticket]") {
  const KeyPair plc = generateKeyPair();
  const TrustedKeys keys({plcKey(plc)});
  v1::SignedTicket ticket = signTicket(makeBody(), plc.private_key);
  const std::string key_id = keyIdOf(plc.public_key);

  SECTION("one body byte flipped") {
    std::string* body = ticket.mutable_body();
    (*body)[body->size() / 2] = static_cast<char>((*body)[body->size() / 2] ^ 0x01);
    const TicketError error = refusal(ticket, keys);
    CHECK(error.code() == VerifyError::kBadSignature);
    CHECK_THAT(error.what(), Contains(key_id));
  }
  SECTION("validity extended by re-serialising the body") {
    v1::TicketBody body;
    REQUIRE(body.ParseFromString(ticket.body()));
    body.set_not_after(kNow + 365 * 24 * kHour);
    ticket.set_body(body.SerializeAsString());
    const TicketError error = refusal(ticket, keys);
    CHECK(error.code() == VerifyError::kBadSignature);
    CHECK_THAT(error.what(), Contains(key_id) && Contains("princeton_x"));
  }
  SECTION("one signature byte flipped") {
    std::string* signature = ticket.mutable_signature();
    (*signature)[10] = static_cast<char>((*signature)[10] ^ 0x80);
    const TicketError error = refusal(ticket, keys);
    CHECK(error.code() == VerifyError::kBadSignature);
    CHECK_THAT(error.what(), Contains(key_id));
  }
  SECTION("signature from another key under this key's id") {
    const KeyPair forger = generateKeyPair();
    const Signature forged = sign(forger.private_key, ticket.body());
    ticket.set_signature(forged.data(), forged.size());
    const TicketError error = refusal(ticket, keys);
    CHECK(error.code() == VerifyError::kBadSignature);
    CHECK_THAT(error.what(), Contains(key_id));
  }
}

TEST_CASE("a signature of the wrong length is malformed", "[ticket]") {
  const KeyPair plc = generateKeyPair();
  const TrustedKeys keys({plcKey(plc)});
  v1::SignedTicket ticket = signTicket(makeBody(), plc.private_key);

  SECTION("truncated") { ticket.mutable_signature()->resize(63); }
  SECTION("empty") { ticket.clear_signature(); }
  SECTION("too long") { ticket.mutable_signature()->push_back('\0'); }

  const TicketError error = refusal(ticket, keys);
  CHECK(error.code() == VerifyError::kMalformed);
  CHECK_THAT(error.what(), Contains(keyIdOf(plc.public_key)));
}

TEST_CASE("a ticket signed by an untrusted key is refused as unknown", "[ticket]") {
  const KeyPair plc = generateKeyPair();
  const KeyPair stranger = generateKeyPair();
  const v1::SignedTicket ticket = signTicket(makeBody(), stranger.private_key);

  const TicketError error = refusal(ticket, TrustedKeys({plcKey(plc)}));
  CHECK(error.code() == VerifyError::kUnknownKey);
  CHECK_THAT(error.what(), Contains(keyIdOf(stranger.public_key)) && Contains("GetPlcKeys"));

  // Checked before anything else in the ticket: an unknown key with a broken
  // signature is still reported as unknown.
  v1::SignedTicket truncated = ticket;
  truncated.mutable_signature()->resize(10);
  CHECK(refusal(truncated, TrustedKeys({plcKey(plc)})).code() == VerifyError::kUnknownKey);

  const TicketError none = refusal(ticket, TrustedKeys());
  CHECK(none.code() == VerifyError::kUnknownKey);
  CHECK_THAT(none.what(), Contains(keyIdOf(stranger.public_key)));
}

TEST_CASE("validity window: not before and expiry", "[ticket]") {
  const KeyPair plc = generateKeyPair();
  const TrustedKeys keys({plcKey(plc)});
  v1::TicketBody body = makeBody();
  body.set_not_before(kNow);
  body.set_not_after(kNow + kHour);
  const v1::SignedTicket ticket = signTicket(body, plc.private_key);

  CHECK_NOTHROW(verifyTicket(ticket, keys, kNow));
  CHECK_NOTHROW(verifyTicket(ticket, keys, kNow + kHour - 1));

  SECTION("one second early") {
    const TicketError error = refusal(ticket, keys, kNow - 1);
    CHECK(error.code() == VerifyError::kNotYetValid);
    CHECK_THAT(error.what(), Contains("princeton_x") && Contains("2026-11-23T10:00:00Z") &&
                                 Contains("2026-11-23T09:59:59Z"));
  }
  SECTION("at not_after") {
    const TicketError error = refusal(ticket, keys, kNow + kHour);
    CHECK(error.code() == VerifyError::kExpired);
    CHECK_THAT(error.what(), Contains("ticket for slice princeton_x expired at "
                                      "2026-11-23T11:00:00Z (now 2026-11-23T11:00:00Z)"));
  }
  SECTION("long after") {
    const TicketError error = refusal(ticket, keys, kNow + 24 * kHour);
    CHECK(error.code() == VerifyError::kExpired);
    CHECK_THAT(error.what(), Contains("princeton_x") && Contains("2026-11-24T10:00:00Z"));
  }
}

TEST_CASE("tickets issued after their key was retired are refused", "[ticket]") {
  const KeyPair plc = generateKeyPair();
  v1::TicketBody body = makeBody();
  body.set_issued_at(kNow - kHour);
  const v1::SignedTicket ticket = signTicket(body, plc.private_key);

  SECTION("retired before issue") {
    const TicketError error = refusal(ticket, TrustedKeys({plcKey(plc, kNow - kHour - 1)}));
    CHECK(error.code() == VerifyError::kRetiredKey);
    CHECK_THAT(error.what(), Contains("princeton_x") && Contains(keyIdOf(plc.public_key)));
  }
  SECTION("retired at the moment of issue or later: still valid") {
    CHECK_NOTHROW(verifyTicket(ticket, TrustedKeys({plcKey(plc, kNow - kHour)}), kNow));
    CHECK_NOTHROW(verifyTicket(ticket, TrustedKeys({plcKey(plc, kNow - 30 * 60)}), kNow));
  }
  SECTION("retirement is checked before the validity window") {
    const TicketError error =
        refusal(ticket, TrustedKeys({plcKey(plc, kNow - kHour - 1)}), kNow + 24 * kHour);
    CHECK(error.code() == VerifyError::kRetiredKey);
  }
}

TEST_CASE("during key rotation tickets from both keys verify", "[ticket]") {
  const KeyPair old_key = generateKeyPair();
  const KeyPair new_key = generateKeyPair();
  // The old key stopped signing an hour ago; tickets it issued before then stay valid.
  const TrustedKeys keys({plcKey(old_key, kNow - kHour), plcKey(new_key)});

  v1::TicketBody old_body = makeBody("princeton_old");
  old_body.set_issued_at(kNow - 2 * kHour);
  const v1::TicketBody new_body = makeBody("princeton_new");

  CHECK(verifyTicket(signTicket(old_body, old_key.private_key), keys, kNow).slice_name() ==
        "princeton_old");
  CHECK(verifyTicket(signTicket(new_body, new_key.private_key), keys, kNow).slice_name() ==
        "princeton_new");

  // A ticket the old key signed after its retirement is refused, the new one's is not.
  v1::TicketBody late = makeBody("princeton_late");
  late.set_issued_at(kNow);
  CHECK(refusal(signTicket(late, old_key.private_key), keys).code() == VerifyError::kRetiredKey);
  CHECK_NOTHROW(verifyTicket(signTicket(late, new_key.private_key), keys, kNow));
}

TEST_CASE("a body naming another issuer key is malformed", "[ticket]") {
  const KeyPair plc = generateKeyPair();
  const KeyPair other = generateKeyPair();
  v1::TicketBody body = makeBody();
  body.set_issuer_key_id(keyIdOf(other.public_key));
  v1::SignedTicket ticket;
  ticket.set_body(body.SerializeAsString());
  const Signature signature = sign(plc.private_key, ticket.body());
  ticket.set_signature(signature.data(), signature.size());
  ticket.set_key_id(keyIdOf(plc.public_key));

  const TicketError error = refusal(ticket, TrustedKeys({plcKey(plc), plcKey(other)}));
  CHECK(error.code() == VerifyError::kMalformed);
  CHECK_THAT(error.what(), Contains("princeton_x") && Contains(keyIdOf(plc.public_key)) &&
                               Contains(keyIdOf(other.public_key)));
}

TEST_CASE("a correctly signed body that is not a TicketBody is malformed", "[ticket]") {
  const KeyPair plc = generateKeyPair();
  v1::SignedTicket ticket;
  ticket.set_body(std::string("\xff\xff\xff\xff", 4));  // an unterminated varint tag
  const Signature signature = sign(plc.private_key, ticket.body());
  ticket.set_signature(signature.data(), signature.size());
  ticket.set_key_id(keyIdOf(plc.public_key));

  const TicketError error = refusal(ticket, TrustedKeys({plcKey(plc)}));
  CHECK(error.code() == VerifyError::kMalformed);
  CHECK_THAT(error.what(), Contains(keyIdOf(plc.public_key)));
}

TEST_CASE("TrustedKeys refuses unusable key sets and keeps the old one", "[ticket]") {
  const KeyPair plc = generateKeyPair();
  TrustedKeys keys({plcKey(plc)});
  const std::string id = keyIdOf(plc.public_key);
  REQUIRE(keys.find(id) != nullptr);
  CHECK(keys.find("0000000000000000") == nullptr);

  v1::PlcPublicKey short_key = plcKey(generateKeyPair());
  short_key.mutable_public_key()->resize(31);
  CHECK_THROWS_AS(keys.replace({short_key}), std::invalid_argument);
  CHECK_THROWS_AS(keys.replace({plcKey(plc), plcKey(plc)}), std::invalid_argument);
  CHECK(keys.find(id) != nullptr);

  keys.replace({});
  CHECK(keys.empty());
}

TEST_CASE("every refusal reason has a distinct name", "[ticket]") {
  const std::vector<VerifyError> all = {VerifyError::kMalformed,    VerifyError::kUnknownKey,
                                        VerifyError::kBadSignature, VerifyError::kRetiredKey,
                                        VerifyError::kNotYetValid,  VerifyError::kExpired};
  std::set<std::string> names;
  for (VerifyError error : all) names.insert(toString(error));
  CHECK(names.size() == all.size());
}

// ------------------------------------------------------------ strict Ed25519

namespace {

using Bytes32 = std::array<std::uint8_t, 32>;

// OpenSSL's own Ed25519 verification, without this library's policy.
bool opensslAccepts(const Bytes32& public_key, std::string_view message, const Signature& sig) {
  EVP_PKEY* pkey =
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size());
  if (pkey == nullptr) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pkey) == 1 &&
      EVP_DigestVerify(ctx, sig.data(), sig.size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  ERR_clear_error();
  return ok;
}

std::string_view view(const Signature& sig) {
  return {reinterpret_cast<const char*>(sig.data()), sig.size()};
}

// 64 hex digits, for constants.
Bytes32 bytes32(std::string_view text) { return bytesFromHex<32>(text); }

std::string raw(const Bytes32& key) { return {reinterpret_cast<const char*>(key.data()), 32}; }

Bytes32 withSign(Bytes32 encoding, bool negative) {
  encoding[31] = static_cast<std::uint8_t>((encoding[31] & 0x7f) | (negative ? 0x80 : 0));
  return encoding;
}

// little-endian a + b (mod 2^256).
Bytes32 plus(const Bytes32& a, const Bytes32& b) {
  Bytes32 out{};
  unsigned carry = 0;
  for (std::size_t i = 0; i < 32; ++i) {
    unsigned v = unsigned{a[i]} + b[i] + carry;
    out[i] = static_cast<std::uint8_t>(v);
    carry = v >> 8;
  }
  return out;
}

// p = 2^255 - 19 and the group order L = 2^252 + 27742317777372353535851937790883648493,
// little-endian.
const Bytes32 kP = bytes32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
const Bytes32 kL = bytes32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");

// The y coordinates of the 8 points of order dividing 8: identity (1), order 2
// (p - 1), order 4 (0), order 8 (two values). Published test vectors; the
// library derives them from the curve equation instead, and the test below
// shows with OpenSSL's own arithmetic that each is a small-order point.
const std::vector<Bytes32> kSmallOrderYs = {
    bytes32("0100000000000000000000000000000000000000000000000000000000000000"),
    bytes32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes32("0000000000000000000000000000000000000000000000000000000000000000"),
    bytes32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    bytes32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
};

Signature forgedSignature() {
  // R = the identity (01 00..00), S = 0: what the issue's attacker sent.
  Signature sig{};
  sig[0] = 1;
  return sig;
}

}  // namespace

TEST_CASE("the issue's forged node login verifies with OpenSSL alone, never here", "[ticket]") {
  const Bytes32 all_zero{};
  Bytes32 identity{};
  identity[0] = 1;
  const Signature sig = forgedSignature();
  // The identity key accepts R = identity, S = 0 for every message.
  CHECK(opensslAccepts(identity, "planetlab-node-login\0anything", sig));
  CHECK_FALSE(verifySignature(identity, "planetlab-node-login\0anything", view(sig)));
  for (int i = 0; i < 64; ++i) {
    const std::string message = "message " + std::to_string(i);
    CHECK_FALSE(verifySignature(all_zero, message, view(sig)));
    CHECK_FALSE(verifySignature(identity, message, view(sig)));
  }
  CHECK_THROWS_WITH(parsePublicKey(raw(all_zero)), Contains("small-order"));
  CHECK_THROWS_WITH(parsePublicKey(raw(identity)), Contains("small-order"));
}

TEST_CASE("every encoding of every small-order point is refused as a key and as R", "[ticket]") {
  const KeyPair honest = generateKeyPair();
  std::size_t forged_with_openssl = 0;
  for (const Bytes32& y : kSmallOrderYs) {
    for (bool negative : {false, true}) {
      const Bytes32 encoding = withSign(y, negative);
      INFO("encoding " << hex(encoding));
      CHECK_THAT(publicKeyProblem(encoding), Contains("small-order"));
      CHECK_THROWS_AS(parsePublicKey(raw(encoding)), std::invalid_argument);
      // As R of an otherwise honest signature.
      Signature sig = sign(honest.private_key, "m");
      std::copy(encoding.begin(), encoding.end(), sig.begin());
      CHECK_FALSE(verifySignature(honest.public_key, "m", view(sig)));

      // OpenSSL's arithmetic shows the point is of small order: with A = this
      // point, R = identity and S = 0 verify whenever [h]A is the identity, which
      // happens for 1 hash in ord(A) <= 8. x = 0 with the sign bit set is not a
      // valid encoding of the identity or (0, -1), so OpenSSL has no point there.
      const bool x_is_zero = y == kSmallOrderYs[0] || y == kSmallOrderYs[1];
      if (negative && x_is_zero) continue;
      bool found = false;
      for (int i = 0; i < 512 && !found; ++i) {
        const std::string message = "forge " + std::to_string(i);
        if (opensslAccepts(encoding, message, forgedSignature())) {
          found = true;
          ++forged_with_openssl;
          CHECK_FALSE(verifySignature(encoding, message, view(forgedSignature())));
        }
      }
      CHECK(found);
    }
  }
  CHECK(forged_with_openssl == 8);  // the 8 points, each forged with OpenSSL
}

TEST_CASE("non-canonical encodings (y >= p) are refused, small-order or not", "[ticket]") {
  for (std::uint8_t k = 0; k < 19; ++k) {
    Bytes32 offset{};
    offset[0] = k;
    const Bytes32 y = plus(kP, offset);  // p + k, still below 2^255
    for (bool negative : {false, true}) {
      const Bytes32 encoding = withSign(y, negative);
      INFO("y = p + " << int{k} << (negative ? ", sign bit set" : ""));
      const std::string problem = publicKeyProblem(encoding);
      // p + 0 and p + 1 encode y = 0 and y = 1: small-order points.
      CHECK_THAT(problem, Contains(k < 2 ? "small-order" : "not canonically encoded"));
      CHECK_THROWS_AS(parsePublicKey(raw(encoding)), std::invalid_argument);
      Signature sig{};
      std::copy(encoding.begin(), encoding.end(), sig.begin());
      CHECK_FALSE(verifySignature(generateKeyPair().public_key, "m", view(sig)));
    }
  }
}

TEST_CASE("a signature with S >= L is refused (no second encoding of a signature)", "[ticket]") {
  const KeyPair pair = generateKeyPair();
  const Signature good = sign(pair.private_key, "message");
  REQUIRE(verifySignature(pair.public_key, "message", view(good)));
  Bytes32 s{};
  std::copy(good.begin() + 32, good.end(), s.begin());
  Signature malleated = good;
  const Bytes32 s_plus_l = plus(s, kL);
  std::copy(s_plus_l.begin(), s_plus_l.end(), malleated.begin() + 32);
  CHECK_FALSE(verifySignature(pair.public_key, "message", view(malleated)));
  Signature at_l = good;
  std::copy(kL.begin(), kL.end(), at_l.begin() + 32);
  CHECK_FALSE(verifySignature(pair.public_key, "message", view(at_l)));
}

TEST_CASE("honest keys pass; about half of all y values are not on the curve", "[ticket]") {
  for (int i = 0; i < 100; ++i) {
    const KeyPair pair = generateKeyPair();
    INFO(hex(pair.public_key));
    CHECK(publicKeyProblem(pair.public_key).empty());
    CHECK(parsePublicKey(raw(pair.public_key)) == pair.public_key);
  }
  // For a random canonical y, x^2 = (y^2 - 1)/(d y^2 + 1) has a root half the time.
  int off_curve = 0;
  for (int i = 0; i < 400; ++i) {
    Bytes32 y = generateKeyPair().private_key;  // 32 random bytes
    y[31] &= 0x3f;                              // canonical
    const std::string problem = publicKeyProblem(y);
    if (problem.find("not a point") != std::string::npos) ++off_curve;
  }
  CHECK(off_curve > 120);
  CHECK(off_curve < 280);
}

TEST_CASE("TrustedKeys refuses a small-order PLC key and keeps the old set", "[ticket]") {
  const KeyPair plc = generateKeyPair();
  TrustedKeys keys({plcKey(plc)});
  v1::PlcPublicKey weak;
  weak.set_key_id("0000000000000000");
  weak.set_public_key(std::string(32, '\0'));
  CHECK_THROWS_WITH(keys.replace({plcKey(plc), weak}), Contains("small-order"));
  CHECK(keys.find(keyIdOf(plc.public_key)) != nullptr);
  CHECK(keys.find("0000000000000000") == nullptr);
}

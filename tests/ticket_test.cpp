// Ticket signing and offline verification: what a node or broker relies on when
// it accepts or refuses a ticket, including the reason it gives a person.
#include "ticket.h"

#include <array>
#include <catch2/catch.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

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
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (auto b : bytes) {
    out.push_back(kHex[static_cast<std::uint8_t>(b) >> 4]);
    out.push_back(kHex[static_cast<std::uint8_t>(b) & 0xf]);
  }
  return out;
}

template <std::size_t N>
std::array<std::uint8_t, N> fromHex(std::string_view text) {
  REQUIRE(text.size() == 2 * N);
  std::array<std::uint8_t, N> out{};
  for (std::size_t i = 0; i < N; ++i) {
    out[i] = static_cast<std::uint8_t>(std::stoi(std::string(text.substr(2 * i, 2)), nullptr, 16));
  }
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
      fromHex<32>("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  const auto expected_public =
      fromHex<32>("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const auto expected_signature = fromHex<64>(
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

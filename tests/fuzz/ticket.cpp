// Fuzz target: ticket parsing and verification (proto/ticket.h), as a node or
// broker meets a ticket from the network.
//
// Input: the bytes of a SignedTicket. Properties:
//  - verifyTicket refuses with TicketError and nothing else; when it accepts,
//    the signature verifies over the exact body bytes, the body names the
//    signing key and `now` lies in its window;
//  - any body that parses, signed with the trusted key, survives a
//    serialise/parse round trip and verifies exactly when its window holds; one
//    flipped bit of that body or its signature makes it fail as a bad signature;
//  - no forgery: a public key and signature taken from the input never verify
//    a message (the fuzzer holds no private key, so an accepted signature means
//    the verifier accepts a weak key or signature).
#include "proto/ticket.h"

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/message_differencer.h>

#include <array>
#include <cstring>
#include <optional>
#include <string>

#include "tests/fuzz/fuzz_harness.h"

namespace {

namespace v1 = planetlab::v1;
using plng::fuzz::fail;
using plng::ticket::TicketError;
using plng::ticket::VerifyError;

// Protobuf logs every string that is not UTF-8; the fuzzer makes many.
[[maybe_unused]] const bool kQuiet = (google::protobuf::SetLogHandler(nullptr), true);

constexpr std::int64_t kNow = 1'800'000'000;  // 2027-01-15

plng::ticket::PrivateKey fixedKey(std::uint8_t first) {
  plng::ticket::PrivateKey key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(first + i);
  return key;
}

struct Keys {
  plng::ticket::PrivateKey current = fixedKey(1);
  plng::ticket::PrivateKey retired = fixedKey(101);
  plng::ticket::TrustedKeys trusted;
  std::string current_id;
  Keys() {
    auto entry = [](const plng::ticket::PrivateKey& key, std::int64_t not_after) {
      auto pub = plng::ticket::publicKeyOf(key);
      v1::PlcPublicKey k;
      k.set_key_id(plng::ticket::keyIdOf(pub));
      k.set_public_key(pub.data(), pub.size());
      k.set_not_after(not_after);
      return k;
    };
    trusted.replace({entry(current, 0), entry(retired, kNow - 3600)});
    current_id = plng::ticket::keyIdOf(plng::ticket::publicKeyOf(current));
  }
};

const Keys& keys() {
  static const Keys k;
  return k;
}

bool inWindow(const v1::TicketBody& body) {
  return body.not_before() <= kNow && kNow < body.not_after();
}

// The reason verifyTicket refuses `ticket`, or nullopt when it accepts it.
std::optional<VerifyError> verdict(const v1::SignedTicket& ticket, v1::TicketBody* out) {
  try {
    v1::TicketBody body = plng::ticket::verifyTicket(ticket, keys().trusted, kNow);
    if (out != nullptr) *out = std::move(body);
    return std::nullopt;
  } catch (const TicketError& e) {
    return e.code();
  }
}

void checkAccepted(const v1::SignedTicket& ticket, const v1::TicketBody& body) {
  const auto* key = keys().trusted.find(ticket.key_id());
  if (key == nullptr) fail("accepted a ticket signed by an unknown key");
  if (!plng::ticket::verifySignature(plng::ticket::publicKeyFromBytes(key->public_key()),
                                     ticket.body(), ticket.signature())) {
    fail("accepted a ticket whose signature does not verify");
  }
  if (body.issuer_key_id() != ticket.key_id()) fail("accepted a ticket naming another issuer");
  if (!inWindow(body)) fail("accepted a ticket outside its validity window");
}

// Signs `body` with the trusted key and checks the verdict, the round trip and
// that one flipped bit (chosen by `salt`) is refused.
void checkSigned(const v1::TicketBody& body, std::size_t salt) {
  v1::SignedTicket signed_ticket = plng::ticket::signTicket(body, keys().current);
  v1::SignedTicket reparsed;
  if (!reparsed.ParseFromString(signed_ticket.SerializeAsString())) {
    fail("a signed ticket does not parse back");
  }
  v1::TicketBody verified;
  auto result = verdict(reparsed, &verified);
  if (inWindow(body)) {
    if (result)
      fail(std::string("a ticket PLC signed was refused: ") + plng::ticket::toString(*result));
    v1::TicketBody expected = body;
    expected.set_issuer_key_id(keys().current_id);
    if (!google::protobuf::util::MessageDifferencer::Equals(verified, expected)) {
      fail("verifyTicket returned another body than the one signed");
    }
  } else if (result != VerifyError::kNotYetValid && result != VerifyError::kExpired) {
    fail("a ticket outside its window was not refused as not yet valid or expired");
  }

  v1::SignedTicket tampered = reparsed;
  std::string* bytes = (salt & 1) != 0 && !tampered.body().empty() ? tampered.mutable_body()
                                                                   : tampered.mutable_signature();
  std::size_t bit = (salt >> 1) % (bytes->size() * 8);
  (*bytes)[bit / 8] = static_cast<char>((*bytes)[bit / 8] ^ (1 << (bit % 8)));
  if (verdict(tampered, nullptr) != VerifyError::kBadSignature) {
    fail("a ticket with one flipped bit was not refused as a bad signature");
  }
}

void checkNoForgery(std::string_view input) {
  if (input.size() < 96) return;
  plng::ticket::PublicKey key{};
  std::memcpy(key.data(), input.data(), key.size());
  std::string_view signature = input.substr(32, 64);
  std::string message = "plng fuzz: a message nobody signed";
  message.append(input.substr(96));
  bool accepted = false;
  try {
    accepted = plng::ticket::verifySignature(key, message, signature);
  } catch (const std::runtime_error&) {
    return;  // OpenSSL refused the key outright
  }
  if (accepted) fail("Ed25519 verification accepted a signature no private key made");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = plng::fuzz::asText(data, size);
  checkNoForgery(input);

  v1::SignedTicket ticket;
  if (!ticket.ParseFromArray(data, static_cast<int>(size))) return 0;
  v1::TicketBody body;
  if (!verdict(ticket, &body)) checkAccepted(ticket, body);

  v1::TicketBody claimed;
  if (claimed.ParseFromString(ticket.body())) {
    std::size_t salt = 0;
    for (unsigned char c : input.substr(0, 16)) salt = salt * 131 + c;
    checkSigned(claimed, salt);
  }
  return 0;
}

std::vector<plng::fuzz::Seed> plng::fuzz::generatedSeeds() {
  v1::TicketBody body;
  body.set_ticket_id("00112233445566778899aabbccddeeff");
  body.set_slice_name("princeton_codeen");
  body.set_xid(5001);
  auto* key = body.add_member_keys();
  key->set_person_email("alice@cs.princeton.edu");
  key->set_key(
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice");
  auto* node = body.add_nodes();
  node->set_hostname("node1.example.org");
  (*node->mutable_tags())["cpu_share"] = "64";
  (*node->mutable_tags())["ports"] = "tcp:80,tcp:8000-8100";
  body.set_not_before(kNow - 60);
  body.set_not_after(kNow + 3600);
  body.set_issued_at(kNow - 60);
  body.set_instantiation("plc-instantiated");

  std::vector<Seed> seeds;
  seeds.push_back({"valid", plng::ticket::signTicket(body, keys().current).SerializeAsString()});
  v1::TicketBody expired = body;
  expired.set_not_after(kNow - 1);
  seeds.push_back(
      {"expired", plng::ticket::signTicket(expired, keys().current).SerializeAsString()});
  seeds.push_back(
      {"retired-key", plng::ticket::signTicket(body, keys().retired).SerializeAsString()});
  v1::SignedTicket unknown = plng::ticket::signTicket(body, fixedKey(200));
  seeds.push_back({"unknown-key", unknown.SerializeAsString()});
  return seeds;
}

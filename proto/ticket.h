// Ticket signing and offline verification (Ed25519 via OpenSSL EVP).
//
// PLC signs the serialised TicketBody; nodes and brokers verify the exact bytes
// they received against the set of PLC public keys they trust (several may be
// valid at once while keys rotate).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "proto/ticket.pb.h"

namespace plng::ticket {

using PublicKey = std::array<std::uint8_t, 32>;
using PrivateKey = std::array<std::uint8_t, 32>;  // Ed25519 seed
using Signature = std::array<std::uint8_t, 64>;

struct KeyPair {
  PublicKey public_key;
  PrivateKey private_key;
};

// A fresh Ed25519 key pair from the OpenSSL CSPRNG.
KeyPair generateKeyPair();
// The public key derived from a private key (seed).
PublicKey publicKeyOf(const PrivateKey& private_key);
// Short stable identifier of a public key: hex of the first 8 bytes of its SHA-256.
std::string keyIdOf(const PublicKey& public_key);

Signature sign(const PrivateKey& private_key, std::string_view message);

// Strict Ed25519 verification, the one policy for every key PLC and nodes use.
// Beyond RFC 8032 (which OpenSSL implements), it refuses what lets a signature
// verify without a private key or lets one signature have several encodings:
// a public key or a signature's R that is a small-order point (one of the 8
// points of order dividing 8, whatever its sign bit) or not canonically encoded
// (y >= p), and an S that is not below the group order L. With the all-zero
// public key or the identity (01 00..00), OpenSSL alone accepts R = identity,
// S = 0 for any message.
bool verifySignature(const PublicKey& public_key, std::string_view message,
                     std::string_view signature);

// Why `key` is not acceptable as an Ed25519 public key under that policy
// ("a small-order point", "not canonically encoded", "not a point on the
// curve"), or an empty string when it is.
std::string publicKeyProblem(const PublicKey& key);

// Parses a 32-byte raw key held in a protobuf bytes field; throws
// std::invalid_argument when the size is wrong. Does not vet the point: keys
// that are registered or trusted go through parsePublicKey.
PublicKey publicKeyFromBytes(std::string_view bytes);

// A raw 32-byte Ed25519 public key that passes publicKeyProblem(); throws
// std::invalid_argument saying what is wrong with it otherwise. Used wherever a
// key is registered or trusted: node keys at PLC, PLC's own keys, the PLC keys a
// node or broker accepts (TrustedKeys).
PublicKey parsePublicKey(std::string_view bytes);

enum class VerifyError {
  kMalformed,     // body does not parse, wrong signature length, key id mismatch
  kUnknownKey,    // key_id is not among the trusted PLC keys
  kBadSignature,  // signature does not verify: forged or tampered
  kRetiredKey,    // key was retired before the ticket was issued
  kNotYetValid,   // now < not_before
  kExpired,       // now >= not_after
};

const char* toString(VerifyError error);

class TicketError : public std::runtime_error {
 public:
  TicketError(VerifyError code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  VerifyError code() const { return code_; }

 private:
  VerifyError code_;
};

// Signs `body` with `private_key`, setting body.issuer_key_id to the key's id.
planetlab::v1::SignedTicket signTicket(planetlab::v1::TicketBody body,
                                       const PrivateKey& private_key);

// The keys a verifier trusts, as PLC publishes them. replace() throws
// std::invalid_argument (and keeps the old set) when a key is not 32 raw bytes,
// fails parsePublicKey, or a key id appears twice. Const use is thread-safe; to rotate keys under
// concurrent verifiers, build a new TrustedKeys and swap it in atomically.
class TrustedKeys {
 public:
  TrustedKeys() = default;
  explicit TrustedKeys(const std::vector<planetlab::v1::PlcPublicKey>& keys) { replace(keys); }
  void replace(const std::vector<planetlab::v1::PlcPublicKey>& keys);
  const planetlab::v1::PlcPublicKey* find(std::string_view key_id) const;
  bool empty() const { return keys_.empty(); }

 private:
  std::vector<planetlab::v1::PlcPublicKey> keys_;
};

// Verifies signature, key and validity window at time `now` (unix seconds);
// returns the parsed body or throws TicketError with a distinct code for each
// reason a ticket is refused.
planetlab::v1::TicketBody verifyTicket(const planetlab::v1::SignedTicket& ticket,
                                       const TrustedKeys& keys, std::int64_t now);

}  // namespace plng::ticket

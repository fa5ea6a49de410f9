// A node's login to PLC in tests: GetNodeChallenge, then NodeLogin with the
// challenge signed by the node's key (the bytes plng::proto::nodeLoginMessage names).
#pragma once

#include <string>

#include "proto/ticket.h"
#include "tests/support/plc_client.h"

namespace plng::test {

// The node's signature of `nonce`, as bytes for NodeLoginRequest.signature.
std::string nodeLoginSignature(const plng::ticket::PrivateKey& key, const std::string& hostname,
                               const std::string& nonce);

planetlab::v1::NodeLoginRequest nodeLoginRequest(const std::string& hostname,
                                                 const std::string& nonce,
                                                 const std::string& signature);

// A NodeLoginRequest for `nonce` signed with `key`.
planetlab::v1::NodeLoginRequest signedNodeLogin(const std::string& hostname,
                                                const std::string& nonce,
                                                const plng::ticket::PrivateKey& key);

// Asks `anonymous`'s PLC for a challenge and logs in as `hostname` with `key`;
// on success `*token` is the node's session token. Returns the first failure.
grpc::Status nodeLogin(const PlcClient& anonymous, const std::string& hostname,
                       const plng::ticket::PrivateKey& key, std::string* token);

// `anonymous` logged in as the node (a Catch2 REQUIRE that the login succeeds).
PlcClient loggedInNode(const PlcClient& anonymous, const std::string& hostname,
                       const plng::ticket::PrivateKey& key);

}  // namespace plng::test

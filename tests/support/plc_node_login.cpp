#include "tests/support/plc_node_login.h"

#include <catch2/catch.hpp>

#include "proto/node_protocol.h"

namespace plng::test {

namespace pb = planetlab::v1;

std::string nodeLoginSignature(const plng::ticket::PrivateKey& key, const std::string& hostname,
                               const std::string& nonce) {
  auto sig = plng::ticket::sign(key, plng::proto::nodeLoginMessage(hostname, nonce));
  return {reinterpret_cast<const char*>(sig.data()), sig.size()};
}

pb::NodeLoginRequest nodeLoginRequest(const std::string& hostname, const std::string& nonce,
                                      const std::string& signature) {
  pb::NodeLoginRequest r;
  r.set_hostname(hostname);
  r.set_nonce(nonce);
  r.set_signature(signature);
  return r;
}

pb::NodeLoginRequest signedNodeLogin(const std::string& hostname, const std::string& nonce,
                                     const plng::ticket::PrivateKey& key) {
  return nodeLoginRequest(hostname, nonce, nodeLoginSignature(key, hostname, nonce));
}

grpc::Status nodeLogin(const PlcClient& anonymous, const std::string& hostname,
                       const plng::ticket::PrivateKey& key, std::string* token) {
  pb::NodeChallengeRequest ask;
  ask.set_hostname(hostname);
  auto [asked, challenge] = anonymous.call(&pb::Auth::Stub::GetNodeChallenge, ask);
  if (!asked.ok()) return asked;
  auto [logged_in, session] =
      anonymous.call(&pb::Auth::Stub::NodeLogin, signedNodeLogin(hostname, challenge.nonce(), key));
  if (logged_in.ok()) *token = session.token();
  return logged_in;
}

PlcClient loggedInNode(const PlcClient& anonymous, const std::string& hostname,
                       const plng::ticket::PrivateKey& key) {
  std::string token;
  REQUIRE_OK(nodeLogin(anonymous, hostname, key, &token));
  return anonymous.withToken(std::move(token));
}

}  // namespace plng::test

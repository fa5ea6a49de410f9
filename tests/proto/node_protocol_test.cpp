// proto/node_protocol.h: what PLC and a node agree on beyond the messages.
#include "proto/node_protocol.h"

#include <catch2/catch.hpp>
#include <string>

#include "proto/ticket.h"

using plng::proto::nodeLoginMessage;
using plng::proto::sameHostname;
using plng::proto::ticketRefusal;
using plng::ticket::TicketError;
using plng::ticket::VerifyError;

TEST_CASE("the node login message is the tag, the host name and the nonce, NUL-separated") {
  using namespace std::string_literals;
  CHECK(nodeLoginMessage("n1.example.org", "abc") == "planetlab-node-login\0n1.example.org\0abc"s);
  // The separators keep the fields apart: moving bytes between host name and
  // nonce changes the message, so a signature cannot be replayed for another host.
  CHECK(nodeLoginMessage("n1.example.or", "gabc") != nodeLoginMessage("n1.example.org", "abc"));
  // The nonce is bytes: a NUL in it is kept.
  CHECK(nodeLoginMessage("h", "a\0b"s).size() == std::string("planetlab-node-login").size() + 6);
}

TEST_CASE("a node's login signature verifies against the same message PLC rebuilds") {
  const auto key = plng::ticket::generateKeyPair();
  const auto sig = plng::ticket::sign(key.private_key, nodeLoginMessage("n1.example.org", "nonce"));
  const std::string signature(sig.begin(), sig.end());
  CHECK(plng::ticket::verifySignature(key.public_key, nodeLoginMessage("n1.example.org", "nonce"),
                                      signature));
  CHECK_FALSE(plng::ticket::verifySignature(
      key.public_key, nodeLoginMessage("n2.example.org", "nonce"), signature));
  CHECK_FALSE(plng::ticket::verifySignature(
      key.public_key, nodeLoginMessage("n1.example.org", "other"), signature));
}

TEST_CASE("host names compare without regard to ASCII case, and nothing else") {
  CHECK(sameHostname("planetlab1.Princeton.EDU", "planetlab1.princeton.edu"));
  CHECK(sameHostname("", ""));
  CHECK_FALSE(sameHostname("planetlab1.princeton.edu", "planetlab2.princeton.edu"));
  CHECK_FALSE(sameHostname("planetlab1.princeton.edu", "planetlab1.princeton.edu."));
  CHECK_FALSE(sameHostname("a", ""));
  // Only ASCII folds: a byte above 0x7f is compared as it is.
  CHECK_FALSE(sameHostname("\xc4", "\xe4"));
}

TEST_CASE("a refused ticket's status, per verification error") {
  struct Case {
    VerifyError error;
    grpc::StatusCode code;
    const char* reason;
  };
  const Case cases[] = {
      {VerifyError::kMalformed, grpc::StatusCode::INVALID_ARGUMENT, "malformed ticket: "},
      {VerifyError::kUnknownKey, grpc::StatusCode::UNAUTHENTICATED, "ticket not signed by PLC: "},
      {VerifyError::kBadSignature, grpc::StatusCode::UNAUTHENTICATED, "ticket not signed by PLC: "},
      {VerifyError::kRetiredKey, grpc::StatusCode::UNAUTHENTICATED, "ticket not signed by PLC: "},
      {VerifyError::kNotYetValid, grpc::StatusCode::FAILED_PRECONDITION, "ticket not yet valid: "},
      {VerifyError::kExpired, grpc::StatusCode::FAILED_PRECONDITION, "ticket expired: "},
  };
  for (const auto& c : cases) {
    INFO(plng::ticket::toString(c.error));
    const grpc::Status status = ticketRefusal(TicketError(c.error, "what to do"));
    CHECK(status.error_code() == c.code);
    CHECK(status.error_message() == std::string(c.reason) + "what to do");
  }
}

TEST_CASE("a ticket verifyTicket refuses maps to the status of its reason") {
  const auto plc = plng::ticket::generateKeyPair();
  planetlab::v1::PlcPublicKey trusted;
  trusted.set_key_id(plng::ticket::keyIdOf(plc.public_key));
  trusted.set_public_key(std::string(plc.public_key.begin(), plc.public_key.end()));
  const plng::ticket::TrustedKeys keys({trusted});
  planetlab::v1::TicketBody body;
  body.set_slice_name("princeton_codeen");
  body.set_not_before(1000);
  body.set_not_after(2000);
  const auto ticket = plng::ticket::signTicket(body, plc.private_key);
  try {
    plng::ticket::verifyTicket(ticket, keys, 2000);
    FAIL("an expired ticket verified");
  } catch (const TicketError& e) {
    const grpc::Status status = ticketRefusal(e);
    CHECK(status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    CHECK_THAT(status.error_message(), Catch::StartsWith("ticket expired: ticket for "
                                                         "slice"));
    CHECK_THAT(status.error_message(), Catch::Contains("request a new ticket"));
  }
}

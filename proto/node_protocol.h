// What PLC and a node must agree on beyond the .proto messages: the bytes a
// node signs to log in, how host names compare, and how a refused ticket reads
// as a gRPC status. Defined here, once, so that plcd, sliverd and plcctl agree
// by construction.
#pragma once

#include <grpcpp/support/status.h>

#include <string>
#include <string_view>

#include "proto/ticket.h"

namespace plng::proto {

// The exact bytes a node signs to log in (plc.proto, NodeLoginRequest):
// "planetlab-node-login" NUL hostname NUL nonce.
std::string nodeLoginMessage(std::string_view hostname, std::string_view nonce);

// Host names compare without regard to ASCII case (DNS names do): a node
// registered as "Node1.Example.org" is the node that calls itself
// "node1.example.org".
bool sameHostname(std::string_view a, std::string_view b);

// The status a node answers a refused ticket with: INVALID_ARGUMENT when it is
// malformed, UNAUTHENTICATED when no trusted PLC key signed it,
// FAILED_PRECONDITION when it is outside its validity window. The message is
// the TicketError's (which says what to do) after a short reason.
grpc::Status ticketRefusal(const plng::ticket::TicketError& error);

}  // namespace plng::proto

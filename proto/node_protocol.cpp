#include "proto/node_protocol.h"

#include <algorithm>
#include <cctype>

namespace plng::proto {

std::string nodeLoginMessage(std::string_view hostname, std::string_view nonce) {
  std::string message = "planetlab-node-login";
  message.push_back('\0');
  message += hostname;
  message.push_back('\0');
  message += nonce;
  return message;
}

bool sameHostname(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

grpc::Status ticketRefusal(const plng::ticket::TicketError& error) {
  using plng::ticket::VerifyError;
  const std::string what = error.what();
  switch (error.code()) {
    case VerifyError::kMalformed:
      return {grpc::StatusCode::INVALID_ARGUMENT, "malformed ticket: " + what};
    case VerifyError::kUnknownKey:
    case VerifyError::kBadSignature:
    case VerifyError::kRetiredKey:
      return {grpc::StatusCode::UNAUTHENTICATED, "ticket not signed by PLC: " + what};
    case VerifyError::kNotYetValid:
      return {grpc::StatusCode::FAILED_PRECONDITION, "ticket not yet valid: " + what};
    case VerifyError::kExpired:
      return {grpc::StatusCode::FAILED_PRECONDITION, "ticket expired: " + what};
  }
  return {grpc::StatusCode::UNAUTHENTICATED, "ticket refused: " + what};
}

}  // namespace plng::proto

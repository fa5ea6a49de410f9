// ApiError: a failure a caller can act on, carrying the gRPC status code it maps to.
// Thrown inside PLC's request logic; converted to grpc::Status once, at the handler edge.
#pragma once

#include <grpcpp/support/status.h>

#include <stdexcept>
#include <string>

#include "proto/status_name.h"

namespace plng::plc {

class ApiError : public std::runtime_error {
 public:
  ApiError(grpc::StatusCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  grpc::StatusCode code() const { return code_; }

 private:
  grpc::StatusCode code_;
};

[[noreturn]] inline void invalidArgument(const std::string& m) {
  throw ApiError(grpc::StatusCode::INVALID_ARGUMENT, m);
}
[[noreturn]] inline void notFound(const std::string& m) {
  throw ApiError(grpc::StatusCode::NOT_FOUND, m);
}
[[noreturn]] inline void alreadyExists(const std::string& m) {
  throw ApiError(grpc::StatusCode::ALREADY_EXISTS, m);
}
[[noreturn]] inline void permissionDenied(const std::string& m) {
  throw ApiError(grpc::StatusCode::PERMISSION_DENIED, m);
}
[[noreturn]] inline void failedPrecondition(const std::string& m) {
  throw ApiError(grpc::StatusCode::FAILED_PRECONDITION, m);
}
[[noreturn]] inline void resourceExhausted(const std::string& m) {
  throw ApiError(grpc::StatusCode::RESOURCE_EXHAUSTED, m);
}
[[noreturn]] inline void unauthenticated(const std::string& m) {
  throw ApiError(grpc::StatusCode::UNAUTHENTICATED, m);
}

}  // namespace plng::plc

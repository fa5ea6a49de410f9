// The canonical name of a gRPC status code ("PERMISSION_DENIED"), as plcd
// records it in the audit log and plcctl prints it.
#pragma once

#include <grpcpp/support/status.h>

namespace plng {

const char* statusCodeName(grpc::StatusCode code);

}  // namespace plng

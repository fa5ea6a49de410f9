// OpenSSH public key lines for tests and benchmarks that add keys to PLC.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proto/ticket.h"

namespace plng::test {

// Standard base64 (RFC 4648, with '=' padding), as OpenSSH key lines use.
std::string base64(std::string_view bytes);

// An OpenSSH public key line: `type`, then base64 of the SSH wire encoding of
// `type` and `fields` (each a length-prefixed string), then the comment (none
// where empty).
std::string sshKeyLine(const std::string& type, const std::vector<std::string>& fields,
                       const std::string& comment);

// The ed25519 key line of `key`.
std::string sshEd25519KeyLine(const plng::ticket::PublicKey& key, const std::string& comment);

// The ed25519 key line of a fresh key.
std::string newSshKey(const std::string& comment);

}  // namespace plng::test

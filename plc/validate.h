// Input validation and canonicalisation. Each function throws ApiError
// INVALID_ARGUMENT with a message saying what a valid value looks like.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace google::protobuf {
class FieldDescriptor;
class Message;
}  // namespace google::protobuf

namespace plng::plc {

// The range of every time a request may carry, in unix seconds: 1970-01-01 to
// 9999-12-31 23:59:59 UTC (PostgreSQL's timestamptz and every clock in PLNG hold it).
inline constexpr std::int64_t kMinRequestTime = 0;
inline constexpr std::int64_t kMaxRequestTime = 253402300799;

// The checks PLC's RPC edge makes on every request before its method runs, walking
// the message by reflection (nested, repeated and map fields alike), so no method
// and no future field can miss them. Throws INVALID_ARGUMENT naming the field path
// ("names[1]"):
// - string fields: no NUL; no other C0 control character, DEL or C1 control
//   character, except TAB, LF and CR in fields marked [(multiline) = true] in
//   plc.proto. `bytes` fields are exempt.
// - time fields (isTimeField): 0 or within [kMinRequestTime, kMaxRequestTime].
void validateRequestFields(const google::protobuf::Message& request);

// An integer field that carries a time: named "since" or "until", or ending in
// "_at", "not_before" or "not_after".
bool isTimeField(const google::protobuf::FieldDescriptor& field);

// `value` for an error message: quoted, control characters escaped, at most
// `max_chars` characters; a longer value is cut and its length given:
// 'AAAA…' (1048576 bytes). Error messages quote input only through this.
std::string quoteForMessage(std::string_view value, std::size_t max_chars = 64);
// A time for messages: "2026-11-23 04:45:26 UTC".
std::string utcTime(std::int64_t unix_seconds);

void validateLoginBase(const std::string& login_base);  // [a-z][a-z0-9]{1,19}
void validateEmail(const std::string& email);
void validateHostname(const std::string& hostname);
void validatePassword(const std::string& password);       // 8..256 characters
void validateUrl(const std::string& url, bool required);  // http(s)://...
void validateText(const std::string& field, const std::string& value, std::size_t max_len,
                  bool required);
// Full slice name "<login_base>_<name>", at most 32 characters (it becomes a Linux
// account name on nodes). Returns the login_base prefix.
std::string validateSliceName(const std::string& name);
void validateBootState(const std::string& boot_state);
void validateInstantiation(const std::string& instantiation);
void validateObjectName(const std::string& field, const std::string& name);  // [a-z0-9_.-]{1,64}

struct ParsedSshKey {
  std::string type;
  std::string canonical;    // "<type> <base64>[ <comment>]" with whitespace normalised
  std::string fingerprint;  // "SHA256:<base64 without padding>", as ssh-keygen -l prints
};
ParsedSshKey parseSshKey(const std::string& key);

// Canonical CIDR ("10.1.0.0/16", "2001:db8::/32"); a bare address gets /32 or /128.
std::string canonicalPrefix(const std::string& prefix);

// Validates a tag value against its type's value_kind and returns the canonical
// form stored and sent to nodes: int → decimal; bytes → bytes ("128M" → 134217728);
// rate → bit/s ("10Mbit" → 10000000); bool → true|false; ports → the canonical
// form of proto/port_spec.h ("udp:53, tcp:81,tcp:80" → "tcp:80-81,udp:53"); capabilities →
// "CAP_NET_RAW,CAP_SYS_TIME"; string → as given.
std::string canonicalTagValue(const std::string& tag, const std::string& value_kind,
                              const std::string& value);

}  // namespace plng::plc

#include "plc/validate.h"

#include <arpa/inet.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <vector>

#include "plc/errors.h"
#include "proto/plc.pb.h"
#include "proto/port_spec.h"
#include "proto/ticket.h"

namespace plng::plc {

namespace {

namespace gp = google::protobuf;

// Length of the UTF-8 sequence starting at `s[i]`, or 0 if none starts there.
std::size_t utf8SequenceLength(std::string_view s, std::size_t i) {
  auto lead = static_cast<unsigned char>(s[i]);
  std::size_t len = lead < 0x80           ? 1
                    : (lead >> 5) == 0x6  ? 2
                    : (lead >> 4) == 0xe  ? 3
                    : (lead >> 3) == 0x1e ? 4
                                          : 0;
  if (len == 0 || i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  }
  return len;
}

// The code point of a control character at `s[i]` (C0, DEL, or C1 as UTF-8), or
// -1 when none is there.
int controlAt(std::string_view s, std::size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x20 || c == 0x7f) return c;
  if (c == 0xc2 && i + 1 < s.size()) {
    auto next = static_cast<unsigned char>(s[i + 1]);
    if (next >= 0x80 && next <= 0x9f) return next;  // U+0080..U+009F
  }
  return -1;
}

std::string codePoint(int cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
  std::string out = buf;
  if (cp == '\t') out += " (TAB)";
  if (cp == '\n') out += " (LF)";
  if (cp == '\r') out += " (CR)";
  if (cp == 0x1b) out += " (ESC)";
  return out;
}

void checkText(const std::string& path, std::string_view value, bool multiline) {
  for (std::size_t i = 0; i < value.size(); ++i) {
    int cp = controlAt(value, i);
    if (cp < 0) continue;
    if (cp == 0) {
      invalidArgument(path + " contains a NUL byte (at byte " + std::to_string(i) +
                      "); no text field may contain NUL");
    }
    if (multiline && (cp == '\t' || cp == '\n' || cp == '\r')) continue;
    invalidArgument(path + " contains the control character " + codePoint(cp) + " at byte " +
                    std::to_string(i) + "; " +
                    (multiline ? std::string("only TAB, LF and CR are allowed in it")
                               : path + " is single-line text: control characters, tabs and"
                                        " line breaks are not allowed"));
  }
}

void checkTime(const std::string& path, std::int64_t t) {
  if (t < kMinRequestTime || t > kMaxRequestTime) {
    invalidArgument(path + " " + std::to_string(t) +
                    " is out of range: times are unix seconds from " +
                    std::to_string(kMinRequestTime) + " (1970-01-01) to " +
                    std::to_string(kMaxRequestTime) + " (9999-12-31 23:59:59 UTC)");
  }
}

bool isMultiline(const gp::FieldDescriptor& field) {
  return field.options().GetExtension(planetlab::v1::multiline);
}

void walkRequest(const gp::Message& message, const std::string& prefix, bool map_multiline);

// One value of `field` (element `index` when repeated, -1 otherwise).
void checkValue(const gp::Message& message, const gp::FieldDescriptor& field, int index,
                const std::string& path, bool multiline) {
  const auto* refl = message.GetReflection();
  switch (field.cpp_type()) {
    case gp::FieldDescriptor::CPPTYPE_STRING: {
      if (field.type() == gp::FieldDescriptor::TYPE_BYTES) return;
      std::string scratch;
      const auto& value = index < 0
                              ? refl->GetStringReference(message, &field, &scratch)
                              : refl->GetRepeatedStringReference(message, &field, index, &scratch);
      checkText(path, value, multiline);
      return;
    }
    case gp::FieldDescriptor::CPPTYPE_MESSAGE: {
      const auto& sub = index < 0 ? refl->GetMessage(message, &field)
                                  : refl->GetRepeatedMessage(message, &field, index);
      // A map's entries are messages of key and value: the map field's own marking
      // applies to its values.
      walkRequest(sub, path + ".", field.is_map() && isMultiline(field));
      return;
    }
    case gp::FieldDescriptor::CPPTYPE_INT64:
    case gp::FieldDescriptor::CPPTYPE_INT32:
    case gp::FieldDescriptor::CPPTYPE_UINT32:
    case gp::FieldDescriptor::CPPTYPE_UINT64: {
      if (!isTimeField(field)) return;
      std::int64_t t = 0;
      switch (field.cpp_type()) {
        case gp::FieldDescriptor::CPPTYPE_INT64:
          t = index < 0 ? refl->GetInt64(message, &field)
                        : refl->GetRepeatedInt64(message, &field, index);
          break;
        case gp::FieldDescriptor::CPPTYPE_INT32:
          t = index < 0 ? refl->GetInt32(message, &field)
                        : refl->GetRepeatedInt32(message, &field, index);
          break;
        case gp::FieldDescriptor::CPPTYPE_UINT32:
          t = index < 0 ? refl->GetUInt32(message, &field)
                        : refl->GetRepeatedUInt32(message, &field, index);
          break;
        default: {
          auto u = index < 0 ? refl->GetUInt64(message, &field)
                             : refl->GetRepeatedUInt64(message, &field, index);
          t = u > static_cast<std::uint64_t>(kMaxRequestTime) ? kMaxRequestTime + 1
                                                              : static_cast<std::int64_t>(u);
        }
      }
      checkTime(path, t);
      return;
    }
    default:
      return;
  }
}

void walkRequest(const gp::Message& message, const std::string& prefix, bool map_multiline) {
  const auto* refl = message.GetReflection();
  std::vector<const gp::FieldDescriptor*> fields;
  refl->ListFields(message, &fields);  // set fields only: defaults pass every check
  for (const auto* field : fields) {
    auto path = prefix + field->name();
    bool multiline = isMultiline(*field) || (map_multiline && field->name() == "value");
    if (!field->is_repeated()) {
      checkValue(message, *field, -1, path, multiline);
      continue;
    }
    int n = refl->FieldSize(message, field);
    for (int i = 0; i < n; ++i) {
      checkValue(message, *field, i, path + "[" + std::to_string(i) + "]", multiline);
    }
  }
}

bool matches(const std::string& s, const char* pattern) {
  // std::regex construction is costly; each pattern is compiled once.
  thread_local std::map<const char*, std::regex> cache;
  auto it = cache.find(pattern);
  if (it == cache.end()) it = cache.emplace(pattern, std::regex(pattern)).first;
  return std::regex_match(s, it->second);
}

std::string base64Encode(const std::string& bytes, bool pad) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  if (!pad) {
    while (!out.empty() && out.back() == '=') out.pop_back();
  }
  return out;
}

bool base64Decode(const std::string& text, std::string& out) {
  if (text.empty() || text.size() % 4 != 0) return false;
  for (char c : text) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=')) {
      return false;
    }
  }
  out.assign(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return false;
  std::size_t padding = 0;
  if (text.size() >= 2 && text[text.size() - 1] == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  out.resize(static_cast<std::size_t>(n) - padding);
  return true;
}

// Reads an SSH wire-format string (uint32 length + bytes).
bool readSshString(const std::string& blob, std::size_t& pos, std::string& out) {
  if (pos + 4 > blob.size()) return false;
  std::uint32_t len = 0;
  for (int i = 0; i < 4; ++i) len = len << 8 | static_cast<unsigned char>(blob[pos + i]);
  pos += 4;
  if (len > blob.size() - pos) return false;
  out = blob.substr(pos, len);
  pos += len;
  return true;
}

std::uint64_t parseUnsigned(const std::string& tag, const std::string& digits) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size()) {
    invalidArgument("tag " + tag + ": " + quoteForMessage(digits) +
                    " is not a non-negative integer");
  }
  return v;
}

// "<number><suffix>" with the suffix looked up case-insensitively in `units`.
std::uint64_t parseWithUnit(const std::string& tag, std::string value,
                            const std::vector<std::pair<std::string, std::uint64_t>>& units,
                            const std::string& example) {
  value.erase(std::remove(value.begin(), value.end(), ' '), value.end());
  std::size_t i = 0;
  while (i < value.size() && std::isdigit(static_cast<unsigned char>(value[i]))) ++i;
  auto number = value.substr(0, i);
  auto suffix = value.substr(i);
  std::transform(suffix.begin(), suffix.end(), suffix.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (number.empty()) {
    invalidArgument("tag " + tag + ": " + quoteForMessage(value) +
                    " is not a quantity; example: " + example);
  }
  auto n = parseUnsigned(tag, number);
  for (const auto& [unit, factor] : units) {
    if (suffix == unit) {
      if (factor && n > UINT64_MAX / factor) invalidArgument("tag " + tag + ": value too large");
      return n * factor;
    }
  }
  invalidArgument("tag " + tag + ": unknown unit " + quoteForMessage(suffix) +
                  "; example: " + example);
}

const std::set<std::string>& knownCapabilities() {
  static const std::set<std::string> kCaps = {"CAP_CHOWN",
                                              "CAP_DAC_OVERRIDE",
                                              "CAP_DAC_READ_SEARCH",
                                              "CAP_FOWNER",
                                              "CAP_FSETID",
                                              "CAP_KILL",
                                              "CAP_SETGID",
                                              "CAP_SETUID",
                                              "CAP_SETPCAP",
                                              "CAP_LINUX_IMMUTABLE",
                                              "CAP_NET_BIND_SERVICE",
                                              "CAP_NET_BROADCAST",
                                              "CAP_NET_ADMIN",
                                              "CAP_NET_RAW",
                                              "CAP_IPC_LOCK",
                                              "CAP_IPC_OWNER",
                                              "CAP_SYS_MODULE",
                                              "CAP_SYS_RAWIO",
                                              "CAP_SYS_CHROOT",
                                              "CAP_SYS_PTRACE",
                                              "CAP_SYS_PACCT",
                                              "CAP_SYS_ADMIN",
                                              "CAP_SYS_BOOT",
                                              "CAP_SYS_NICE",
                                              "CAP_SYS_RESOURCE",
                                              "CAP_SYS_TIME",
                                              "CAP_SYS_TTY_CONFIG",
                                              "CAP_MKNOD",
                                              "CAP_LEASE",
                                              "CAP_AUDIT_WRITE",
                                              "CAP_AUDIT_CONTROL",
                                              "CAP_SETFCAP",
                                              "CAP_MAC_OVERRIDE",
                                              "CAP_MAC_ADMIN",
                                              "CAP_SYSLOG",
                                              "CAP_WAKE_ALARM",
                                              "CAP_BLOCK_SUSPEND",
                                              "CAP_AUDIT_READ",
                                              "CAP_PERFMON",
                                              "CAP_BPF",
                                              "CAP_CHECKPOINT_RESTORE"};
  return kCaps;
}

std::vector<std::string> splitList(const std::string& value) {
  std::vector<std::string> items;
  std::stringstream ss(value);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(
        std::remove_if(item.begin(), item.end(), [](unsigned char c) { return std::isspace(c); }),
        item.end());
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

}  // namespace

bool isTimeField(const gp::FieldDescriptor& field) {
  switch (field.cpp_type()) {
    case gp::FieldDescriptor::CPPTYPE_INT64:
    case gp::FieldDescriptor::CPPTYPE_INT32:
    case gp::FieldDescriptor::CPPTYPE_UINT32:
    case gp::FieldDescriptor::CPPTYPE_UINT64:
      break;
    default:
      return false;
  }
  std::string_view name = field.name();
  auto ends = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  return name == "since" || name == "until" || ends("_at") || ends("not_before") ||
         ends("not_after");
}

void validateRequestFields(const gp::Message& request) {
  walkRequest(request, "", /*map_multiline=*/false);
}

std::string utcTime(std::int64_t unix_seconds) {
  auto tt = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string quoteForMessage(std::string_view value, std::size_t max_chars) {
  std::string out = "'";
  std::size_t i = 0;
  std::size_t chars = 0;
  for (; i < value.size() && chars < max_chars; ++chars) {
    int cp = controlAt(value, i);
    if (cp >= 0) {
      char buf[8];
      if (cp == '\n') {
        out += "\\n";
      } else if (cp == '\t') {
        out += "\\t";
      } else if (cp == '\r') {
        out += "\\r";
      } else {
        std::snprintf(buf, sizeof buf, cp < 0x80 ? "\\x%02x" : "\\u%04x",
                      static_cast<unsigned>(cp));
        out += buf;
      }
      i += cp < 0x80 ? 1 : 2;
      continue;
    }
    auto len = utf8SequenceLength(value, i);
    if (len == 0) {  // not UTF-8 (text read back from elsewhere): shown as a byte
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(value[i]));
      out += buf;
      ++i;
      continue;
    }
    if (value[i] == '\'' || value[i] == '\\') out += '\\';
    out.append(value.substr(i, len));
    i += len;
  }
  out += "'";
  if (i < value.size()) out += "\u2026 (" + std::to_string(value.size()) + " bytes)";
  return out;
}

void validateLoginBase(const std::string& login_base) {
  if (login_base.size() > 20 || !matches(login_base, "[a-z][a-z0-9]{1,19}")) {
    invalidArgument("login_base " + quoteForMessage(login_base) +
                    " is invalid: 2-20 lowercase letters and digits, starting with a letter");
  }
}

void validateEmail(const std::string& email) {
  if (email.size() > 254 ||
      !matches(email, "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}")) {
    invalidArgument("email " + quoteForMessage(email) +
                    " is not a valid address (like alice@example.edu)");
  }
}

void validateHostname(const std::string& hostname) {
  if (hostname.size() > 253 ||
      !matches(hostname,
               "([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
               "[A-Za-z0-9])?)+")) {
    invalidArgument("hostname " + quoteForMessage(hostname) +
                    " is not a fully qualified DNS name (like node1.princeton.edu)");
  }
}

void validatePassword(const std::string& password) {
  if (password.size() < 8 || password.size() > 256) {
    invalidArgument("password must be 8 to 256 characters long");
  }
}

void validateUrl(const std::string& url, bool required) {
  if (url.empty() && !required) return;
  if (url.size() > 2048 || !matches(url, "https?://[^\\s/$.?#][^\\s]*")) {
    invalidArgument("url " + quoteForMessage(url) + " is not an http:// or https:// URL");
  }
}

void validateText(const std::string& field, const std::string& value, std::size_t max_len,
                  bool required) {
  if (required && value.empty()) invalidArgument(field + " is required");
  if (value.size() > max_len) {
    invalidArgument(field + " is longer than " + std::to_string(max_len) + " characters (" +
                    std::to_string(value.size()) + " bytes)");
  }
}

std::string validateSliceName(const std::string& name) {
  if (name.size() > 32 || !matches(name, "[a-z][a-z0-9]{1,19}_[a-z0-9][a-z0-9_]*")) {
    invalidArgument("slice name " + quoteForMessage(name) +
                    " is invalid: <login_base>_<name>, lowercase letters, digits and '_',"
                    " at most 32 characters (e.g. princeton_codeen)");
  }
  return name.substr(0, name.find('_'));
}

void validateBootState(const std::string& boot_state) {
  if (boot_state != "boot" && boot_state != "safeboot" && boot_state != "reinstall" &&
      boot_state != "disabled") {
    invalidArgument("boot_state " + quoteForMessage(boot_state) +
                    " is invalid: one of boot, safeboot, reinstall, disabled");
  }
}

void validateInstantiation(const std::string& instantiation) {
  if (instantiation != "plc-instantiated" && instantiation != "delegated") {
    invalidArgument("instantiation " + quoteForMessage(instantiation) +
                    " is invalid: plc-instantiated or delegated");
  }
}

void validateObjectName(const std::string& field, const std::string& name) {
  if (name.size() > 64 || !matches(name, "[a-z0-9][a-z0-9_.-]{0,63}")) {
    invalidArgument(field + " " + quoteForMessage(name) +
                    " is invalid: 1-64 lowercase letters, digits, '_', '.', '-'");
  }
}

ParsedSshKey parseSshKey(const std::string& key) {
  static const std::set<std::string> kTypes = {"ssh-ed25519",
                                               "ssh-rsa",
                                               "ecdsa-sha2-nistp256",
                                               "ecdsa-sha2-nistp384",
                                               "ecdsa-sha2-nistp521",
                                               "sk-ssh-ed25519@openssh.com",
                                               "sk-ecdsa-sha2-nistp256@openssh.com"};
  std::istringstream in(key);
  std::string type, b64, comment, word;
  in >> type >> b64;
  while (in >> word) comment += (comment.empty() ? "" : " ") + word;
  const std::string hint =
      "; expected an OpenSSH public key line such as 'ssh-ed25519 AAAAC3Nza... alice@laptop'";
  // One line, always: a line break would put a second key into authorized_keys.
  if (key.find_first_of("\r\n") != std::string::npos) {
    invalidArgument("SSH key has a line break; give one key on one line" + hint);
  }
  // Nor any other control character: nodes refuse a key file holding one (the
  // RPC edge refuses them too; this keeps the parser safe on its own).
  for (unsigned char c : key) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      invalidArgument("SSH key has a control character; give the key as ssh-keygen prints it" +
                      hint);
    }
  }
  if (kTypes.count(type) == 0) {
    invalidArgument("SSH key type " + quoteForMessage(type) + " is not supported" + hint);
  }
  std::string blob;
  if (!base64Decode(b64, blob)) invalidArgument("SSH key body is not base64" + hint);
  std::size_t pos = 0;
  std::string inner;
  if (!readSshString(blob, pos, inner) || inner != type) {
    invalidArgument("SSH key body does not match its type " + quoteForMessage(type) + hint);
  }
  if (type == "ssh-ed25519") {
    std::string pk;
    if (!readSshString(blob, pos, pk) || pk.size() != 32 || pos != blob.size()) {
      invalidArgument("ssh-ed25519 key body is malformed" + hint);
    }
    // sshd verifies like RFC 8032: a small-order key would let anyone in.
    auto problem = plng::ticket::publicKeyProblem(plng::ticket::publicKeyFromBytes(pk));
    if (!problem.empty()) invalidArgument("ssh-ed25519 key is " + problem + hint);
  } else if (type == "ssh-rsa") {
    std::string e, n;
    if (!readSshString(blob, pos, e) || !readSshString(blob, pos, n) || pos != blob.size()) {
      invalidArgument("ssh-rsa key body is malformed" + hint);
    }
    auto bits = (n.size() - (!n.empty() && n[0] == 0 ? 1 : 0)) * 8;
    if (bits < 2048) {
      invalidArgument("ssh-rsa key has " + std::to_string(bits) +
                      " bits; at least 2048 are required");
    }
  } else if (type == "sk-ssh-ed25519@openssh.com") {
    std::string pk;
    if (!readSshString(blob, pos, pk) || pk.size() != 32 || blob.size() < pos + 4) {
      invalidArgument(type + " key body is malformed" + hint);
    }
    auto problem = plng::ticket::publicKeyProblem(plng::ticket::publicKeyFromBytes(pk));
    if (!problem.empty()) invalidArgument(type + " key is " + problem + hint);
  } else if (blob.size() < pos + 8) {
    invalidArgument(type + " key body is malformed" + hint);
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(blob.data()), blob.size(), digest);
  ParsedSshKey parsed;
  parsed.type = type;
  parsed.canonical = type + " " + b64 + (comment.empty() ? "" : " " + comment);
  parsed.fingerprint =
      "SHA256:" + base64Encode(std::string(reinterpret_cast<char*>(digest), sizeof digest),
                               /*pad=*/false);
  return parsed;
}

std::string canonicalPrefix(const std::string& prefix) {
  auto slash = prefix.find('/');
  auto addr = prefix.substr(0, slash);
  bool v6 = addr.find(':') != std::string::npos;
  unsigned char buf[16] = {};
  if (inet_pton(v6 ? AF_INET6 : AF_INET, addr.c_str(), buf) != 1) {
    invalidArgument(quoteForMessage(prefix) + " is not an IPv4 or IPv6 address or CIDR prefix");
  }
  int max_len = v6 ? 128 : 32;
  int len = max_len;
  if (slash != std::string::npos) {
    auto digits = prefix.substr(slash + 1);
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), len);
    if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || len < 0 ||
        len > max_len) {
      invalidArgument(quoteForMessage(prefix) + ": prefix length must be 0.." +
                      std::to_string(max_len));
    }
  }
  for (int bit = len; bit < max_len; ++bit)
    buf[bit / 8] &= static_cast<unsigned char>(~(0x80 >> (bit % 8)));
  char text[INET6_ADDRSTRLEN];
  inet_ntop(v6 ? AF_INET6 : AF_INET, buf, text, sizeof text);
  return std::string(text) + "/" + std::to_string(len);
}

std::string canonicalTagValue(const std::string& tag, const std::string& value_kind,
                              const std::string& value) {
  if (value.size() > 65536) invalidArgument("tag " + tag + ": value longer than 64 KiB");
  if (value_kind == "string") return value;
  if (value_kind == "int") return std::to_string(parseUnsigned(tag, value));
  if (value_kind == "bytes") {
    return std::to_string(parseWithUnit(tag, value,
                                        {{"", 1},
                                         {"b", 1},
                                         {"k", 1ull << 10},
                                         {"kb", 1ull << 10},
                                         {"kib", 1ull << 10},
                                         {"m", 1ull << 20},
                                         {"mb", 1ull << 20},
                                         {"mib", 1ull << 20},
                                         {"g", 1ull << 30},
                                         {"gb", 1ull << 30},
                                         {"gib", 1ull << 30},
                                         {"t", 1ull << 40},
                                         {"tb", 1ull << 40},
                                         {"tib", 1ull << 40}},
                                        "128M, 5G or 134217728"));
  }
  if (value_kind == "rate") {
    return std::to_string(parseWithUnit(tag, value,
                                        {{"", 1},
                                         {"bit", 1},
                                         {"bps", 1},
                                         {"k", 1000},
                                         {"kbit", 1000},
                                         {"kbps", 1000},
                                         {"m", 1000000},
                                         {"mbit", 1000000},
                                         {"mbps", 1000000},
                                         {"g", 1000000000},
                                         {"gbit", 1000000000},
                                         {"gbps", 1000000000}},
                                        "5kbit, 10Mbit or 10000000 (bit/s)"));
  }
  if (value_kind == "bool") {
    std::string v = value;
    std::transform(v.begin(), v.end(), v.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (v == "true" || v == "1" || v == "yes") return "true";
    if (v == "false" || v == "0" || v == "no") return "false";
    invalidArgument("tag " + tag + ": " + quoteForMessage(value) +
                    " is not a boolean (true or false)");
  }
  if (value_kind == "ports") {
    try {
      return proto::formatPortSpec(proto::parsePortSpec(value));
    } catch (const proto::PortSpecError& e) {
      invalidArgument("tag " + tag + ": " + e.what() + " (grammar: docs/vnet.md, \"Ports\")");
    }
  }
  if (value_kind == "capabilities") {
    std::set<std::string> caps;
    for (auto item : splitList(value)) {
      std::transform(item.begin(), item.end(), item.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      if (item.rfind("CAP_", 0) != 0) item = "CAP_" + item;
      if (knownCapabilities().count(item) == 0) {
        invalidArgument("tag " + tag + ": unknown capability " + quoteForMessage(item));
      }
      caps.insert(item);
    }
    std::string out;
    for (const auto& c : caps) out += (out.empty() ? "" : ",") + c;
    return out;
  }
  invalidArgument("tag " + tag + " has unknown value kind " + quoteForMessage(value_kind));
}

}  // namespace plng::plc

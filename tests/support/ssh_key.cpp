#include "tests/support/ssh_key.h"

#include <openssl/evp.h>

#include <cstdint>

namespace plng::test {

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // EVP_EncodeBlock adds a NUL
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string sshKeyLine(const std::string& type, const std::vector<std::string>& fields,
                       const std::string& comment) {
  auto put = [](std::string& out, const std::string& s) {
    auto n = static_cast<std::uint32_t>(s.size());
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
    out += s;
  };
  std::string blob;
  put(blob, type);
  for (const auto& field : fields) put(blob, field);
  return type + " " + base64(blob) + (comment.empty() ? "" : " " + comment);
}

std::string sshEd25519KeyLine(const plng::ticket::PublicKey& key, const std::string& comment) {
  return sshKeyLine("ssh-ed25519",
                    {std::string(reinterpret_cast<const char*>(key.data()), key.size())}, comment);
}

std::string newSshKey(const std::string& comment) {
  return sshEd25519KeyLine(plng::ticket::generateKeyPair().public_key, comment);
}

}  // namespace plng::test

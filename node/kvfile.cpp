#include "node/kvfile.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "base/error.h"
#include "base/file.h"

using plng::base::SysError;

namespace plng::node {
namespace {

std::string escape(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '%') {
      out += "%25";
    } else if (c == '\n') {
      out += "%0A";
    } else if (c == '\r') {
      out += "%0D";
    } else {
      out += c;
    }
  }
  return out;
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool unescape(const std::string& in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hexDigit(in[i + 1]);
    int lo = hexDigit(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

}  // namespace

KvMap readKvFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw SysError(errno == 0 ? ENOENT : errno, "open " + path.string());
  KvMap values;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    auto eq = line.find('=');
    std::string value;
    if (eq == std::string::npos || eq == 0 || !unescape(line.substr(eq + 1), value)) {
      throw std::runtime_error(path.string() + ":" + std::to_string(number) +
                               ": malformed line (want key=value)");
    }
    values[line.substr(0, eq)] = value;
  }
  return values;
}

void writeKvFileAtomic(const std::filesystem::path& path, const KvMap& values,
                       base::Durability durability) {
  std::ostringstream body;
  for (const auto& [key, value] : values) {
    if (key.empty() || key.find_first_of("=\n\r") != std::string::npos) {
      throw std::invalid_argument("state key '" + key + "' is empty or holds '=' or a newline");
    }
    body << key << '=' << escape(value) << '\n';
  }
  base::writeFileAtomic(path, body.str(), 0600, durability);
}

}  // namespace plng::node

// GCC's -Wnull-dereference flags Boost.Asio 1.74's scheduler internals once they
// are inlined here (a false positive in a system header's template).
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "tests/support/prometheus_server.h"

#include <fcntl.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <signal.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "base/fd.h"
#include "tests/support/skip.h"

namespace plng::test {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using google::protobuf::Struct;
using google::protobuf::Value;

constexpr const char* kPrometheus = "/usr/bin/prometheus";

std::string urlEncode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

Struct parseJson(const std::string& body) {
  Struct document;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(body, &document, options).ok())
    throw std::runtime_error("prometheus answered something other than JSON: " +
                             body.substr(0, 300));
  return document;
}

const Value& field(const Struct& object, const std::string& name) {
  auto it = object.fields().find(name);
  if (it == object.fields().end())
    throw std::runtime_error("prometheus answer without \"" + name + "\"");
  return it->second;
}

std::string describe(const std::map<std::string, std::string>& labels) {
  std::string out = "{";
  for (const auto& [name, value] : labels) {
    if (out.size() > 1) out += ",";
    out += name + "=\"" + value + "\"";
  }
  return out + "}";
}

}  // namespace

PrometheusServer::PrometheusServer(const std::vector<Target>& targets) : targets_(targets.size()) {
  if (access(kPrometheus, X_OK) != 0)
    skipTest("no /usr/bin/prometheus (Debian's prometheus package; deploy/install-deps.sh)");
  dir_ = std::make_unique<ScratchDir>("prometheus", 0700, processScratchDir());
  {
    std::ofstream config(dir_->path() / "prometheus.yml");
    config << "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
           << "  evaluation_interval: 1s\nscrape_configs:\n";
    for (const Target& target : targets)
      config << "  - job_name: '" << target.job << "'\n    static_configs:\n"
             << "      - targets: ['" << target.address << "']\n";
  }
  const auto log = dir_->path() / "prometheus.log";
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = pickFreePort();
    base::UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!out) throw std::runtime_error("cannot write " + log.string());
    process_ = ChildProcess::spawn(SpawnOptions{
        .argv = {kPrometheus, "--config.file=" + (dir_->path() / "prometheus.yml").string(),
                 "--storage.tsdb.path=" + (dir_->path() / "data").string(),
                 "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"},
        .env = std::nullopt,
        .stdinFd = -1,
        .outputFd = out.get(),
        .runAs = std::nullopt,
        .workingDir = dir_->path(),
        .parentDeathSignal = SIGKILL,
        .newSession = true});
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline && process_.running()) {
      try {
        if (get("/-/ready").find("Ready") != std::string::npos) return;
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (process_.running()) break;  // up but never ready: not a port race
    // Exited: most likely another process took the port; try another.
  }
  throw std::runtime_error("prometheus did not become ready; its log ends:\n" + logTail());
}

PrometheusServer::~PrometheusServer() {
  if (process_.valid()) process_.terminate(SIGTERM, std::chrono::seconds(5));
}

std::string PrometheusServer::logTail() const { return fileTail(dir_->path() / "prometheus.log"); }

std::string PrometheusServer::get(const std::string& target) const {
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(10));
  stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                                static_cast<unsigned short>(port_)));
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "127.0.0.1");
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  beast::error_code ignored;
  stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  return response.body();
}

std::vector<PrometheusServer::Sample> PrometheusServer::query(const std::string& promql) const {
  Struct answer = parseJson(get("/api/v1/query?query=" + urlEncode(promql)));
  if (field(answer, "status").string_value() != "success") {
    auto error = answer.fields().find("error");
    throw std::runtime_error("prometheus refused '" + promql + "': " +
                             (error != answer.fields().end() ? error->second.string_value()
                                                             : std::string("(no error)")));
  }
  const Struct& data = field(answer, "data").struct_value();
  std::vector<Sample> samples;
  const std::string type = field(data, "resultType").string_value();
  auto number = [](const Value& pair) {
    return std::stod(pair.list_value().values(1).string_value());
  };
  if (type == "scalar") {
    samples.push_back(Sample{{}, number(field(data, "result"))});
    return samples;
  }
  if (type != "vector")
    throw std::runtime_error("'" + promql + "' is a " + type + "; ask for an instant vector");
  for (const Value& result : field(data, "result").list_value().values()) {
    Sample sample;
    for (const auto& [name, value] : field(result.struct_value(), "metric").struct_value().fields())
      sample.labels[name] = value.string_value();
    sample.value = number(field(result.struct_value(), "value"));
    samples.push_back(std::move(sample));
  }
  return samples;
}

double PrometheusServer::value(const std::string& promql,
                               const std::map<std::string, std::string>& match) const {
  std::vector<Sample> found;
  for (Sample& sample : query(promql)) {
    bool all = true;
    for (const auto& [name, value] : match) {
      auto it = sample.labels.find(name);
      all = all && it != sample.labels.end() && it->second == value;
    }
    if (all) found.push_back(std::move(sample));
  }
  if (found.size() != 1)
    throw std::runtime_error("'" + promql + "' has " + std::to_string(found.size()) +
                             " samples matching " + describe(match) + ", not one");
  return found.front().value;
}

void PrometheusServer::waitForScrapes(std::chrono::seconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto upEverywhere = [&] {
    auto up = query("up");
    if (up.size() != targets_) return false;
    for (const Sample& sample : up)
      if (sample.value != 1) return false;
    return true;
  };
  while (std::chrono::steady_clock::now() < deadline) {
    if (upEverywhere()) {
      // One more scrape, so that values set before the call are in.
      std::this_thread::sleep_for(std::chrono::milliseconds(2100));
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  throw std::runtime_error("prometheus has not scraped every target with up == 1 within " +
                           std::to_string(timeout.count()) + " s; its targets:\n" +
                           get("/api/v1/targets").substr(0, 4000));
}

}  // namespace plng::test

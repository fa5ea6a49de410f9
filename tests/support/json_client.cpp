// Boost.Asio 1.74's scheduler trips GCC's -Wnull-dereference once inlined (a false
// positive in a system header, as in app/http_server.cpp).
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "tests/support/json_client.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/client_interceptor.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <stdexcept>

namespace plng::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace protobuf = google::protobuf;

struct JsonHttpClient::Connection {
  asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
  bool open = false;
};

std::string JsonHttpClient::Reply::header(const std::string& name) const {
  for (const auto& [key, value] : headers)
    if (key == name) return value;
  return "";
}

JsonHttpClient::JsonHttpClient(std::string address)
    : address_(std::move(address)), connection_(std::make_unique<Connection>()) {}
JsonHttpClient::~JsonHttpClient() = default;
JsonHttpClient::JsonHttpClient(JsonHttpClient&&) noexcept = default;
JsonHttpClient& JsonHttpClient::operator=(JsonHttpClient&&) noexcept = default;

JsonHttpClient::Reply JsonHttpClient::post(const std::string& target, const std::string& body,
                                           const std::string& authorization) {
  std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", "application/json"}};
  if (!authorization.empty()) headers.emplace_back("Authorization", authorization);
  return request("POST", target, body, headers);
}

JsonHttpClient::Reply JsonHttpClient::request(
    const std::string& method, const std::string& target, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  auto colon = address_.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("bad address " + address_);
  http::request<http::string_body> request(http::string_to_verb(method), target, 11);
  request.set(http::field::host, address_);
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = body;
  request.prepare_payload();
  request.keep_alive(true);
  // A kept connection the server has closed meanwhile fails on first use: one retry.
  for (int attempt = 0;; ++attempt) {
    auto& c = *connection_;
    try {
      if (!c.open) {
        asio::ip::tcp::resolver resolver(c.io);
        c.stream.expires_after(std::chrono::seconds(30));
        c.stream.connect(resolver.resolve(address_.substr(0, colon), address_.substr(colon + 1)));
        c.open = true;
      }
      c.stream.expires_after(std::chrono::seconds(60));
      // A server refusing the request (a body over its limit) may answer and stop
      // reading before the body is sent: the answer is read all the same.
      beast::error_code write_error;
      http::write(c.stream, request, write_error);
      if (write_error && write_error != asio::error::broken_pipe &&
          write_error != asio::error::connection_reset)
        throw beast::system_error(write_error);
      http::response_parser<http::string_body> parser;
      parser.body_limit(64 << 20);
      parser.skip(method == "HEAD");  // a Content-Length without a body
      http::read(c.stream, c.buffer, parser);
      auto& response = parser.get();
      Reply reply;
      reply.status = static_cast<int>(response.result_int());
      reply.content_type = std::string(response[http::field::content_type]);
      for (const auto& field : response) {
        std::string name(field.name_string());
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        reply.headers.emplace_back(std::move(name), std::string(field.value()));
      }
      reply.body = std::move(response.body());
      if (!response.keep_alive()) {
        beast::error_code ignored;
        c.stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        c.stream.close();
        c.open = false;
      }
      return reply;
    } catch (const beast::system_error& e) {
      c.stream.close();
      c.open = false;
      c.buffer.clear();
      if (attempt >= 1)
        throw std::runtime_error(method + " " + target + " to " + address_ + ": " + e.what());
    }
  }
}

namespace {

grpc::StatusCode grpcCodeOf(const std::string& connect_code) {
  static const std::map<std::string, grpc::StatusCode> kCodes = {
      {"canceled", grpc::StatusCode::CANCELLED},
      {"unknown", grpc::StatusCode::UNKNOWN},
      {"invalid_argument", grpc::StatusCode::INVALID_ARGUMENT},
      {"deadline_exceeded", grpc::StatusCode::DEADLINE_EXCEEDED},
      {"not_found", grpc::StatusCode::NOT_FOUND},
      {"already_exists", grpc::StatusCode::ALREADY_EXISTS},
      {"permission_denied", grpc::StatusCode::PERMISSION_DENIED},
      {"resource_exhausted", grpc::StatusCode::RESOURCE_EXHAUSTED},
      {"failed_precondition", grpc::StatusCode::FAILED_PRECONDITION},
      {"aborted", grpc::StatusCode::ABORTED},
      {"out_of_range", grpc::StatusCode::OUT_OF_RANGE},
      {"unimplemented", grpc::StatusCode::UNIMPLEMENTED},
      {"internal", grpc::StatusCode::INTERNAL},
      {"unavailable", grpc::StatusCode::UNAVAILABLE},
      {"data_loss", grpc::StatusCode::DATA_LOSS},
      {"unauthenticated", grpc::StatusCode::UNAUTHENTICATED}};
  auto it = kCodes.find(connect_code);
  return it == kCodes.end() ? grpc::StatusCode::UNKNOWN : it->second;
}

// {"code": "...", "message": "..."} as a status; anything else is UNKNOWN.
grpc::Status statusOfError(const JsonHttpClient::Reply& reply) {
  protobuf::Struct error;
  if (protobuf::util::JsonStringToMessage(reply.body, &error).ok()) {
    const auto& fields = error.fields();
    auto code = fields.find("code");
    auto message = fields.find("message");
    if (code != fields.end() && message != fields.end())
      return grpc::Status(grpcCodeOf(code->second.string_value()), message->second.string_value());
  }
  return grpc::Status(grpc::StatusCode::UNKNOWN, "HTTP " + std::to_string(reply.status) +
                                                     " without a Connect error: " + reply.body);
}

class JsonBridge final : public grpc::experimental::Interceptor {
 public:
  JsonBridge(grpc::experimental::ClientRpcInfo* info, std::string portal)
      : info_(info), portal_(std::move(portal)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    if (info_->type() != grpc::experimental::ClientRpcInfo::Type::UNARY) {
      methods->Proceed();  // streams stay on gRPC
      return;
    }
    bool hijack = false;
    if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_INITIAL_METADATA)) {
      for (const auto& [key, value] : *methods->GetSendInitialMetadata())
        if (key == "authorization") authorization_ = value;
      hijack = true;
    }
    if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_MESSAGE)) send(methods);
    if (methods->QueryInterceptionHookPoint(Hook::PRE_RECV_MESSAGE)) {
      auto* response = static_cast<protobuf::Message*>(methods->GetRecvMessage());
      if (!status_.ok() || !protobuf::util::JsonStringToMessage(reply_json_, response).ok())
        methods->FailHijackedRecvMessage();
    }
    if (methods->QueryInterceptionHookPoint(Hook::PRE_RECV_STATUS))
      *methods->GetRecvStatus() = status_;
    if (hijack) {
      methods->Hijack();
    } else {
      methods->Proceed();
    }
  }

 private:
  void send(grpc::experimental::InterceptorBatchMethods* methods) {
    std::string path = info_->method();  // "/planetlab.v1.Auth/Login"
    auto slash = path.rfind('/');
    const auto* method = protobuf::DescriptorPool::generated_pool()->FindMethodByName(
        path.substr(1, slash - 1) + "." + path.substr(slash + 1));
    if (method == nullptr) {
      status_ = grpc::Status(grpc::StatusCode::INTERNAL, "json bridge: no method " + path);
      return;
    }
    auto* factory = protobuf::MessageFactory::generated_factory();
    std::unique_ptr<protobuf::Message> request(factory->GetPrototype(method->input_type())->New());
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (methods->GetSerializedSendMessage()->Dump(&slices).ok()) {
      for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    std::string json;
    if (!request->ParseFromString(bytes) ||
        !protobuf::util::MessageToJsonString(*request, &json).ok()) {
      status_ = grpc::Status(grpc::StatusCode::INTERNAL, "json bridge: cannot write the request");
      return;
    }
    thread_local std::map<std::string, JsonHttpClient> clients;
    auto it = clients.find(portal_);
    if (it == clients.end()) it = clients.emplace(portal_, JsonHttpClient(portal_)).first;
    try {
      auto reply = it->second.post(path, json, authorization_);
      if (reply.status == 200) {
        reply_json_ = std::move(reply.body);
        status_ = grpc::Status::OK;
      } else {
        status_ = statusOfError(reply);
      }
    } catch (const std::exception& e) {
      status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, e.what());
    }
  }

  grpc::experimental::ClientRpcInfo* info_;
  std::string portal_;
  std::string authorization_;
  std::string reply_json_;
  grpc::Status status_;
};

class JsonBridgeFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit JsonBridgeFactory(std::string portal) : portal_(std::move(portal)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override {
    return new JsonBridge(info, portal_);
  }

 private:
  std::string portal_;
};

}  // namespace

std::shared_ptr<grpc::Channel> jsonBridgeChannel(const std::string& portalAddress,
                                                 const std::string& grpcAddress) {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> creators;
  creators.push_back(std::make_unique<JsonBridgeFactory>(portalAddress));
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      grpcAddress, grpc::InsecureChannelCredentials(), grpc::ChannelArguments(),
      std::move(creators));
}

}  // namespace plng::test

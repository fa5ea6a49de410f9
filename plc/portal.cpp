#include "plc/portal.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/byte_buffer.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <stdexcept>

#include "base/strings.h"
#include "plc/rpc.h"
#include "proto/plc.pb.h"

namespace plng::plc {

namespace {

namespace fs = std::filesystem;
namespace protobuf = google::protobuf;

constexpr const char* kJson = "application/json";

std::string contentTypeOf(const fs::path& path) {
  auto ext = path.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json" || ext == ".map") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  if (ext == ".woff2") return "font/woff2";
  return "application/octet-stream";
}

// gRPC's peer form of an HTTP client's "address:port" (what clientSource reads).
std::string grpcPeerOf(const std::string& peer) {
  if (peer.empty()) return "";
  return (peer.front() == '[' ? "ipv6:" : "ipv4:") + peer;
}

// The host part of an Origin ("https://plc.example.org:8443" -> "plc.example.org:8443").
std::string_view originHost(std::string_view origin) {
  auto scheme = origin.find("://");
  return scheme == std::string_view::npos ? std::string_view() : origin.substr(scheme + 3);
}

}  // namespace

int httpStatusOf(int grpc_code) {
  switch (static_cast<grpc::StatusCode>(grpc_code)) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return 400;
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    default:
      return 500;  // UNKNOWN, INTERNAL, DATA_LOSS
  }
}

std::string_view connectCodeName(int grpc_code) {
  switch (static_cast<grpc::StatusCode>(grpc_code)) {
    case grpc::StatusCode::OK:
      return "ok";
    case grpc::StatusCode::CANCELLED:
      return "canceled";
    case grpc::StatusCode::UNKNOWN:
      return "unknown";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "invalid_argument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "deadline_exceeded";
    case grpc::StatusCode::NOT_FOUND:
      return "not_found";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "already_exists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "permission_denied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "resource_exhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "failed_precondition";
    case grpc::StatusCode::ABORTED:
      return "aborted";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "out_of_range";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "internal";
    case grpc::StatusCode::UNAVAILABLE:
      return "unavailable";
    case grpc::StatusCode::DATA_LOSS:
      return "data_loss";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "unauthenticated";
    default:
      return "unknown";
  }
}

app::HttpResponse PortalHandler::errorResponse(int http_status, std::string_view code,
                                               std::string_view message) {
  return {http_status, kJson,
          "{\"code\":" + plng::base::jsonQuoted(code) +
              ",\"message\":" + plng::base::jsonQuoted(message) + "}\n"};
}

app::HttpResponse PortalHandler::errorPage(int http_status, std::string_view reason) {
  std::string_view code = "invalid_argument";
  if (http_status == 413 || http_status == 431) code = "resource_exhausted";
  if (http_status == 405) code = "unimplemented";
  return errorResponse(http_status, code, reason);
}

PortalHandler::PortalHandler(std::shared_ptr<grpc::Channel> server, const std::string& portal_root)
    : server_(std::move(server)), stub_(std::make_unique<grpc::GenericStub>(server_)) {
  // Every method of PLC's services, from the compiled-in descriptors.
  const auto* file = planetlab::v1::Empty::descriptor()->file();
  auto* factory = protobuf::MessageFactory::generated_factory();
  for (int s = 0; s < file->service_count(); ++s) {
    const auto* service = file->service(s);
    for (int m = 0; m < service->method_count(); ++m) {
      const auto* method = service->method(m);
      methods_.emplace(
          "/" + service->full_name() + "/" + method->name(),
          Method{.name = method->name(),
                 .request = factory->GetPrototype(method->input_type()),
                 .response = factory->GetPrototype(method->output_type()),
                 .streaming = method->client_streaming() || method->server_streaming()});
    }
  }
  if (portal_root.empty()) return;
  std::error_code ec;
  if (!fs::is_regular_file(fs::path(portal_root) / "index.html", ec))
    throw std::runtime_error("portal_root " + portal_root +
                             " has no index.html: build the portal (target plng_portal) or set "
                             "portal_root to its directory");
  std::size_t total = 0;
  for (auto it = fs::recursive_directory_iterator(portal_root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::stringstream body;
    body << in.rdbuf();
    if (!in) throw std::runtime_error("cannot read " + it->path().string());
    total += body.str().size();
    if (total > kMaxPortalBytes)
      throw std::runtime_error("portal_root " + portal_root + " holds more than " +
                               std::to_string(kMaxPortalBytes >> 20) + " MiB");
    auto relative = fs::relative(it->path(), portal_root).generic_string();
    files_.emplace("/" + relative, File{contentTypeOf(it->path()), body.str()});
  }
  if (ec) throw std::runtime_error("cannot read portal_root " + portal_root + ": " + ec.message());
}

app::HttpResponse PortalHandler::operator()(const app::HttpRequest& request) const {
  std::string path = request.target.substr(0, request.target.find('?'));
  // A page of another origin may not use the API, whatever it holds: no CORS, and
  // a browser's Origin (or Sec-Fetch-Site) must name this one.
  auto origin = request.header("origin");
  if (!origin.empty() && originHost(origin) != request.header("host"))
    return errorResponse(403, "permission_denied",
                         "cross-origin request refused: the portal and its API are same-origin "
                         "only (Origin " +
                             origin + ")");
  auto fetch_site = request.header("sec-fetch-site");
  if (!fetch_site.empty() && fetch_site != "same-origin" && fetch_site != "none")
    return errorResponse(403, "permission_denied",
                         "cross-site request refused (Sec-Fetch-Site: " + fetch_site + ")");

  if (auto it = methods_.find(path); it != methods_.end()) return call(request, path, it->second);
  if (path.rfind("/planetlab.", 0) == 0)
    return errorResponse(
        404, "unimplemented",
        "no method " + path.substr(1) +
            " in PLC's API: POST /planetlab.v1.<Service>/<Method> (docs/portal.md)");
  return file(request);
}

app::HttpResponse PortalHandler::call(const app::HttpRequest& request, const std::string& path,
                                      const Method& method) const {
  if (request.method != "POST") {
    auto response =
        errorResponse(405, "unimplemented", method.name + " is called with POST and a JSON body");
    response.headers.emplace_back("Allow", "POST");
    return response;
  }
  if (method.streaming)
    return errorResponse(501, "unimplemented",
                         method.name + " is a streaming method: it is served over gRPC only");
  auto content_type = request.header("content-type");
  if (content_type.rfind(kJson, 0) != 0)
    return errorResponse(
        415, "invalid_argument",
        "Content-Type must be application/json (proto3 JSON), not '" + content_type + "'");

  std::unique_ptr<protobuf::Message> message(method.request->New());
  protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = false;
  auto parsed = protobuf::util::JsonStringToMessage(request.body.empty() ? "{}" : request.body,
                                                    message.get(), parse);
  if (!parsed.ok())
    return errorResponse(400, "invalid_argument",
                         method.name + ": the body is not a " + message->GetTypeName() +
                             " in proto3 JSON: " + std::string(parsed.message()));

  std::string bytes;
  message->SerializeToString(&bytes);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer send(&slice, 1);
  grpc::ByteBuffer received;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
  if (auto authorization = request.header("authorization"); !authorization.empty())
    context.AddMetadata("authorization", authorization);
  if (auto peer = grpcPeerOf(request.peer); !peer.empty()) {
    context.AddMetadata(kClientAddressMetadata, peer);
    context.AddMetadata(kPortalKeyMetadata, portalCallKey());
  }
  std::promise<grpc::Status> done;
  stub_->UnaryCall(&context, path, grpc::StubOptions(), &send, &received,
                   [&done](grpc::Status status) { done.set_value(std::move(status)); });
  auto status = done.get_future().get();
  if (!status.ok())
    return errorResponse(httpStatusOf(status.error_code()), connectCodeName(status.error_code()),
                         status.error_message());

  std::unique_ptr<protobuf::Message> reply(method.response->New());
  std::vector<grpc::Slice> slices;
  std::string reply_bytes;
  if (received.Dump(&slices).ok()) {
    for (const auto& s : slices)
      reply_bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  if (!reply->ParseFromString(reply_bytes))
    return errorResponse(500, "internal", method.name + ": the server's answer did not parse");
  protobuf::util::JsonPrintOptions print;
  print.always_print_primitive_fields = true;
  std::string json;
  auto printed = protobuf::util::MessageToJsonString(*reply, &json, print);
  if (!printed.ok())
    return errorResponse(
        500, "internal",
        method.name + ": the answer cannot be written as JSON: " + std::string(printed.message()));
  return {200, kJson, std::move(json)};
}

app::HttpResponse PortalHandler::file(const app::HttpRequest& request) const {
  if (request.method != "GET" && request.method != "HEAD") {
    app::HttpResponse refused{405, "text/plain; charset=utf-8", "only GET and HEAD here\n"};
    refused.headers.emplace_back("Allow", "GET, HEAD");
    return refused;
  }
  std::string path = request.target.substr(0, request.target.find('?'));
  if (path == "/") path = "/index.html";
  auto it = files_.find(path);
  if (it == files_.end()) {
    if (files_.empty())
      return {404, "text/plain; charset=utf-8",
              "This plcd serves PLC's JSON API only (portal_root is not set): "
              "POST /planetlab.v1.<Service>/<Method>\n"};
    return {404, "text/plain; charset=utf-8", "no such page: " + path + "\n"};
  }
  app::HttpResponse page{200, it->second.content_type, it->second.body};
  page.headers.emplace_back("Content-Security-Policy", kPortalContentSecurityPolicy);
  return page;
}

}  // namespace plng::plc

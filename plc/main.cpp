// plcd: PlanetLab Central's API daemon. Stateless: any number of plcd processes
// may serve one PostgreSQL database.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "app/daemon_main.h"
#include "app/http_server.h"
#include "app/metrics.h"
#include "base/strings.h"
#include "plc/auth.h"
#include "plc/change_bus.h"
#include "plc/config.h"
#include "plc/db.h"
#include "plc/expiry_reminders.h"
#include "plc/expiry_sweeper.h"
#include "plc/flow_archive.h"
#include "plc/plc_keys.h"
#include "plc/plcd_metrics.h"
#include "plc/portal.h"
#include "plc/services.h"
#include "plc/validate.h"

namespace {

using plng::plc::PlcConfig;

const plng::app::DaemonSpec kPlcd{
    .program = "plcd",
    .summary =
        "PlanetLab Central's API daemon: the Auth, Admin, Slice and NodeSync gRPC services\n"
        "over PostgreSQL.",
    .commands =
        {
            {.name = "serve", .help = "migrate the schema, then serve (default)"},
            {.name = "migrate", .help = "apply schema migrations and exit"},
            {.name = "create-admin",
             .help = "create an enabled admin account and exit:\n"
                     "  --email E --first-name F --last-name L --password-stdin\n"
                     "(the password is read from the first line of standard input)",
             .takes_arguments = true},
        },
    .options =
        {
            {.name = "listen",
             .value_name = "ADDR",
             .config_key = "listen",
             .help = "gRPC address, e.g. 127.0.0.1:8620 (config: listen)"},
            {.name = "database",
             .value_name = "CONN",
             .config_key = "database",
             .help = "libpq connection string (config: database)"},
            {.name = "portal-listen",
             .value_name = "ADDR",
             .config_key = "portal_listen",
             .help = "portal and JSON API address, e.g. 127.0.0.1:8680; \"\" = off\n"
                     "(config: portal_listen)"},
            {.name = "portal-root",
             .value_name = "DIR",
             .config_key = "portal_root",
             .help = "directory of the built portal (config: portal_root)"},
            {.name = "metrics-listen",
             .value_name = "ADDR",
             .config_key = "metrics_listen",
             .help = "Prometheus GET /metrics address, e.g. 127.0.0.1:9620; \"\" = off\n"
                     "(config: metrics_listen)"},
        },
    .epilogue = "Signals: SIGTERM and SIGINT stop the server gracefully.",
};

std::atomic<bool> g_stop{false};

void onSignal(int) { g_stop = true; }

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int createAdmin(plng::plc::Database& db, const PlcConfig& config,
                const std::vector<std::string>& args) {
  std::string email, first, last;
  bool password_stdin = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw plng::app::UsageError(args[i] + " needs a value");
      return args[++i];
    };
    if (args[i] == "--email")
      email = value();
    else if (args[i] == "--first-name")
      first = value();
    else if (args[i] == "--last-name")
      last = value();
    else if (args[i] == "--password-stdin")
      password_stdin = true;
    else
      throw plng::app::UsageError("create-admin: unknown option " + args[i]);
  }
  if (email.empty() || !password_stdin) {
    throw plng::app::UsageError(
        "create-admin needs --email E --password-stdin (and --first-name, --last-name)");
  }
  std::string password;
  std::getline(std::cin, password);
  plng::plc::validateEmail(email);
  plng::plc::validatePassword(password);
  auto hash = plng::plc::hashPassword(password, config.scrypt_log2_n);
  db.write([&](pqxx::work& tx) {
    auto rows = tx.exec_params(
        "SELECT person_id FROM persons WHERE lower(email) = lower($1) AND deleted_at IS NULL",
        email);
    std::int64_t id;
    if (rows.empty()) {
      id = tx.exec_params1(
                 "INSERT INTO persons (email, first_name, last_name, password_hash, enabled)"
                 " VALUES ($1, $2, $3, $4, true) RETURNING person_id",
                 email, first.empty() ? "PLC" : first, last.empty() ? "Admin" : last, hash)[0]
               .as<std::int64_t>();
    } else {
      id = rows[0][0].as<std::int64_t>();
      tx.exec_params0("UPDATE persons SET password_hash = $2, enabled = true WHERE person_id = $1",
                      id, hash);
    }
    tx.exec_params0(
        "INSERT INTO person_roles (person_id, role) VALUES ($1, 'admin') ON CONFLICT DO NOTHING",
        id);
    tx.exec_params0(
        "INSERT INTO events (caller, role_used, method, arguments, objects, result)"
        " VALUES ('plcd create-admin', 'local', 'CreateAdmin', $1, $2::text[], 'OK')",
        "email: \"" + email + "\"", plng::plc::pgTextArray({"person:" + email}));
    plng::plc::Database::bumpStateVersion(tx);
  });
  std::cout << "admin " << email << " is ready\n";
  return 0;
}

int serve(plng::plc::Database& db, const PlcConfig& config) {
  plng::app::MetricsRegistry registry;
  plng::plc::PlcdMetrics metrics(registry);
  db.observeTransactions(
      [&](std::chrono::duration<double> held) { metrics.databaseTransaction(held); });
  plng::plc::Authenticator auth(db, config.auth_cache_ms,
                                std::make_shared<plng::plc::ScryptHasher>(config.scrypt_log2_n));
  // Made now, so that the first login with an unknown email costs no more than others.
  auth.dummyPasswordHash();
  plng::plc::PlcKeys keys(db);
  keys.ensureSigningKey();
  plng::plc::ChangeBus bus(db.connectionString(), [&] {
    auth.invalidate();
    keys.invalidate();
  });
  // After a failover or switchover no pooled connection may stay on the old server.
  bus.onServerLost([&db] { db.dropConnections(); });
  plng::plc::ExpirySweeper sweeper(db, std::chrono::seconds(5));
  sweeper.start();
  plng::plc::FlowRetention flow_retention(db, config.flow_retention_days, std::chrono::hours(1));
  flow_retention.start();
  std::unique_ptr<plng::plc::ExpiryReminders> reminders;
  if (!config.smtp_server.empty()) {
    auto settings = plng::plc::ReminderSettings::fromConfig(config);
    auto smtp = plng::plc::smtpOptionsFromConfig(config);
    spdlog::info("slice expiry reminders: {} days before expiry, from {}, through {} ({}as {})",
                 config.slice_reminder_days, config.smtp_from, config.smtp_server,
                 smtp.starttls ? "STARTTLS, " : "", smtp.helo);
    reminders = std::make_unique<plng::plc::ExpiryReminders>(
        db, std::move(settings), std::make_unique<plng::plc::SmtpMailer>(std::move(smtp)),
        std::chrono::seconds(config.slice_reminder_interval_s), &metrics);
    reminders->start();
  }
  plng::plc::PlcContext plc{db, config, auth, keys, bus, &metrics};

  plng::plc::AuthService auth_service(plc);
  plng::plc::AdminService admin_service(plc);
  plng::plc::SliceService slice_service(plc);
  plng::plc::NodeSyncService nodesync_service(plc);  // subscribes to the bus
  bus.start();
  metrics.addCollectors(db, [&] { return nodesync_service.openStreams(); });
  // What runs beside the server, stopped when plcd stops or cannot start.
  auto stopBackground = [&] {
    if (reminders) reminders->stop();
    flow_retention.stop();
    sweeper.stop();
    bus.stop();
    nodesync_service.stopStreams();  // ends every WatchSlivers stream
  };
  // Listening before gRPC does: a metrics address that cannot be bound stops
  // plcd at once with the reason, as a gRPC one does.
  std::unique_ptr<plng::app::HttpServer> metrics_server;
  if (!config.metrics_listen.empty()) {
    try {
      metrics_server = std::make_unique<plng::app::HttpServer>(
          registry.handler(), plng::app::HttpServer::Options{.listen = config.metrics_listen,
                                                             .config_key = "metrics_listen",
                                                             .server_name = "plcd"});
    } catch (const std::exception& e) {
      spdlog::critical("{}", e.what());
      stopBackground();
      return 1;
    }
    spdlog::info("plcd metrics on {} (port {}): GET /metrics", config.metrics_listen,
                 metrics_server->port());
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (!config.tls_cert.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({readFile(config.tls_key), readFile(config.tls_cert)});
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  // One port per address; each must bind, or plcd does not start.
  std::vector<std::string> addresses;
  for (auto& address : plng::base::split(config.listen, ',')) {
    if (auto trimmed = plng::base::trim(address); !trimmed.empty()) addresses.emplace_back(trimmed);
  }
  std::vector<int> bound_ports(addresses.size(), 0);
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    builder.AddListeningPort(addresses[i], creds, &bound_ports[i]);
  }
  builder.RegisterService(&auth_service);
  builder.RegisterService(&admin_service);
  builder.RegisterService(&slice_service);
  builder.RegisterService(&nodesync_service);
  // Threads serve the synchronous (unary) methods only: a WatchSlivers stream
  // holds none (NodeStreams).
  grpc::ResourceQuota quota("plcd");
  quota.SetMaxThreads(256);
  builder.SetResourceQuota(quota);
  // A request gRPC cannot parse is INVALID_ARGUMENT, not gRPC's bare INTERNAL.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(plng::plc::unparsableRequestInterceptor());
  // Last: it counts the status the client is sent, as the one above rewrote it.
  interceptors.push_back(plng::plc::rpcMetricsInterceptor(metrics));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  auto server = builder.BuildAndStart();
  if (!server || addresses.empty() ||
      std::find(bound_ports.begin(), bound_ports.end(), 0) != bound_ports.end()) {
    spdlog::critical("cannot listen on {}", config.listen);
    stopBackground();
    return 1;
  }
  spdlog::info("plcd serving on {} ({}), database ready", config.listen,
               config.tls_cert.empty() ? "plaintext" : "TLS");

  // The portal and the JSON API: calls go through the in-process channel to the
  // server above (plc/portal.h).
  std::unique_ptr<plng::app::HttpServer> portal_server;
  if (!config.portal_listen.empty()) {
    try {
      auto portal = std::make_shared<plng::plc::PortalHandler>(
          server->InProcessChannel(grpc::ChannelArguments()), config.portal_root);
      portal_server = std::make_unique<plng::app::HttpServer>(
          [portal](const plng::app::HttpRequest& request) { return (*portal)(request); },
          plng::app::HttpServer::Options{
              .listen = config.portal_listen,
              .config_key = "portal_listen",
              .server_name = "plcd",
              .timeout = std::chrono::seconds(30),
              .max_connections = 256,
              .max_request_bytes = 16384,
              .max_body_bytes = static_cast<std::size_t>(config.portal_max_body_bytes),
              .keep_alive = true,
              .threads = static_cast<unsigned>(config.portal_threads),
              .tls_cert = config.tls_cert,
              .tls_key = config.tls_key,
              .error_page = &plng::plc::PortalHandler::errorPage});
      spdlog::info(
          "plcd portal on {} ({}, port {}): {} JSON methods, {}", config.portal_listen,
          config.tls_cert.empty() ? "http" : "https", portal_server->port(), portal->methodCount(),
          config.portal_root.empty()
              ? std::string("no portal files (portal_root is empty)")
              : std::to_string(portal->fileCount()) + " portal files from " + config.portal_root);
    } catch (const std::exception& e) {
      spdlog::critical("{}", e.what());
      stopBackground();
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
      return 1;
    }
  }

  std::signal(SIGTERM, onSignal);
  std::signal(SIGINT, onSignal);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("plcd stopping");
  portal_server.reset();  // no new JSON calls; those under way end with the server below
  stopBackground();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return plng::app::runDaemon<PlcConfig>(
      kPlcd, plng::plc::plcdConfigTable(), plng::app::commandLineArguments(argc, argv),
      [](const plng::app::Invocation& invocation, const PlcConfig& config) {
        plng::plc::Database db(config.database, static_cast<std::size_t>(config.db_pool_size));
        int version = db.migrate();
        spdlog::info("database schema at version {}", version);
        if (invocation.command == "migrate") return 0;
        if (invocation.command == "create-admin")
          return createAdmin(db, config, invocation.arguments);
        return serve(db, config);
      });
}

#include "plc/plcd_metrics.h"

#include <google/protobuf/descriptor.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "base/proc.h"
#include "plc/db.h"
#include "proto/status_name.h"

namespace plng::plc {

namespace {

// Node streams get a new state within milliseconds when all is well, and
// seconds under a burst (docs/benchmarks.md): the latency buckets fit.
std::vector<double> fanoutBuckets() { return app::latencyBuckets(); }

// Entries of a /proc directory (threads, descriptors); 0 if unreadable.
double countEntries(const char* path) {
  std::error_code ec;
  double n = 0;
  for (std::filesystem::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return n;
}

void collectProcess(app::MetricsWriter& w) {
  static const double kTicks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  static const double kPage = static_cast<double>(::sysconf(_SC_PAGESIZE));
  if (auto stat = base::readProcStat(::getpid())) {
    w.counter("plng_plcd_process_cpu_seconds_total", "CPU time plcd used, user and system", {},
              static_cast<double>(stat->utime + stat->stime) / kTicks);
  }
  std::ifstream statm("/proc/self/statm");
  double size_pages = 0, resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    w.gauge("plng_plcd_process_resident_memory_bytes", "plcd's resident memory", {},
            resident_pages * kPage);
  }
  w.gauge("plng_plcd_process_threads", "plcd's threads", {}, countEntries("/proc/self/task"));
  w.gauge("plng_plcd_process_open_fds", "plcd's open file descriptors", {},
          countEntries("/proc/self/fd"));
}

}  // namespace

PlcdMetrics::PlcdMetrics(app::MetricsRegistry& registry)
    : registry_(registry),
      rpcs_(registry.counter("plng_plcd_rpcs_total",
                             "RPCs finished, by method and gRPC status code", {"method", "code"})),
      rpc_seconds_(registry.histogram("plng_plcd_rpc_duration_seconds",
                                      "time from a unary RPC's arrival to its status, by method",
                                      {"method"})),
      fanout_seconds_(
          registry
              .histogram("plng_plcd_fanout_lag_seconds",
                         "time from a change's notification to the new state written to a node "
                         "stream it affected",
                         {}, fanoutBuckets())
              .with({})),
      tickets_(registry.counter("plng_plcd_tickets_signed_total", "tickets PLC signed").with({})),
      reminder_mails_(registry.counter("plng_plcd_reminder_mails_total",
                                       "slice expiry reminder mails, sent or failed", {"result"})),
      transaction_seconds_(registry
                               .histogram("plng_plcd_db_transaction_duration_seconds",
                                          "time a database transaction (or single statement) "
                                          "held its pooled connection",
                                          {})
                               .with({})) {}

void PlcdMetrics::rpcFinished(const std::string& method, const char* code, bool streaming,
                              std::chrono::duration<double> elapsed) {
  rpcs_.with({method, code}).add();
  if (!streaming) rpc_seconds_.with({method}).observe(elapsed.count());
}

void PlcdMetrics::fanoutLag(std::chrono::duration<double> lag) {
  fanout_seconds_.observe(lag.count());
}

void PlcdMetrics::ticketSigned() { tickets_.add(); }

void PlcdMetrics::reminderMail(bool sent) {
  reminder_mails_.with({sent ? "sent" : "failed"}).add();
}

void PlcdMetrics::databaseTransaction(std::chrono::duration<double> held) {
  transaction_seconds_.observe(held.count());
}

void PlcdMetrics::addCollectors(Database& db, std::function<std::size_t()> open_streams) {
  registry_.addCollector([open_streams = std::move(open_streams)](app::MetricsWriter& w) {
    w.gauge("plng_plcd_node_streams_open", "open WatchSlivers streams of this plcd", {},
            static_cast<double>(open_streams()));
  });
  registry_.addCollector([&db](app::MetricsWriter& w) {
    const Database::PoolStats pool = db.poolStats();
    w.gauge("plng_plcd_db_pool_size", "database connections plcd may open (db_pool_size)", {},
            static_cast<double>(pool.size));
    w.gauge("plng_plcd_db_connections_open", "database connections open", {},
            static_cast<double>(pool.open));
    w.gauge("plng_plcd_db_connections_in_use", "database connections leased to a transaction", {},
            static_cast<double>(pool.in_use));
    w.counter("plng_plcd_db_pool_waits_total",
              "transactions that waited for a connection (every one in use)", {},
              static_cast<double>(pool.waits));
    w.counter("plng_plcd_db_pool_wait_seconds_total", "time transactions waited for a connection",
              {}, pool.wait_seconds);
  });
  registry_.addCollector(collectProcess);
}

namespace {

// The method as a label value: gRPC's "/planetlab.v1.Admin/GetNodes" for
// PLC's own methods; "other" for the rest (health checks, reflection, and any
// name a client made up: label values must stay bounded).
std::string methodLabel(const char* path) {
  if (path == nullptr) return "other";
  std::string full = path;
  if (!full.starts_with("/planetlab.")) return "other";
  std::string dotted = full.substr(1);
  std::replace(dotted.begin(), dotted.end(), '/', '.');
  if (google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(dotted) == nullptr) {
    return "other";
  }
  return full;
}

class RpcMetrics final : public grpc::experimental::Interceptor {
 public:
  RpcMetrics(PlcdMetrics& metrics, grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics),
        method_(methodLabel(info->method())),
        streaming_(info->type() != grpc::experimental::ServerRpcInfo::Type::UNARY),
        started_(std::chrono::steady_clock::now()) {}

  // A call that ends without a status sent (the client went away first) is
  // counted when gRPC destroys its interceptors, as CANCELLED.
  ~RpcMetrics() override {
    if (!counted_) finish(grpc::StatusCode::CANCELLED);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    if (!counted_ && methods->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS)) {
      finish(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void finish(grpc::StatusCode code) {
    counted_ = true;
    metrics_.rpcFinished(method_, statusCodeName(code), streaming_,
                         std::chrono::steady_clock::now() - started_);
  }

  PlcdMetrics& metrics_;
  std::string method_;
  bool streaming_;
  std::chrono::steady_clock::time_point started_;
  bool counted_ = false;
};

class RpcMetricsFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsFactory(PlcdMetrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcMetrics(metrics_, info);
  }

 private:
  PlcdMetrics& metrics_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> rpcMetricsInterceptor(
    PlcdMetrics& metrics) {
  return std::make_unique<RpcMetricsFactory>(metrics);
}

}  // namespace plng::plc

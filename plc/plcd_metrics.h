// plcd's Prometheus metrics (docs/metrics.md, "## plcd"): the families plcd
// updates as it works (RPCs, fan-out, tickets, database transactions), the
// collectors that read the rest at scrape time (open streams, the database
// pool, the process), and the server interceptor every RPC passes through.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "app/metrics.h"

namespace plng::plc {

class Database;

class PlcdMetrics {
 public:
  // Registers plcd's families in `registry`, which must outlive this.
  explicit PlcdMetrics(app::MetricsRegistry& registry);

  // One RPC finished with `code`. `method` is gRPC's "/package.Service/Method";
  // a streaming call counts, but its duration (a stream's whole life) is not
  // a latency and goes to no histogram.
  void rpcFinished(const std::string& method, const char* code, bool streaming,
                   std::chrono::duration<double> elapsed);
  // A node stream was sent a new state `lag` after the change notification that
  // made it due.
  void fanoutLag(std::chrono::duration<double> lag);
  void ticketSigned();
  // A slice expiry reminder mailed (`sent`) or failed (its claim released).
  void reminderMail(bool sent);
  // A transaction (or single statement) held its pooled connection this long.
  void databaseTransaction(std::chrono::duration<double> held);

  // Scrape-time samples: the database pool, open node streams (from
  // `open_streams`), and the process (CPU, memory, threads, descriptors).
  void addCollectors(Database& db, std::function<std::size_t()> open_streams);

  app::MetricsRegistry& registry() { return registry_; }

 private:
  app::MetricsRegistry& registry_;
  app::Family<app::Counter>& rpcs_;
  app::Family<app::Histogram>& rpc_seconds_;
  app::Histogram& fanout_seconds_;
  app::Counter& tickets_;
  app::Family<app::Counter>& reminder_mails_;
  app::Histogram& transaction_seconds_;
};

// Counts every RPC (method, status code) and times the unary ones into
// `metrics`: the one place every call passes, those refused before a handler
// runs included. Register it last, so that it sees the status the client gets.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> rpcMetricsInterceptor(
    PlcdMetrics& metrics);

}  // namespace plng::plc

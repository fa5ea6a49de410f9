// The sliverd daemon's parts wired together around one Boost.Asio event loop:
// desired state, reconciler (on changes and on a timer), PLC sync (its own
// thread, results posted to the loop), resource capabilities (RcapTable in
// <state_dir>/rcaps) and the NodeManager gRPC server on TCP. The local API
// (LocalApiServer, which needs the real cgroup driver to identify callers) is
// wired by main.cpp from granted() and rcaps().
//
// main.cpp builds the real SliverRuntime and hands it in; tests hand in a fake.
// Stopping the daemon never stops slivers: they keep running across restarts.
#pragma once

#include <grpcpp/grpcpp.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "app/http_server.h"
#include "app/metrics.h"
#include "node/runtime.h"
#include "sliverd/core/desired_state.h"
#include "sliverd/core/rcap_service.h"
#include "sliverd/core/rcaps.h"
#include "sliverd/core/reconciler.h"
#include "sliverd/daemon/config.h"
#include "sliverd/daemon/flow_shipper.h"
#include "sliverd/daemon/plc_sync.h"
#include "sliverd/local/local_service.h"
#include "sliverd/login/slice_accounts.h"
#include "sliverd/nodemanager/node_manager_service.h"
#include "sliverd/observe/node_reading.h"
#include "sliverd/observe/sensors.h"
#include "sliverd/vnet/audit_page.h"
#include "sliverd/vnet/daily_budgets.h"
#include "sliverd/vnet/network_isolation.h"

namespace plng::sliverd {

// The desired state as the local API reads it.
class DesiredGrants : public GrantedSlivers {
 public:
  DesiredGrants(const DesiredState& desired, std::function<std::int64_t()> clock)
      : desired_(desired), clock_(std::move(clock)) {}
  std::optional<GrantedSliver> find(const std::string& slice) const override;
  std::vector<std::string> slices() const override;

 private:
  const DesiredState& desired_;
  std::function<std::int64_t()> clock_;
};

class Daemon {
 public:
  struct Options {
    SliverdConfig config;
    plng::node::SliverRuntime* runtime = nullptr;  // required
    std::string cgroup_driver;                     // reported by GetNodeInfo
    std::string storage_kind;
    // The sliver storage's size (capacity for disk rcaps when
    // capacity_disk_bytes is 0), and the most one sliver may be given
    // (SliverStorage::maxSliverQuota; 0 = no ceiling) with where that comes from.
    std::uint64_t storage_bytes = 0;
    std::uint64_t disk_ceiling_bytes = 0;
    std::string disk_ceiling_why = {};
    // The node key (else read from config.node_key_file).
    std::optional<plng::ticket::PrivateKey> node_key;
    // Host accounts for ssh logins; null = none are kept (tests).
    SliceAccounts* accounts = nullptr;
    // Unix seconds; tests move time.
    std::function<std::int64_t()> clock;
    // vnet-bpf's maps, kept in line with the desired state after every pass and
    // at every PLC state (its blacklist); null = none (tests with a fake runtime).
    NetworkIsolation* network = nullptr;
    // The sliver storage, for the disk figures of sensors, metrics and health;
    // null = none (tests with a fake runtime).
    plng::node::SliverStorage* storage = nullptr;
  };

  explicit Daemon(Options options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Loads the persisted state, starts the gRPC servers, PLC sync and the
  // reconcile timer. Throws std::runtime_error when a server cannot listen.
  void start();
  // Runs the event loop on the calling thread until stop().
  void run();
  // Stops PLC sync, the servers and the loop; slivers keep running. Callable from
  // any thread (also from the loop, e.g. a signal handler), idempotent.
  void stop();

  boost::asio::io_context& io() { return io_; }
  DesiredState& desired() { return desired_; }
  RcapTable& rcaps() { return *rcap_table_; }
  // The flow record files (null without network isolation): what the audit
  // page reads, and the seam for shipping records to PLC (recordsSince).
  FlowFiles* flowFiles() { return flow_files_.get(); }
  // The audit page's port (0: not serving).
  std::uint16_t auditPort() const { return audit_server_ ? audit_server_->port() : 0; }
  // The sensor server's and /metrics' ports (0: not serving).
  std::uint16_t sensorPort() const { return sensor_server_ ? sensor_server_->port() : 0; }
  std::uint16_t metricsPort() const { return metrics_server_ ? metrics_server_->port() : 0; }
  // The one reading of the node that sensors, metrics and health reports share.
  const NodeObserver& observer() const { return *observer_; }
  // The NodeStatusReport sent to PLC every status_interval_s.
  planetlab::v1::NodeStatusReport statusReport();
  const GrantedSlivers& granted() const { return grants_; }
  Reconciler& reconciler() { return reconciler_; }
  // The TCP port NodeManager listens on (useful with listen = host:0).
  int nodeManagerPort() const { return tcp_port_; }
  std::string plcConnection() const;

  // Asks for a reconciliation pass soon (coalesced). Thread-safe.
  void requestReconcile();
  // Requests a pass and waits (up to `timeout`) until one that started after
  // this call has finished. Not from the loop thread.
  bool reconcileAndWait(std::chrono::milliseconds timeout);

  planetlab::v1::SliverInfo describe(const std::string& slice);
  // The reconciler's word on each sliver, for the local API (LocalService).
  std::function<SliverReport(const std::string&)> reports();
  planetlab::v1::NodeInfo nodeInfo();
  // The slices' daily byte budgets as of the last pass; null unless network
  // isolation is enforced (nothing is counted otherwise).
  const DailyBudgets* budgets() const { return budgets_.get(); }

 private:
  void runReconcile();
  void armTimer();
  // Flow auditing: the drain of the flow map into <state_dir>/flows, on the loop.
  void drainFlows();
  std::string sliceOfXid(std::uint32_t xid);
  void startAuditPage();
  // The sensor server and /metrics (each logged and skipped when it cannot listen).
  void startMonitoring();
  std::map<std::string, std::string> probedFeatures() const;
  // A budget pass (loop thread).
  void updateBudgets();
  // NodeSync.ReportStatus (loop thread): the node's health and every slice's
  // daily byte budget, to PLC, whether or not budgets are kept.
  void reportStatus();
  void onPlcState(const planetlab::v1::NodeState& state);
  // NetworkIsolation::apply over the desired state and the slivers that exist.
  void applyNetwork();
  void applyBlacklist();
  // Guarantees granted by tags and tickets, summed over live slivers.
  ResourceSpec grantedGuarantees();
  std::int64_t now() const { return options_.clock(); }

  Options options_;
  plng::node::NodePaths paths_;
  std::string hostname_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer budget_timer_;
  boost::asio::steady_timer status_timer_;
  DesiredState desired_;
  DesiredGrants grants_;
  std::unique_ptr<RcapTable> rcap_table_;
  std::unique_ptr<Reconciler> reconciler_holder_;
  Reconciler& reconciler_;
  std::unique_ptr<RcapService> rcap_service_;
  std::unique_ptr<NodeManagerService> node_manager_;
  std::unique_ptr<PlcSync> sync_;
  std::unique_ptr<grpc::Server> tcp_server_;
  std::unique_ptr<DailyBudgets> budgets_;  // null: no network isolation
  bool budgets_started_ = false;           // loop thread: a pass ran since start
  int tcp_port_ = 0;

  std::mutex pass_mutex_;
  std::condition_variable pass_done_;
  bool pass_pending_ = false;
  std::uint64_t passes_started_ = 0;
  std::uint64_t passes_done_ = 0;
  bool stopping_ = false;
  std::string last_list_error_;
  std::string last_report_error_;  // loop thread: ReportStatus's, logged once
  // Loop thread only: slices whose network policy was refused (logged once per
  // reason), and the blacklist's size last logged.
  std::map<std::string, std::string> network_refusals_;
  std::size_t blacklist_size_ = 0;
  // Flow records (with `network`): the files, the drain and its timer.
  std::unique_ptr<FlowFiles> flow_files_;
  std::unique_ptr<FlowDrain> flow_drain_;
  std::unique_ptr<AuditPages> audit_pages_;
  std::unique_ptr<app::HttpServer> audit_server_;
  // Monitoring: the node's reading, its sensor pages, and the metrics.
  std::unique_ptr<NodeObserver> observer_;
  std::unique_ptr<SensorPages> sensor_pages_;
  app::MetricsRegistry metrics_;
  app::Histogram& reconcile_seconds_;
  std::unique_ptr<app::HttpServer> sensor_server_;
  std::unique_ptr<app::HttpServer> metrics_server_;
  boost::asio::steady_timer flow_timer_;
  bool flow_drops_logged_ = false;
  // PLC's flow archive: after each drain, the records written since the
  // cursor (kept in <state_dir>/flows-shipped) go to the shipper's spool.
  std::unique_ptr<FlowShipper> flow_shipper_;
  FlowCursor ship_cursor_;
  std::uint64_t unshipped_drops_ = 0;  // drops not yet reported with a batch
  void shipFlows(std::uint64_t new_drops);
};

}  // namespace plng::sliverd

#include "sliverd/daemon/daemon.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cstdlib>
#include <ctime>
#include <filesystem>

#include "base/file.h"
#include "base/landlock.h"
#include "base/strings.h"
#include "node/resources.h"
#include "sliverd/observe/node_health.h"
#include "sliverd/observe/node_metrics.h"

namespace plng::sliverd {

namespace pb = planetlab::v1;
namespace fs = std::filesystem;

namespace {

std::uint64_t physicalMemory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
}

// What the node hands out, from the configuration and the storage it found.
ResourceSpec capacitySpec(const SliverdConfig& c, std::uint64_t storage_bytes) {
  ResourceSpec spec;
  spec.cpu_share = c.capacity_cpu_shares;
  spec.mem_limit_bytes = c.capacity_mem_bytes != 0 ? c.capacity_mem_bytes : physicalMemory();
  spec.disk_quota_bytes = c.capacity_disk_bytes != 0 ? c.capacity_disk_bytes
                          : storage_bytes != 0       ? storage_bytes
                                                     : c.storage_volume_bytes;
  spec.net_min_rate = c.capacity_net_bps;
  spec.net_max_rate = c.capacity_net_bps;
  return spec;
}

// Runs `action` on the loop every `interval` until `timer` is cancelled.
void repeatEvery(boost::asio::steady_timer& timer, std::chrono::seconds interval,
                 std::function<void()> action) {
  timer.expires_after(interval);
  timer.async_wait(
      [&timer, interval, action = std::move(action)](const boost::system::error_code& ec) {
        if (ec) return;
        action();
        repeatEvery(timer, interval, action);
      });
}

}  // namespace

std::optional<GrantedSliver> DesiredGrants::find(const std::string& slice) const {
  const std::int64_t now = clock_();
  auto want = desired_.lookup(slice, now);
  if (!want || want->expired(now)) return std::nullopt;
  GrantedSliver out;
  out.xid = want->config.xid;
  if (want->invalid.empty()) {
    out.rspec = grantedSpec(want->config, want->network);
    out.proper = want->proper;
  }
  out.source = want->source;
  out.expires_at = want->expires_at;
  out.tags = want->tags;
  return out;
}

std::vector<std::string> DesiredGrants::slices() const {
  const std::int64_t now = clock_();
  std::vector<std::string> out;
  for (const auto& [slice, want] : desired_.desired(now)) {
    if (!want.expired(now)) out.push_back(slice);
  }
  return out;
}

Daemon::Daemon(Options options)
    : options_([&] {
        if (!options.clock) {
          options.clock = [] { return static_cast<std::int64_t>(std::time(nullptr)); };
        }
        if (options.runtime == nullptr) throw std::invalid_argument("Daemon needs a runtime");
        return std::move(options);
      }()),
      paths_(options_.config.paths()),
      hostname_(options_.config.effectiveHostname()),
      work_(boost::asio::make_work_guard(io_)),
      timer_(io_),
      budget_timer_(io_),
      status_timer_(io_),
      desired_(paths_, hostname_),
      grants_(desired_, options_.clock),
      rcap_table_(std::make_unique<RcapTable>(paths_.state_dir / "rcaps",
                                              capacitySpec(options_.config, options_.storage_bytes),
                                              [this] { return grantedGuarantees(); })),
      reconciler_holder_(std::make_unique<Reconciler>(
          *options_.runtime, desired_,
          Reconciler::Options{
              .paths = paths_,
              .stop_grace = std::chrono::milliseconds(options_.config.stop_grace_ms),
              .delete_grace_s = options_.config.delete_grace_s,
              .effective_config =
                  [this](const plng::node::SliverConfig& config) {
                    return withBound(config, rcap_table_->boundTo(config.slice));
                  },
              .on_destroyed =
                  [this](const std::string& slice) {
                    rcap_table_->releaseSlice(slice);
                    if (options_.accounts != nullptr) options_.accounts->removeSliceAccount(slice);
                  },
              .on_present =
                  [this](const std::string& slice) {
                    if (options_.accounts != nullptr) options_.accounts->ensureSliceAccount(slice);
                  },
              .clock = options_.clock,
          })),
      reconciler_(*reconciler_holder_),
      rcap_service_(std::make_unique<RcapService>(
          *rcap_table_, [this] { return desired_.trustedKeys(); }, hostname_, options_.clock,
          [this](const std::string& slice) -> std::optional<pb::SliverInfo> {
            if (!options_.runtime->get(slice)) return std::nullopt;
            return describe(slice);
          },
          [this](const std::string&) { requestReconcile(); })),
      reconcile_seconds_(metrics_
                             .histogram("plng_sliverd_reconcile_duration_seconds",
                                        "Time one reconciliation pass took", {})
                             .with({})),
      flow_timer_(io_) {
  reconciler_.setDiskCeiling(options_.disk_ceiling_bytes, options_.disk_ceiling_why);
  observer_ = std::make_unique<NodeObserver>(NodeObserver::Sources{
      .runtime = options_.runtime,
      .storage = options_.storage,
      .network = options_.network,
      .budgets = [this] { return budgets(); },
      .plc_stream = [this] { return plcConnection(); },
      .features = probedFeatures(),
      .clock = options_.clock,
  });
  addNodeMetrics(metrics_, *observer_);
}

std::map<std::string, std::string> Daemon::probedFeatures() const {
  std::map<std::string, std::string> out;
  out["cgroup"] = options_.cgroup_driver;
  out["quota"] = options_.storage_kind;
  const int landlock = base::landlockAbiVersion();
  out["landlock"] = landlock > 0 ? "ABI " + std::to_string(landlock) : "none";
  if (options_.network == nullptr) {
    out["vnet"] = "off";
    return out;
  }
  const NetworkIsolation& network = *options_.network;
  out["vnet"] =
      network.state() == NetworkIsolation::State::kEnforced ? "bpf" : network.describeState();
  out["bpf"] = network.features().summary();
  out["abstract_unix"] = network.features().abstractUnixIsolation();
  out["bandwidth"] =
      network.state() == NetworkIsolation::State::kEnforced && options_.config.bandwidth ? "htb"
                                                                                         : "off";
  return out;
}

Daemon::~Daemon() { stop(); }

void Daemon::start() {
  fs::create_directories(paths_.state_dir);
  fs::create_directories(paths_.run_dir);
  for (const auto& warning : desired_.load()) spdlog::warn("{}", warning);
  spdlog::info("sliverd for node {}: state in {}, PLC state version {}", hostname_,
               paths_.state_dir.string(), desired_.plcVersion());
  applyBlacklist();
  if (options_.network != nullptr &&
      options_.network->state() == NetworkIsolation::State::kEnforced) {
    budgets_ = std::make_unique<DailyBudgets>(
        DailyBudgets::Options{
            .state_file = paths_.state_dir / "net-budgets",
            .budget = {.threshold_pct = options_.config.net_budget_threshold_pct},
            .clock = options_.clock,
        },
        *options_.network);
  }

  node_manager_ = std::make_unique<NodeManagerService>(
      desired_, rcap_service_.get(),
      NodeManagerService::Hooks{
          .changed = [this] { reconcileAndWait(std::chrono::seconds(20)); },
          .describe = [this](const std::string& slice) { return describe(slice); },
          .node_info = [this] { return nodeInfo(); },
          .clock = options_.clock,
      });
  grpc::ServerBuilder tcp;
  tcp.AddListeningPort(options_.config.listen, grpc::InsecureServerCredentials(), &tcp_port_);
  tcp.RegisterService(node_manager_.get());
  // NodeManager is reachable from the network, unauthenticated until a ticket is
  // checked: what its callers make sliverd hold is bounded below sliverd's own
  // memory limit (gRPC then refuses with RESOURCE_EXHAUSTED), and so are the
  // handler threads (a redemption may wait up to 20 s for a reconcile pass) and
  // the streams one connection may open.
  grpc::ResourceQuota quota("sliverd-nodemanager");
  const std::uint64_t own = options_.config.daemon_memory_max_bytes;
  quota.Resize(own != 0 ? own / 4 : 256ull << 20);
  quota.SetMaxThreads(64);
  tcp.SetResourceQuota(quota);
  tcp.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 16);
  tcp_server_ = tcp.BuildAndStart();
  if (!tcp_server_ || tcp_port_ == 0) {
    throw std::runtime_error("cannot listen on " + options_.config.listen +
                             " (config key listen): address in use or not local?");
  }
  spdlog::info("NodeManager (tickets, rcaps) on {} (port {})", options_.config.listen, tcp_port_);

  plng::ticket::PrivateKey key{};
  if (options_.node_key) {
    key = *options_.node_key;
  } else {
    key = readNodeKey(options_.config.node_key_file);
  }
  const auto reconnect_min = std::chrono::milliseconds(options_.config.reconnect_min_ms);
  const auto reconnect_max = std::chrono::milliseconds(options_.config.reconnect_max_ms);
  std::string ca;
  if (!options_.config.plc_tls_ca.empty()) {
    auto pem = base::readFileIfExists(options_.config.plc_tls_ca);
    if (!pem) throw std::runtime_error("cannot read plc_tls_ca " + options_.config.plc_tls_ca);
    ca = *pem;
  }
  // One channel to PLC: the state stream and the flow shipper share it.
  const std::shared_ptr<grpc::Channel> plc_channel =
      PlcSync::makeChannel(options_.config.plc_address, ca, reconnect_min, reconnect_max,
                           options_.config.plc_max_state_bytes);
  sync_ = std::make_unique<PlcSync>(
      plc_channel,
      PlcSync::Options{
          .hostname = hostname_,
          .node_key = key,
          .reconnect_min = reconnect_min,
          .reconnect_max = reconnect_max,
          .poll_interval = std::chrono::seconds(options_.config.poll_interval_s),
      },
      [this](const pb::NodeState& state) {
        boost::asio::post(io_, [this, state] { onPlcState(state); });
      },
      [this] { return desired_.plcPosition(); });
  sync_->start();
  spdlog::info("syncing with PLC at {}", options_.config.plc_address);

  // The last known state is enforced right away, PLC or not.
  requestReconcile();
  armTimer();
  repeatEvery(budget_timer_, std::chrono::seconds(options_.config.net_budget_interval_s),
              [this] { updateBudgets(); });
  repeatEvery(status_timer_, std::chrono::seconds(options_.config.status_interval_s),
              [this] { reportStatus(); });
  startMonitoring();

  if (options_.network != nullptr &&
      options_.network->state() == NetworkIsolation::State::kEnforced) {
    flow_files_ = std::make_unique<FlowFiles>(paths_.state_dir / "flows",
                                              options_.config.flow_retention_days);
    flow_drain_ = std::make_unique<FlowDrain>(
        *options_.network, *flow_files_, systemFlowClock(),
        [this](std::uint32_t xid) { return sliceOfXid(xid); },
        FlowDrain::Options{.idle = std::chrono::seconds(options_.config.flow_drain_interval_s)});
    spdlog::info("flow records every {} s into {}, kept {} days",
                 options_.config.flow_drain_interval_s, flow_files_->dir().string(),
                 options_.config.flow_retention_days);
    flow_shipper_ = std::make_unique<FlowShipper>(
        plc_channel, FlowShipper::Options{.hostname = hostname_,
                                          .node_key = key,
                                          .spool_dir = paths_.state_dir / "flow-spool",
                                          .retry_min = reconnect_min,
                                          .retry_max = reconnect_max});
    if (auto text = base::readFileIfExists(paths_.state_dir / "flows-shipped", 4096)) {
      const auto fields = base::split(base::trim(*text), ' ');
      if (fields.size() == 2) {
        ship_cursor_.file = fields[0];
        ship_cursor_.offset = std::strtoull(fields[1].c_str(), nullptr, 10);
      }
    }
    flow_shipper_->start();
    repeatEvery(flow_timer_, std::chrono::seconds(options_.config.flow_drain_interval_s),
                [this] { drainFlows(); });
    startAuditPage();
  }
}

void Daemon::startMonitoring() {
  // Neither serves what the node needs to run its slivers: one that cannot
  // listen is an error in the log, not a reason to stop.
  if (!options_.config.sensor_listen.empty()) {
    sensor_pages_ = std::make_unique<SensorPages>(*observer_);
    try {
      sensor_server_ = std::make_unique<app::HttpServer>(
          [pages = sensor_pages_.get()](std::string_view target) { return pages->get(target); },
          app::HttpServer::Options{.listen = options_.config.sensor_listen,
                                   .config_key = "sensor_listen",
                                   .server_name = "sliverd"});
      spdlog::info("sensors on {} (port {})", options_.config.sensor_listen,
                   sensor_server_->port());
    } catch (const std::exception& e) {
      spdlog::error("sensors not served: {}", e.what());
    }
  }
  if (!options_.config.metrics_listen.empty()) {
    try {
      metrics_server_ = std::make_unique<app::HttpServer>(
          metrics_.handler(), app::HttpServer::Options{.listen = options_.config.metrics_listen,
                                                       .config_key = "metrics_listen",
                                                       .server_name = "sliverd"});
      spdlog::info("metrics on {} (port {})", options_.config.metrics_listen,
                   metrics_server_->port());
    } catch (const std::exception& e) {
      spdlog::error("metrics not served: {}", e.what());
    }
  }
}

void Daemon::startAuditPage() {
  if (options_.config.audit_listen.empty()) return;
  audit_pages_ = std::make_unique<AuditPages>(
      *flow_files_,
      [this](const std::string& slice) {
        auto wanted = desired_.lookup(slice, now());
        return wanted ? wanted->about : SliceAbout{};
      },
      systemFlowClock(),
      AuditPages::Options{.hostname = hostname_, .plc_url = options_.config.plc_url});
  try {
    audit_server_ = std::make_unique<app::HttpServer>(
        [pages = audit_pages_.get()](std::string_view target) {
          try {
            return pages->get(target);
          } catch (const std::exception& e) {
            throw std::runtime_error(std::string("cannot read the flow records: ") + e.what());
          }
        },
        app::HttpServer::Options{.listen = options_.config.audit_listen,
                                 .config_key = "audit_listen",
                                 .server_name = "sliverd"});
    spdlog::info("\"who sent this?\" page on {} (port {})", options_.config.audit_listen,
                 audit_server_->port());
  } catch (const std::exception& e) {
    // The page serves outsiders; the node runs its slivers without it.
    spdlog::error("flow auditing page not served: {}", e.what());
  }
}

void Daemon::drainFlows() {
  try {
    FlowDrain::Result result = flow_drain_->drainOnce();
    if (result.new_drops > 0 || (!flow_drops_logged_ && result.drops > 0)) {
      spdlog::warn(
          "flow records: {} packets went unrecorded since the last drain ({} since the flow map "
          "was created): the map of {} entries was full (config flow_map_entries)",
          result.new_drops, result.drops, options_.config.flow_map_entries);
    }
    flow_drops_logged_ = true;
    shipFlows(result.new_drops);
    for (const std::string& name : result.expired)
      spdlog::info("flow records: {} deleted (older than {} days)", name,
                   options_.config.flow_retention_days);
  } catch (const std::exception& e) {
    spdlog::error("flow records: drain failed: {}", e.what());
  }
}

void Daemon::shipFlows(std::uint64_t new_drops) {
  if (!flow_shipper_) return;
  unshipped_drops_ += new_drops;
  // Spooled first, then the cursor moved: a crash between the two ships those
  // records again, in a batch of another id (PLC stores them twice); never
  // fewer.
  while (true) {
    FlowCursor next = ship_cursor_;
    const std::vector<FlowRecord> records = flow_files_->recordsSince(next, 5000);
    if (records.empty() && unshipped_drops_ == 0) break;
    std::vector<pb::FlowRecord> batch;
    batch.reserve(records.size());
    for (const FlowRecord& record : records) batch.push_back(toProto(record));
    flow_shipper_->ship(batch, unshipped_drops_);
    unshipped_drops_ = 0;
    ship_cursor_ = next;
    base::writeFileAtomic(paths_.state_dir / "flows-shipped",
                          ship_cursor_.file + " " + std::to_string(ship_cursor_.offset) + "\n",
                          0644);
    if (records.empty()) break;
  }
}

std::string Daemon::sliceOfXid(std::uint32_t xid) {
  for (const auto& [slice, wanted] : desired_.desired(now()))
    if (wanted.config.xid == xid) return slice;
  return {};
}

void Daemon::run() { io_.run(); }

void Daemon::stop() {
  {
    std::lock_guard lock(pass_mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  pass_done_.notify_all();
  if (sync_) sync_->stop();
  if (flow_shipper_) flow_shipper_->stop();
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(2);
  if (tcp_server_) tcp_server_->Shutdown(deadline);
  audit_server_.reset();
  sensor_server_.reset();
  metrics_server_.reset();
  boost::asio::post(io_, [this] {
    timer_.cancel();
    flow_timer_.cancel();
    budget_timer_.cancel();
    status_timer_.cancel();
  });
  work_.reset();
  io_.stop();
  spdlog::info("sliverd stopped; slivers keep running");
}

std::string Daemon::plcConnection() const { return sync_ ? sync_->connection() : "offline"; }

void Daemon::onPlcState(const pb::NodeState& state) {
  try {
    const auto held = desired_.plcPosition();
    if (desired_.setPlcState(state)) {
      if (held.version != 0 && held.epoch != state.epoch()) {
        spdlog::warn("PLC's state epoch changed ({} -> {}): taking its state as it is", held.epoch,
                     state.epoch());
      }
      spdlog::info("PLC state version {}: {} slivers", state.version(), state.slivers_size());
      applyBlacklist();
      requestReconcile();
    }
  } catch (const std::exception& e) {
    spdlog::error("cannot keep PLC state version {}: {}", state.version(), e.what());
  }
}

void Daemon::applyNetwork() {
  if (options_.network == nullptr) return;
  try {
    std::optional<std::uint64_t> site_limit;
    try {
      site_limit = plng::node::nodeNetworkCapFromTags(desired_.nodeTags());
    } catch (const std::exception& e) {
      spdlog::error("node tag ignored, capacity_net_bps kept: {}", e.what());
    }
    options_.network->setNodeLimit(site_limit);
    std::map<std::string, NetworkIsolation::SliceRights> rights;
    for (const auto& [slice, wanted] : desired_.desired(now())) {
      if (wanted.expired(now()) || !wanted.invalid.empty()) continue;
      const ResourceSpec bound = rcap_table_->boundTo(slice);
      rights[slice] = NetworkIsolation::SliceRights{.xid = wanted.config.xid,
                                                    .rights = wanted.rights,
                                                    .limits = wanted.network,
                                                    .bound_min_rate_bps = bound.net_min_rate,
                                                    .bound_max_rate_bps = bound.net_max_rate};
    }
    auto refusals = options_.network->apply(rights, options_.runtime->list());
    for (const auto& [slice, why] : refusals) {
      auto known = network_refusals_.find(slice);
      if (known == network_refusals_.end() || known->second != why) {
        spdlog::error("sliver {}: network policy refused: {}", slice, why);
      }
    }
    network_refusals_ = std::move(refusals);
    options_.network->refresh();
  } catch (const std::exception& e) {
    spdlog::error("network isolation: cannot apply the desired state: {}", e.what());
  }
}

void Daemon::applyBlacklist() {
  if (options_.network == nullptr) return;
  try {
    const std::vector<std::string> prefixes = desired_.blacklist();
    for (const std::string& skipped : options_.network->setBlacklist(prefixes)) {
      spdlog::warn("PLC's blacklist: entry skipped: {}", skipped);
    }
    if (prefixes.size() != blacklist_size_) {
      spdlog::info("destination blacklist: {} prefixes", prefixes.size());
      blacklist_size_ = prefixes.size();
    }
  } catch (const std::exception& e) {
    spdlog::error("network isolation: cannot apply PLC's blacklist: {}", e.what());
  }
}

void Daemon::requestReconcile() {
  {
    std::lock_guard lock(pass_mutex_);
    if (pass_pending_ || stopping_) return;
    pass_pending_ = true;
  }
  boost::asio::post(io_, [this] { runReconcile(); });
}

bool Daemon::reconcileAndWait(std::chrono::milliseconds timeout) {
  std::uint64_t target;
  {
    std::lock_guard lock(pass_mutex_);
    // A pass already running may have read the desired state before our change.
    target = passes_started_ + 1;
  }
  requestReconcile();
  std::unique_lock lock(pass_mutex_);
  return pass_done_.wait_for(lock, timeout, [&] { return passes_done_ >= target || stopping_; }) &&
         !stopping_;
}

void Daemon::runReconcile() {
  {
    std::lock_guard lock(pass_mutex_);
    pass_pending_ = false;
    ++passes_started_;
  }
  const auto started = std::chrono::steady_clock::now();
  bool listed = true;
  try {
    reconciler_.reconcileOnce();
    last_list_error_.clear();
  } catch (const std::exception& e) {
    if (last_list_error_ != e.what()) spdlog::error("reconciliation failed: {}", e.what());
    last_list_error_ = e.what();
    listed = false;
  }
  reconcile_seconds_.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  observer_->recordPass(listed, reconciler_.failures());
  applyNetwork();
  // The first pass after start puts back the ceils the budgets had lowered,
  // which the classes' own, just applied, replaced.
  if (!budgets_started_) updateBudgets();
  {
    std::lock_guard lock(pass_mutex_);
    ++passes_done_;
  }
  pass_done_.notify_all();
}

void Daemon::armTimer() {
  repeatEvery(timer_, std::chrono::seconds(options_.config.reconcile_interval_s),
              [this] { requestReconcile(); });
}

void Daemon::updateBudgets() {
  if (!budgets_) return;
  budgets_started_ = true;
  std::map<std::string, DailyBudgets::Slice> slices;
  for (const auto& [slice, wanted] : desired_.desired(now())) {
    if (wanted.expired(now()) || !wanted.invalid.empty()) continue;
    slices[slice] = {.xid = wanted.config.xid, .daily_bytes = wanted.network.daily_bytes};
  }
  budgets_->pass(slices);
}

pb::NodeStatusReport Daemon::statusReport() {
  pb::NodeStatusReport report;
  report.set_reported_at(now());
  if (budgets_) {
    for (const auto& [slice, budget] : budgets_->all())
      *report.add_slice_net() = DailyBudgets::sliceNetUsage(slice, budget);
  }
  *report.mutable_health() = toNodeHealth(observer_->read());
  return report;
}

void Daemon::reportStatus() {
  // Offline, PlcSync says so once already; the next report after it is back.
  if (!sync_ || sync_->connection() == "offline") return;
  const pb::NodeStatusReport report = statusReport();
  const grpc::Status status = sync_->reportStatus(report);
  std::string error;
  if (!status.ok()) error = status.error_message();
  if (!error.empty() && error != last_report_error_)
    spdlog::warn(
        "cannot report the node's status to PLC: {} (tried again every "
        "status_interval_s)",
        error);
  last_report_error_ = error;
}

pb::SliverInfo Daemon::describe(const std::string& slice) {
  std::optional<plng::node::SliverStatus> actual;
  try {
    actual = options_.runtime->get(slice);
  } catch (const std::exception& e) {
    auto info = describeSliver(slice, desired_.lookup(slice, now()), std::nullopt,
                               std::string("cannot read the sliver's state: ") + e.what());
    return info;
  }
  std::optional<std::string> held_by;
  try {
    if (actual) held_by = heldBy(paths_, slice);
  } catch (const std::exception&) {
    // Only the message depends on it.
  }
  return describeSliver(slice, desired_.lookup(slice, now()), actual, reconciler_.failure(slice),
                        held_by, reconciler_.notice(slice));
}

std::function<SliverReport(const std::string&)> Daemon::reports() {
  return [this](const std::string& slice) { return reconciler_.report(slice); };
}

ResourceSpec Daemon::grantedGuarantees() {
  ResourceSpec sum;
  const std::int64_t t = now();
  for (const auto& [slice, want] : desired_.desired(t)) {
    if (want.expired(t) || !want.invalid.empty()) continue;
    sum.cpu_share += want.config.resources.cpu_share;
    sum.net_min_rate += want.network.min_rate_bps;
  }
  return sum;
}

pb::NodeInfo Daemon::nodeInfo() {
  pb::NodeInfo info;
  info.set_hostname(hostname_);
  info.set_cgroup_driver(options_.cgroup_driver);
  info.set_storage(options_.storage_kind);
  *info.mutable_capacity() = toRSpec(rcap_table_->capacity());
  ResourceSpec reserved = rcap_table_->reserved();
  const ResourceSpec granted = grantedGuarantees();
  reserved.cpu_share += granted.cpu_share;
  reserved.net_min_rate += granted.net_min_rate;
  *info.mutable_reserved() = toRSpec(reserved);
  info.set_plc_state_version(desired_.plcVersion());
  info.set_plc_connection(plcConnection());
  if (options_.network != nullptr) options_.network->describe(info);
  return info;
}

}  // namespace plng::sliverd

// sliverd: the PlanetLab node daemon. Makes the slivers on this node match what
// PLC and redeemed tickets ask for; slivers keep running when it stops.
//
// GCC's -Wnull-dereference flags Boost.Asio 1.74's scheduler internals once they
// are inlined here (a false positive in a system header's thread-info cast).
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <linux/if_ether.h>
#include <net/if.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/daemon_main.h"
#include "base/error.h"
#include "base/file.h"
#include "base/scope_guard.h"
#include "base/strings.h"
#include "node/cgroup.h"
#include "node/idrange.h"
#include "node/raw_socket.h"
#include "node/security.h"
#include "node/sliver_runtime.h"
#include "node/storage.h"
#include "sliverd/core/raw_socket_broker.h"
#include "sliverd/core/raw_socket_runtime.h"
#include "sliverd/core/reconciler.h"
#include "sliverd/daemon/config.h"
#include "sliverd/daemon/daemon.h"
#include "sliverd/daemon/node_watchdogs.h"
#include "sliverd/local/local_server.h"
#include "sliverd/local/local_service.h"
#include "sliverd/local/peer_slice.h"
#include "sliverd/login/slice_accounts.h"
#include "sliverd/login/slice_login.h"
#include "sliverd/vnet/network_isolation.h"
#include "vnet-bpf/capture_filter.h"

namespace {

using plng::sliverd::SliverdConfig;

const plng::app::DaemonSpec kSliverd{
    .program = "sliverd",
    .summary =
        "The PlanetLab node daemon: keeps this node's slivers in line with PLC's desired\n"
        "state and the tickets redeemed here. Slivers keep running when sliverd stops.",
    .commands =
        {
            {.name = "serve", .help = "run the daemon (default)"},
            {.name = "decommission",
             .help = "stop and delete every sliver of this node instance, remove\n"
                     "its slice accounts and unmount its storage volume (run with\n"
                     "the daemon stopped; the node is then empty)"},
        },
    .options = {},
    .epilogue =
        "Signals: SIGTERM and SIGINT stop the daemon gracefully without stopping slivers.\n"
        "Exit codes: 0 stopped by a signal, 1 runtime failure, 2 usage or config error.",
};

// Nothing sliverd starts may reach the terminal it was started from (an operator
// running the local planet from a root shell): stdin from /dev/null, no
// controlling terminal, and no TIOCSTI for anyone without CAP_SYS_ADMIN.
void hardenHost(const SliverdConfig& config) {
  namespace node = plng::node;
  node::TerminalDetach detach = node::detachFromControllingTerminal();
  if (!detach.terminal.empty()) {
    spdlog::info("gave up controlling terminal {} (no sliver or helper may inherit it)",
                 detach.terminal);
  }
  if (!config.disable_legacy_tiocsti) {
    spdlog::warn("dev.tty.legacy_tiocsti left as it is (config disable_legacy_tiocsti = false)");
    return;
  }
  node::LegacyTiocsti tiocsti = node::disableLegacyTiocsti();
  if (!tiocsti.present) {
    spdlog::info(
        "this kernel has no dev.tty.legacy_tiocsti (before 6.2): TIOCSTI works on the "
        "caller's own controlling terminal only, and no sliver process has one of the "
        "host's");
  } else if (tiocsti.changed) {
    spdlog::info("dev.tty.legacy_tiocsti was {}, set to 0 (config disable_legacy_tiocsti)",
                 tiocsti.before);
  } else {
    spdlog::info("dev.tty.legacy_tiocsti is 0");
  }
}

// Stock `ping` and `ping -6` in every sliver, without the raw right: ICMP
// datagram sockets for every slice's gids (net.ipv4.ping_group_range of
// sliverd's network namespace, the node's). The value found before the first
// sliverd is kept for decommission, which puts it back.
std::filesystem::path savedPingGroupRange(const SliverdConfig& config) {
  return std::filesystem::path(config.state_dir) / "ping_group_range.before";
}

void allowPingSockets(const SliverdConfig& config) {
  namespace node = plng::node;
  const node::PingGroupRange range = node::coverPingGroupRange(node::allSliceIds());
  std::filesystem::create_directories(config.state_dir);
  if (!std::filesystem::exists(savedPingGroupRange(config))) {
    plng::base::writeFileAtomic(savedPingGroupRange(config), range.before + "\n", 0600);
  }
  if (range.changed) {
    spdlog::info(
        "net.ipv4.ping_group_range was {}, set to {} (every slice's gids: ping "
        "sockets in slivers)",
        range.before, range.after);
  } else {
    spdlog::info("net.ipv4.ping_group_range {} covers every slice's gids", range.after);
  }
}

// The node's net.ipv4.ip_local_reserved_ports before sliverd added the slices'
// reserved ports (sliverd/vnet/local_reserved_ports.h); decommission puts it back.
std::filesystem::path savedLocalReservedPorts(const SliverdConfig& config) {
  return std::filesystem::path(config.state_dir) / "ip_local_reserved_ports.before";
}

void restorePingSockets(const SliverdConfig& config) {
  const auto saved = plng::base::readFileIfExists(savedPingGroupRange(config));
  if (!saved) return;
  const std::string value(plng::base::trim(*saved));
  plng::node::restorePingGroupRange(value);
  std::filesystem::remove(savedPingGroupRange(config));
  spdlog::info("net.ipv4.ping_group_range restored to {}", value);
}

plng::node::StorageOptions storageOptions(const SliverdConfig& config) {
  return plng::node::StorageOptions{
      .state_dir = config.state_dir,
      .volume_bytes = config.storage_volume_bytes,
      .force_kind = config.storage_kind,
      .reserve_pct = config.storage_reserve_pct,
  };
}

// The host's slice accounts as this instance keeps them. Other node instances on
// the host that share them (one login shell, so one installation of the login
// tools) are listed in the sliver-enter.d beside that shell (slice_login.h).
plng::sliverd::SliceAccountsConfig sliceAccountsConfig(const SliverdConfig& config) {
  plng::sliverd::SliceAccountsConfig accounts{
      .root = "/",
      .login_shell = config.sliver_enter,
      .paths = config.paths(),
      .neighbours = {},
  };
  std::filesystem::path instances = std::filesystem::path(config.sliver_enter).parent_path() /
                                    plng::sliverd::kSliceLoginInstancesName;
  std::error_code ec;
  if (!std::filesystem::is_directory(instances, ec)) return accounts;
  for (const auto& instance :
       plng::sliverd::readSliceLoginInstances(instances, /*trusted_only=*/false)) {
    if (instance.paths.state_dir != accounts.paths.state_dir) {
      accounts.neighbours.push_back(instance.paths);
    }
  }
  return accounts;
}

int serve(const SliverdConfig& config) {
  namespace node = plng::node;
  hardenHost(config);
  if (config.ping_sockets) {
    allowPingSockets(config);
  } else {
    spdlog::warn("net.ipv4.ping_group_range left as it is (config ping_sockets = false)");
  }
  // Cgroups only beneath the one this daemon was started in (systemd's Delegate=yes).
  auto driver = node::makeCgroupDriver(node::CgroupRoots::ofProcess(::getpid()));
  driver->setUp(::getpid());
  // sliverd's own leaf, not the subtree: the slivers below are bounded by theirs.
  node::Resources own;
  own.mem_limit_bytes = config.daemon_memory_max_bytes;
  own.tasks = config.daemon_tasks_max;
  driver->limitDaemon(own);
  auto storage = node::openSliverStorage(storageOptions(config));
  const node::StorageSpace space = storage->space();
  spdlog::info("cgroup driver {}, sliver storage {} ({} MiB, one sliver at most {} MiB)",
               driver->kind(), storage->kind(), space.total_bytes >> 20,
               storage->maxSliverQuota() >> 20);
  // Network isolation (docs/vnet.md): vnet-bpf's programs at the slivers cgroup,
  // loaded (or taken over from the pinned ones an earlier sliverd left) before
  // any sliver can start; every sliver's fresh cgroup is mapped to its slice
  // before its first process runs.
  plng::sliverd::NetworkIsolation network(plng::sliverd::NetworkIsolation::Options{
      .enabled = config.network_isolation,
      .pin_dir = config.bpfPinDir(),
      .slivers_cgroup = driver->sliversDir(),
      .node_ports = config.nodePorts(),
      .service_allowlist = config.serviceAllowlist(),
      .local_reserved_ports_saved = savedLocalReservedPorts(config),
      .bandwidth = config.bandwidth,
      .uplink = config.uplink,
      .node_limit_bps = config.capacity_net_bps,
      .bandwidth_record = config.paths().state_dir / "bandwidth-uplink",
      .flow_entries = config.flow_map_entries,
  });
  plng::sliverd::Daemon* daemon_ref = nullptr;  // set once the daemon exists
  auto before_launch = [&](const node::SliverConfig& sliver, const std::filesystem::path& cgroup) {
    node::NetworkRights rights;
    if (daemon_ref != nullptr) {
      auto wanted = daemon_ref->desired().lookup(sliver.slice, std::time(nullptr));
      if (wanted && wanted->invalid.empty()) rights = wanted->rights;
    }
    network.beforeLaunch(sliver, rights, cgroup);
  };
  node::LinuxSliverRuntime runtime(config.paths(), *driver, *storage,
                                   node::SliverRuntimeOptions{
                                       .sliver_init = config.sliver_init,
                                       .nofile_soft = config.sliver_nofile_soft,
                                       .nofile_hard = config.sliver_nofile_hard,
                                       .before_launch = before_launch,
                                   });

  // Raw sockets (docs/vnet.md, "Raw sockets"): the broker answers the slivers'
  // raw socket() calls by the slice's right at that moment (CAP_NET_RAW in its
  // capabilities tag); the daemon sees the runtime through RawSocketRuntime,
  // which keeps the broker watching every running sliver.
  std::filesystem::create_directories(config.paths().run_dir);
  // The slice's desired sliver when it may use the node now (not expired, tags valid).
  auto usable = [&daemon_ref](const std::string& slice) {
    std::optional<plng::sliverd::DesiredSliver> wanted;
    if (daemon_ref == nullptr) return wanted;
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    wanted = daemon_ref->desired().lookup(slice, now);
    if (wanted && (wanted->expired(now) || !wanted->invalid.empty())) wanted.reset();
    return wanted;
  };
  // Packet capture (docs/vnet.md, "Packet capture"): the broker makes packet
  // sockets too, for slices with net_capture, each restricted to the slice's
  // own packets by a locked filter that reads vnet-bpf's pinned ports map.
  plng::vnet::CaptureFilters capture_filters(config.bpfPinDir());
  plng::sliverd::RawSocketBroker raw_sockets(plng::sliverd::RawSocketBroker::Options{
      .has_right =
          [&usable](const std::string& slice) {
            auto wanted = usable(slice);
            return wanted && wanted->rights.raw_sockets;
          },
      .in_flight_file = config.paths().rawSocketCall(),
      .may_capture =
          [&usable, &network](const std::string& slice) {
            auto wanted = usable(slice);
            return wanted && wanted->rights.packet_capture &&
                   network.state() == plng::sliverd::NetworkIsolation::State::kEnforced;
          },
      .restrict_capture =
          [&usable, &capture_filters](const std::string& slice, int socket) {
            auto wanted = usable(slice);
            if (!wanted) throw std::runtime_error("slice " + slice + " is not on this node");
            capture_filters.restrict(socket, wanted->config.xid);
          },
  });
  plng::sliverd::RawSocketRuntime brokered_runtime(runtime, *driver, raw_sockets);

  std::optional<plng::sliverd::SliceAccounts> accounts;
  if (config.slice_accounts) {
    accounts.emplace(sliceAccountsConfig(config));
  }
  plng::sliverd::Daemon daemon(plng::sliverd::Daemon::Options{
      .config = config,
      .runtime = &brokered_runtime,
      .cgroup_driver = std::string(driver->kind()),
      .storage_kind = std::string(storage->kind()),
      .storage_bytes = space.total_bytes,
      .disk_ceiling_bytes = storage->maxSliverQuota(),
      .disk_ceiling_why = "the sliver storage's " + plng::sliverd::humanBytes(space.total_bytes) +
                          " less the reserve no single sliver may take, storage_reserve_pct = " +
                          std::to_string(config.storage_reserve_pct) + "%",
      .node_key = std::nullopt,
      .accounts = accounts ? &*accounts : nullptr,
      .clock = {},
      .network = &network,
      .storage = storage.get(),
  });
  // The runtime's before_launch and the broker's thread ask the daemon for rights;
  // the broker stops before the daemon goes.
  daemon_ref = &daemon;
  plng::base::ScopeGuard stop_raw_sockets([&raw_sockets] { raw_sockets.stop(); });
  // The local API identifies callers through the kernel (cgroup of the peer).
  plng::sliverd::LocalService local_service(
      brokered_runtime, daemon.granted(), daemon.rcaps(), config.paths(),
      std::chrono::milliseconds(config.stop_grace_ms), daemon.reports(),
      [&network](std::optional<std::uint32_t> xid,
                 const std::map<std::uint32_t, std::string>& names) {
        return network.ports(xid, names);
      },
      [&network](std::uint32_t xid) { return network.counters(xid); },
      // sliverctl capture: a packet socket of sliverd's own, filtered to the
      // slice's packets like the broker's, streamed by the local API.
      [&network, &capture_filters](std::uint32_t xid, const std::string& interface) {
        if (network.state() != plng::sliverd::NetworkIsolation::State::kEnforced) {
          throw std::runtime_error("network isolation is " + network.describeState() +
                                   ": no port owner is known, so no packet is a slice's");
        }
        int ifindex = 0;
        if (!interface.empty()) {
          ifindex = static_cast<int>(::if_nametoindex(interface.c_str()));
          if (ifindex == 0) plng::base::throwErrno("interface " + interface);
        }
        plng::base::UniqueFd socket(::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!socket) plng::base::throwErrno("packet socket for a capture");
        capture_filters.restrict(socket.get(), xid);
        node::bindPacketSocket(socket.get(), htons(ETH_P_ALL), ifindex);
        return socket;
      },
      [&daemon](const std::string& slice) -> std::optional<planetlab::v1::NetUsage> {
        const plng::sliverd::DailyBudgets* budgets = daemon.budgets();
        if (budgets == nullptr) return std::nullopt;
        auto budget = budgets->slice(slice);
        if (!budget) return std::nullopt;
        return plng::sliverd::DailyBudgets::netUsage(slice, *budget);
      });
  plng::sliverd::PeerIdentifier peers(*driver);
  plng::sliverd::LocalApiServer local_api(
      daemon.io(), config.paths().localSocket(), local_service, peers,
      plng::sliverd::LocalApiLimits{
          .per_caller = config.local_api_connections_per_caller,
          .total = config.local_api_max_connections,
          .operator_reserve = config.local_api_operator_connections,
          .idle_timeout = std::chrono::milliseconds(config.local_api_idle_timeout_ms),
          .frame_timeout = std::chrono::milliseconds(config.local_api_frame_timeout_ms),
      });

  // The watchdogs run on the loop too: a check reads /proc/meminfo, cgroup
  // counters and the storage's figures, and kills (rarely) with a bounded wait.
  plng::sliverd::NodeWatchdogs watchdogs(
      daemon.io(), *driver, *storage,
      plng::sliverd::NodeWatchdogs::Options{
          .paths = config.paths(),
          .memory = config.watchdog,
          .memory_interval = std::chrono::milliseconds(config.watchdog_interval_ms),
          .disk = config.disk_watchdog,
          .disk_interval = std::chrono::milliseconds(config.disk_watchdog_interval_ms),
          .disk_thresholds = {.min_free_pct = config.disk_watchdog_min_free_pct},
      });
  watchdogs.start();

  boost::asio::signal_set signals(daemon.io(), SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    spdlog::info("signal {}: stopping (slivers keep running)", signo);
    watchdogs.stop();
    local_api.stop();
    daemon.stop();
  });

  daemon.start();
  local_api.start();
  spdlog::info("local API on {}", local_api.socketPath().string());
  daemon.run();
  return 0;
}

// Empties this node instance: what an operator runs before retiring a node, and
// what the local planet runs when it stops. Slivers survive a daemon stop by
// design, so taking them down is a deliberate command of its own.
int decommission(const SliverdConfig& config) {
  namespace node = plng::node;
  auto driver = node::makeCgroupDriver(node::CgroupRoots::ofProcess(::getpid()));
  driver->setUp(::getpid());
  const node::StorageOptions storage_options = storageOptions(config);
  int failures = 0;
  {
    auto storage = node::openSliverStorage(storage_options);
    node::LinuxSliverRuntime runtime(config.paths(), *driver, *storage, config.sliver_init);
    for (const auto& sliver : runtime.list()) {
      try {
        runtime.destroy(sliver.config.slice);
        spdlog::info("sliver {} deleted", sliver.config.slice);
      } catch (const std::exception& e) {
        ++failures;
        spdlog::error("sliver {}: {}", sliver.config.slice, e.what());
      }
    }
    if (config.slice_accounts) {
      plng::sliverd::SliceAccounts accounts(sliceAccountsConfig(config));
      for (const auto& account : accounts.listSliceAccounts()) {
        // Only accounts whose home lies in this instance's state: other sliverd
        // instances on the host keep theirs.
        if (account.home.parent_path() != config.paths().state_dir / "slivers") continue;
        accounts.removeSliceAccount(account.slice);
        spdlog::info("slice account {} removed", account.slice);
      }
    }
  }
  try {
    restorePingSockets(config);
  } catch (const std::exception& e) {
    ++failures;
    spdlog::error("net.ipv4.ping_group_range: {}", e.what());
  }
  try {
    plng::sliverd::NetworkIsolation::restoreLocalReservedPorts(savedLocalReservedPorts(config));
  } catch (const std::exception& e) {
    ++failures;
    spdlog::error("net.ipv4.ip_local_reserved_ports: {}", e.what());
  }
  node::unmountSliverStorage(storage_options);
  // The programs stay attached while their links are pinned: unpinning them all
  // detaches the programs and frees every map of the instance.
  try {
    plng::sliverd::NetworkIsolation::removePinned(config.bpfPinDir());
    spdlog::info("network isolation removed ({})", config.bpfPinDir().string());
  } catch (const std::exception& e) {
    ++failures;
    spdlog::error("network isolation: {}", e.what());
  }
  // The uplink's HTB tree, whatever `bandwidth` says now: the one this instance
  // made (its record names the device and the network namespace).
  try {
    spdlog::info("bandwidth: {}", plng::sliverd::NetworkIsolation::removeBandwidth(
                                      config.paths().state_dir / "bandwidth-uplink"));
  } catch (const std::exception& e) {
    ++failures;
    spdlog::error("bandwidth: {}", e.what());
  }
  spdlog::info("node instance in {} decommissioned{}", config.state_dir,
               failures ? " with failures" : "");
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return plng::app::runDaemon<SliverdConfig>(
      kSliverd, plng::sliverd::sliverdConfigTable(), plng::app::commandLineArguments(argc, argv),
      [](const plng::app::Invocation& invocation, const SliverdConfig& config) {
        if (invocation.command == "decommission") return decommission(config);
        return serve(config);
      });
}

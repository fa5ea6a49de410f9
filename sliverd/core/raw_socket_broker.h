// RawSocketBroker: makes raw IPv4/IPv6 sockets for slivers whose slice holds
// the right, and packet sockets restricted to the slice's own packets for
// slivers whose slice may capture, answering the socket() calls their seccomp
// filters send to user space (docs/vnet.md, "Raw sockets", "Packet capture").
//
// For each call it reads (node/raw_socket.h): it asks `has_right` for the
// slice's right *now* (so a grant or a revocation applies to the very next
// socket), refuses with EPERM without it, with EPROTONOSUPPORT for a protocol a
// slice may not use raw (anything but ICMP, ICMPv6, TCP, UDP and IPPROTO_RAW:
// egress policing passes nothing else), checks that the call still waits, makes
// the socket in the sliver's unified cgroup (so the cgroup BPF programs police
// it as the slice's) and gives it to the caller as socket()'s return value.
//
// It runs on a thread of its own: SECCOMP_IOCTL_NOTIF_RECV blocks when another
// holder of a listener took the call first (root inside a sliver can copy
// sliver-init's descriptors), and no sliver may stall the daemon's event loop.
// Each receive is bounded by a timer signal to that thread.
//
// Across a restart: a socket() call waits while no sliverd holds a listener
// (sliver-init keeps the sliver's open; ssh logins are its children, under the
// same filter). The kernel never hands a call it handed out once again, so a
// broker killed after reading a call and before answering it would leave its
// caller waiting forever. Each listener has a slot in `in_flight_file` where
// the last call read from it is recorded before the broker acts on it; the
// next broker, when it watches that listener again, answers that call if it
// still waits, and otherwise looks for a call read after it but killed before
// it was written down: notification ids of a listener are consecutive, the
// kernel tells which of the next few waits for an answer, and the sliver's
// tasks blocked in socket() (/proc/<tid>/syscall) whose calls it cannot read
// again tell what was asked (docs/vnet.md, "Raw sockets").
#pragma once

#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "node/raw_socket.h"

namespace plng::sliverd {

class RawSocketBroker {
 public:
  // Whether `slice` may have raw sockets, now. Called on the broker's thread
  // for every call; an exception counts as "no".
  using RightCheck = std::function<bool(const std::string& slice)>;

  // Restricts a packet socket made for `slice` to the slice's own packets:
  // attaches and locks its capture filter (vnet-bpf/capture_filter.h). Throws
  // when it cannot; the call is then refused with EPERM.
  using CaptureRestriction = std::function<void(const std::string& slice, int socket)>;

  struct Options {
    RightCheck has_right;
    // Where the call being handled is recorded (see above); empty = nowhere.
    std::filesystem::path in_flight_file;
    // How long one receive may block before it is interrupted.
    std::chrono::milliseconds receive_timeout{200};
    // Packet sockets (docs/vnet.md, "Packet capture"): whether `slice` may
    // capture (net_capture), asked at every call as has_right is, and how its
    // sockets are restricted. Without both, every packet socket is refused.
    RightCheck may_capture{};
    CaptureRestriction restrict_capture{};
  };

  struct Counters {
    std::uint64_t granted = 0;
    std::uint64_t refused = 0;  // no right, or a protocol a slice may not use
    std::uint64_t failed = 0;   // the socket could not be made (its errno answered)
  };

  explicit RawSocketBroker(Options options);
  // stop().
  ~RawSocketBroker();
  RawSocketBroker(const RawSocketBroker&) = delete;
  RawSocketBroker& operator=(const RawSocketBroker&) = delete;

  // Stops the thread and closes every listener copy: calls then wait for the
  // next broker (the listeners' holders keep them). Idempotent; not from the
  // broker's thread (has_right must not call it).
  void stop();

  // Answers the calls arriving at `listener`, a copy of the one process
  // `holder` keeps (sliver-init), for the
  // sliver `slice`, making sockets in `cgroup_dir` (its unified cgroup
  // directory). A listener of a holder already watched replaces it. A listener
  // whose filter no task runs under any more is dropped by itself.
  void watch(const std::string& slice, pid_t holder, base::UniqueFd listener,
             base::UniqueFd cgroup_dir);
  // Stops watching every listener of `slice` (a stopped or deleted sliver).
  void forget(const std::string& slice);
  // The holders watched for `slice` (the thread may still be adding them).
  std::vector<pid_t> holders(const std::string& slice) const;
  Counters counters(const std::string& slice) const;

 private:
  struct Listener;
  struct Sliver;
  struct Command;

  void run();
  void applyCommands();
  bool addListener(Sliver& sliver, pid_t holder, base::UniqueFd fd);
  void handleReadable(Listener& listener);
  void serve(Listener& listener, const node::SocketCall& call);
  // Why `call` (a raw socket) may not be made: an errno and a reason; 0 if it may.
  int rawRefusal(const std::string& slice, const node::SocketCall& call, std::string& why);
  int packetRefusal(const std::string& slice, const node::SocketCall& call, std::string& why);
  // The socket for `call`, made in the sliver's cgroup. Throws SysError.
  base::UniqueFd makeSocket(const Sliver& sliver, const node::SocketCall& call);
  // Reads the next call, bounded by the receive timer; nullopt: none after all.
  std::optional<node::SocketCall> receive(Listener& listener);
  // Stops watching `listener` and frees its record slot (the sliver or login is
  // gone; a broker that stops keeps its slots for the next).
  void unwatch(Listener& listener);

  // The in-flight records (see above): one slot of kInFlightRecordSize bytes
  // per listener, read when the broker starts.
  struct Record {
    std::string slice;
    pid_t holder = 0;
    node::SocketCall call;
  };
  void loadRecords();
  // A free slot for `listener`, or the one whose record names its slice and
  // holder (then returned, for recover()).
  std::optional<Record> claimSlot(Listener& listener);
  void writeSlot(int slot, const std::string& text);
  void recordInFlight(const Listener& listener, const node::SocketCall& call);
  // Answers what the previous broker left unanswered on `listener` (see above).
  void recover(Listener& listener, const Record& record);
  void recoverUnrecorded(Listener& listener, std::uint64_t id);

  void logRefusal(Sliver& sliver, const std::string& what);
  void count(const std::string& slice, std::uint64_t Counters::*counter, int delta);

  Options options_;
  base::UniqueFd epoll_;
  base::UniqueFd wake_;
  base::UniqueFd in_flight_;
  mutable std::mutex mutex_;  // commands_, counters_ and holders_
  std::vector<Command> commands_;
  std::map<std::string, Counters> counters_;
  std::map<std::string, std::vector<pid_t>> holders_;
  // The thread's own state.
  std::map<std::string, std::unique_ptr<Sliver>> slivers_;
  std::vector<std::optional<Record>> records_;  // read at start, not yet claimed
  std::vector<bool> slot_used_;
  bool have_timer_ = false;
  timer_t timer_{};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  pid_t thread_tid_ = 0;
};

}  // namespace plng::sliverd

#include "sliverd/core/raw_socket_broker.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <sstream>

#include "base/eintr.h"
#include "base/error.h"
#include "base/unix_socket.h"

namespace plng::sliverd {
namespace {

using base::UniqueFd;
using Clock = std::chrono::steady_clock;

// Interrupts a receive that blocks (another holder took the call first). A
// real-time signal nothing else in sliverd uses, with a handler that does
// nothing and no SA_RESTART, sent to the broker's thread alone.
int interruptSignal() { return SIGRTMIN + 7; }
void ignoreInterrupt(int) {}

// The kernel's SOCK_TYPE_MASK: the type without its flags.
constexpr int kSocketTypeMask = 0xf;
constexpr auto kRefusalLogInterval = std::chrono::seconds(10);
constexpr std::size_t kInFlightRecordSize = 160;
// How many notification ids after a listener's recorded one are asked whether
// they wait: the ids between belong to calls whose callers were interrupted
// before any broker read them, hardly ever more than a few.
constexpr std::uint64_t kUnrecordedProbe = 64;
// How many waiting calls recovery reads before it decides (see recoverUnrecorded).
constexpr int kRecoveryDrain = 256;

// What the sliver's filter hands to the broker (node/security.cpp).
bool brokered(const node::SocketCall& call) {
  const int type = call.type & kSocketTypeMask;
  if (call.domain == AF_INET || call.domain == AF_INET6) return type == SOCK_RAW;
  return call.domain == AF_PACKET;
}

bool sameRequest(const node::SocketCall& a, const node::SocketCall& b) {
  return a.domain == b.domain && a.type == b.type && a.protocol == b.protocol;
}

bool protocolAllowed(int domain, int protocol) {
  switch (protocol) {
    case IPPROTO_TCP:
    case IPPROTO_UDP:
    case IPPROTO_RAW:
      return true;
    case IPPROTO_ICMP:
      return domain == AF_INET;
    case IPPROTO_ICMPV6:
      return domain == AF_INET6;
    default:
      return false;
  }
}

const char* familyName(int domain) {
  switch (domain) {
    case AF_INET:
      return "AF_INET";
    case AF_INET6:
      return "AF_INET6";
    case AF_PACKET:
      return "AF_PACKET";
    default:
      return "?";
  }
}

const char* typeName(int type) {
  switch (type & kSocketTypeMask) {
    case SOCK_RAW:
      return "SOCK_RAW";
    case SOCK_DGRAM:
      return "SOCK_DGRAM";
    case SOCK_PACKET:
      return "SOCK_PACKET";
    default:
      return "?";
  }
}

std::string describeCall(const node::SocketCall& call) {
  std::ostringstream out;
  out << "socket(" << familyName(call.domain) << ", " << typeName(call.type);
  if (call.type & SOCK_NONBLOCK) out << "|SOCK_NONBLOCK";
  if (call.type & SOCK_CLOEXEC) out << "|SOCK_CLOEXEC";
  out << ", " << call.protocol << ") of pid " << call.pid;
  return out.str();
}

}  // namespace

struct RawSocketBroker::Sliver {
  std::string slice;
  UniqueFd cgroup;
  std::vector<std::unique_ptr<Listener>> listeners;
  Clock::time_point last_refusal_log{};
  std::uint64_t refusals_not_logged = 0;
};

struct RawSocketBroker::Listener {
  Sliver* sliver = nullptr;
  pid_t holder = 0;
  UniqueFd fd;
  int slot = -1;  // in the in-flight file; -1: none
};

struct RawSocketBroker::Command {
  bool watch = true;  // false: forget
  std::string slice;
  pid_t holder = 0;
  UniqueFd listener;
  UniqueFd cgroup;
};

RawSocketBroker::RawSocketBroker(Options options) : options_(std::move(options)) {
  static std::once_flag handler_installed;
  std::call_once(handler_installed, [] {
    struct sigaction action {};
    action.sa_handler = ignoreInterrupt;
    sigemptyset(&action.sa_mask);
    ::sigaction(interruptSignal(), &action, nullptr);
  });
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) base::throwErrno("epoll_create1");
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) base::throwErrno("eventfd");
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.ptr = nullptr;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &event) != 0) {
    base::throwErrno("epoll_ctl");
  }
  if (!options_.in_flight_file.empty()) {
    in_flight_.reset(::open(options_.in_flight_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!in_flight_) base::throwErrno("open " + options_.in_flight_file.string());
    loadRecords();
  }
  thread_ = std::thread([this] { run(); });
}

RawSocketBroker::~RawSocketBroker() { stop(); }

void RawSocketBroker::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  const std::uint64_t one = 1;
  ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
  (void)ignored;
  thread_.join();
  slivers_.clear();
}

void RawSocketBroker::watch(const std::string& slice, pid_t holder, UniqueFd listener,
                            UniqueFd cgroup_dir) {
  {
    std::lock_guard lock(mutex_);
    // Listed at once (the thread adds it soon): list() must not adopt twice.
    auto& holders = holders_[slice];
    if (std::find(holders.begin(), holders.end(), holder) == holders.end()) {
      holders.push_back(holder);
    }
    commands_.push_back(Command{true, slice, holder, std::move(listener), std::move(cgroup_dir)});
  }
  const std::uint64_t one = 1;
  ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
  (void)ignored;
}

void RawSocketBroker::forget(const std::string& slice) {
  {
    std::lock_guard lock(mutex_);
    holders_.erase(slice);
    commands_.push_back(Command{false, slice, 0, {}, {}});
  }
  const std::uint64_t one = 1;
  ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
  (void)ignored;
}

std::vector<pid_t> RawSocketBroker::holders(const std::string& slice) const {
  std::lock_guard lock(mutex_);
  auto it = holders_.find(slice);
  return it == holders_.end() ? std::vector<pid_t>{} : it->second;
}

RawSocketBroker::Counters RawSocketBroker::counters(const std::string& slice) const {
  std::lock_guard lock(mutex_);
  auto it = counters_.find(slice);
  return it == counters_.end() ? Counters{} : it->second;
}

void RawSocketBroker::run() {
  thread_tid_ = static_cast<pid_t>(::gettid());
  sigset_t interrupt;
  sigemptyset(&interrupt);
  sigaddset(&interrupt, interruptSignal());
  ::pthread_sigmask(SIG_UNBLOCK, &interrupt, nullptr);
  sigevent event{};
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = interruptSignal();
  event._sigev_un._tid = thread_tid_;
  have_timer_ = ::timer_create(CLOCK_MONOTONIC, &event, &timer_) == 0;
  if (!have_timer_) {
    spdlog::warn("raw socket broker: timer_create: {} (a stolen call may stall the broker)",
                 std::strerror(errno));
  }
  epoll_event events[16];
  while (!stopping_) {
    const int n = ::epoll_wait(epoll_.get(), events, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("raw socket broker: epoll_wait: {}", std::strerror(errno));
      break;
    }
    for (int i = 0; i < n && !stopping_; ++i) {
      if (events[i].data.ptr == nullptr) {
        std::uint64_t count = 0;
        ssize_t ignored = ::read(wake_.get(), &count, sizeof count);
        (void)ignored;
        applyCommands();
        // Listeners may have gone with the commands: this batch is stale.
        break;
      }
      auto* listener = static_cast<Listener*>(events[i].data.ptr);
      if (events[i].events & EPOLLIN) {
        handleReadable(*listener);
      } else if (events[i].events & (EPOLLHUP | EPOLLERR)) {
        // No task runs under the filter any more (the sliver or login ended).
        Sliver& sliver = *listener->sliver;
        unwatch(*listener);
        spdlog::debug("sliver {}: seccomp listener of pid {} closed", sliver.slice,
                      listener->holder);
        const pid_t holder = listener->holder;
        std::erase_if(sliver.listeners, [&](const auto& l) { return l.get() == listener; });
        std::lock_guard lock(mutex_);
        std::erase(holders_[sliver.slice], holder);
        break;
      }
    }
  }
  if (have_timer_) ::timer_delete(timer_);
  have_timer_ = false;
}

std::optional<node::SocketCall> RawSocketBroker::receive(Listener& listener) {
  // Only the receive is bounded: an interrupted answer is retried (node/raw_socket.h).
  const auto timeout_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(options_.receive_timeout).count();
  itimerspec arm{};
  arm.it_value.tv_sec = timeout_ns / 1000000000;
  arm.it_value.tv_nsec = timeout_ns % 1000000000;
  if (have_timer_) ::timer_settime(timer_, 0, &arm, nullptr);
  std::optional<node::SocketCall> call;
  try {
    call = node::receiveSocketCall(listener.fd.get());
  } catch (const base::SysError& e) {
    spdlog::error("sliver {}: {}", listener.sliver->slice, e.what());
  }
  itimerspec disarm{};
  if (have_timer_) ::timer_settime(timer_, 0, &disarm, nullptr);
  return call;
}

void RawSocketBroker::unwatch(Listener& listener) {
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, listener.fd.get(), nullptr);
  if (listener.slot >= 0) {
    writeSlot(listener.slot, {});
    slot_used_[static_cast<std::size_t>(listener.slot)] = false;
    listener.slot = -1;
  }
}

void RawSocketBroker::applyCommands() {
  std::vector<Command> commands;
  {
    std::lock_guard lock(mutex_);
    commands.swap(commands_);
  }
  for (Command& command : commands) {
    auto it = slivers_.find(command.slice);
    if (!command.watch) {
      if (it == slivers_.end()) continue;
      for (auto& listener : it->second->listeners) unwatch(*listener);
      slivers_.erase(it);
      continue;
    }
    if (it == slivers_.end()) {
      it = slivers_.emplace(command.slice, std::make_unique<Sliver>()).first;
      it->second->slice = command.slice;
    }
    Sliver& sliver = *it->second;
    // A sliver restarted since: its cgroup was made afresh.
    sliver.cgroup = std::move(command.cgroup);
    addListener(sliver, command.holder, std::move(command.listener));
  }
}

bool RawSocketBroker::addListener(Sliver& sliver, pid_t holder, UniqueFd fd) {
  for (const auto& existing : sliver.listeners) {
    // A copy of a listener already watched (root inside may hold copies of
    // sliver-init's): a second watcher would only ever find the call taken.
    if (existing->holder != holder && node::sameOpenFile(existing->fd.get(), fd.get())) {
      return true;
    }
  }
  // Watched again (a reconcile adopting it): the same filter, its slot kept.
  int kept_slot = -1;
  std::erase_if(sliver.listeners, [&](const auto& l) {
    if (l->holder != holder) return false;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, l->fd.get(), nullptr);
    kept_slot = l->slot;
    return true;
  });
  auto listener = std::make_unique<Listener>();
  listener->sliver = &sliver;
  listener->holder = holder;
  listener->fd = std::move(fd);
  listener->slot = kept_slot;
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.ptr = listener.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener->fd.get(), &event) != 0) {
    spdlog::error("sliver {}: cannot watch the seccomp listener of pid {}: {}", sliver.slice,
                  holder, std::strerror(errno));
    return false;
  }
  if (listener->slot < 0) {
    if (auto record = claimSlot(*listener)) recover(*listener, *record);
  }
  sliver.listeners.push_back(std::move(listener));
  std::lock_guard lock(mutex_);
  auto& holders = holders_[sliver.slice];
  if (std::find(holders.begin(), holders.end(), holder) == holders.end()) {
    holders.push_back(holder);
  }
  return true;
}

void RawSocketBroker::handleReadable(Listener& listener) {
  const std::optional<node::SocketCall> call = receive(listener);
  if (!call) return;
  recordInFlight(listener, *call);
  serve(listener, *call);
}

int RawSocketBroker::rawRefusal(const std::string& slice, const node::SocketCall& call,
                                std::string& why) {
  bool right = false;
  try {
    right = options_.has_right && options_.has_right(slice);
  } catch (const std::exception& e) {
    spdlog::warn("sliver {}: cannot tell its raw socket right: {}", slice, e.what());
  }
  if (!right) {
    why = "the slice has no raw socket right";
    return EPERM;
  }
  if ((call.type & kSocketTypeMask) != SOCK_RAW ||
      (call.type & ~(kSocketTypeMask | SOCK_CLOEXEC | SOCK_NONBLOCK)) != 0) {
    why = "bad type flags";
    return EINVAL;
  }
  if (!protocolAllowed(call.domain, call.protocol)) {
    why = "raw sockets are for ICMP, ICMPv6, TCP, UDP and IPPROTO_RAW only";
    return EPROTONOSUPPORT;
  }
  return 0;
}

int RawSocketBroker::packetRefusal(const std::string& slice, const node::SocketCall& call,
                                   std::string& why) {
  bool right = false;
  try {
    right = options_.may_capture && options_.restrict_capture && options_.may_capture(slice);
  } catch (const std::exception& e) {
    spdlog::warn("sliver {}: cannot tell its capture right: {}", slice, e.what());
  }
  if (!right) {
    why = "the slice may not capture packets (net_capture)";
    return EPERM;
  }
  const int type = call.type & kSocketTypeMask;
  if (type == SOCK_PACKET) {
    why = "SOCK_PACKET is obsolete (use SOCK_RAW or SOCK_DGRAM)";
    return EPERM;
  }
  if ((type != SOCK_RAW && type != SOCK_DGRAM) ||
      (call.type & ~(kSocketTypeMask | SOCK_CLOEXEC | SOCK_NONBLOCK)) != 0) {
    why = "bad type flags";
    return EINVAL;
  }
  if (call.protocol < 0 || call.protocol > 0xffff) {
    why = "not an ethertype";
    return EINVAL;
  }
  return 0;
}

UniqueFd RawSocketBroker::makeSocket(const Sliver& sliver, const node::SocketCall& call) {
  const int type = call.type & ~SOCK_CLOEXEC;
  if (call.domain != AF_PACKET) {
    return node::socketInCgroup(sliver.cgroup.get(), call.domain, type, call.protocol);
  }
  // Made hooked to no device (protocol 0), filtered and locked, and only then
  // bound to the protocol asked for: not one packet is queued unfiltered.
  UniqueFd socket = node::socketInCgroup(sliver.cgroup.get(), AF_PACKET, type, 0);
  try {
    options_.restrict_capture(sliver.slice, socket.get());
  } catch (const std::exception& e) {
    // Whatever went wrong (no policy loaded, a program refused), the slice
    // gets no socket: it is refused as without the right, and sliverd logs why.
    throw base::SysError(EPERM, std::string("the slice's capture filter: ") + e.what());
  }
  if (call.protocol != 0) {
    node::bindPacketSocket(socket.get(), static_cast<std::uint16_t>(call.protocol));
  }
  return socket;
}

void RawSocketBroker::serve(Listener& listener, const node::SocketCall& call) {
  Sliver& sliver = *listener.sliver;
  const int fd = listener.fd.get();
  std::string why;
  int refusal = 0;
  if (call.domain == AF_INET || call.domain == AF_INET6) {
    refusal = rawRefusal(sliver.slice, call, why);
  } else if (call.domain == AF_PACKET) {
    refusal = packetRefusal(sliver.slice, call, why);
  } else {
    refusal = EAFNOSUPPORT;  // not what the filter sends; never trusted blindly
    why = "not a family the broker makes";
  }
  // Each count is taken before the answer goes out (and taken back when it
  // does not): whoever sees the answer sees it counted.
  if (refusal != 0) {
    count(sliver.slice, &Counters::refused, +1);
    if (node::refuseSocketCall(fd, call.id, refusal) == 0) {
      logRefusal(sliver, describeCall(call) + " refused: " + why);
    } else {
      count(sliver.slice, &Counters::refused, -1);
    }
    return;
  }
  // The caller may have been killed since the call was read, and its pid
  // reused: act only for a call that still waits.
  if (!node::socketCallPending(fd, call.id)) return;
  UniqueFd socket;
  try {
    socket = makeSocket(sliver, call);
  } catch (const base::SysError& e) {
    count(sliver.slice, &Counters::failed, +1);
    node::refuseSocketCall(fd, call.id, e.err());
    logRefusal(sliver, describeCall(call) + " failed: " + e.what());
    return;
  }
  count(sliver.slice, &Counters::granted, +1);
  const int given = node::answerSocketCall(fd, call.id, socket.get(), call.type & SOCK_CLOEXEC);
  if (given < 0) {
    count(sliver.slice, &Counters::granted, -1);
    if (given != -ENOENT) {
      count(sliver.slice, &Counters::failed, +1);
      node::refuseSocketCall(fd, call.id, -given);
    }
    spdlog::debug("sliver {}: {} not answered: {}", sliver.slice, describeCall(call),
                  std::strerror(-given));
    return;
  }
  spdlog::debug("sliver {}: {} granted as its fd {}", sliver.slice, describeCall(call), given);
}

void RawSocketBroker::count(const std::string& slice, std::uint64_t Counters::*counter, int delta) {
  std::lock_guard lock(mutex_);
  counters_[slice].*counter += static_cast<std::uint64_t>(delta);
}

void RawSocketBroker::logRefusal(Sliver& sliver, const std::string& what) {
  const auto now = Clock::now();
  if (now - sliver.last_refusal_log < kRefusalLogInterval) {
    ++sliver.refusals_not_logged;
    return;
  }
  if (sliver.refusals_not_logged > 0) {
    spdlog::info("sliver {}: {} ({} more refusals not logged in the last {} s)", sliver.slice, what,
                 sliver.refusals_not_logged, kRefusalLogInterval.count());
  } else {
    spdlog::info("sliver {}: {}", sliver.slice, what);
  }
  sliver.last_refusal_log = now;
  sliver.refusals_not_logged = 0;
}

void RawSocketBroker::loadRecords() {
  struct stat info {};
  if (::fstat(in_flight_.get(), &info) != 0)
    base::throwErrno("fstat " + options_.in_flight_file.string());
  const std::size_t slots = static_cast<std::size_t>(info.st_size) / kInFlightRecordSize;
  records_.assign(slots, std::nullopt);
  slot_used_.assign(slots, false);
  for (std::size_t slot = 0; slot < slots; ++slot) {
    char text[kInFlightRecordSize];
    const ssize_t n = ::pread(in_flight_.get(), text, sizeof text,
                              static_cast<off_t>(slot * kInFlightRecordSize));
    if (n <= 0) break;
    std::istringstream in(std::string(text, static_cast<std::size_t>(n)));
    Record record;
    if (!(in >> record.slice >> record.holder >> record.call.id >> record.call.domain >>
          record.call.type >> record.call.protocol >> record.call.pid)) {
      continue;
    }
    // A holder that is gone took its listener with it.
    if (record.holder <= 0 || (::kill(record.holder, 0) != 0 && errno == ESRCH)) {
      writeSlot(static_cast<int>(slot), {});
      continue;
    }
    records_[slot] = std::move(record);
    slot_used_[slot] = true;
  }
}

std::optional<RawSocketBroker::Record> RawSocketBroker::claimSlot(Listener& listener) {
  if (!in_flight_) return std::nullopt;
  for (std::size_t slot = 0; slot < records_.size(); ++slot) {
    auto& record = records_[slot];
    if (record && record->slice == listener.sliver->slice && record->holder == listener.holder) {
      listener.slot = static_cast<int>(slot);
      std::optional<Record> found = std::move(record);
      record.reset();
      return found;
    }
  }
  auto free = std::find(slot_used_.begin(), slot_used_.end(), false);
  if (free == slot_used_.end()) {
    slot_used_.push_back(false);
    records_.emplace_back();
    free = slot_used_.end() - 1;
  }
  *free = true;
  listener.slot = static_cast<int>(free - slot_used_.begin());
  return std::nullopt;
}

void RawSocketBroker::writeSlot(int slot, const std::string& text) {
  if (!in_flight_ || slot < 0) return;
  char record[kInFlightRecordSize];
  std::memset(record, ' ', sizeof record);
  std::memcpy(record, text.data(), std::min(text.size(), sizeof record - 1));
  record[sizeof record - 1] = '\n';
  ssize_t ignored =
      ::pwrite(in_flight_.get(), record, sizeof record,
               static_cast<off_t>(static_cast<std::size_t>(slot) * kInFlightRecordSize));
  (void)ignored;
}

void RawSocketBroker::recordInFlight(const Listener& listener, const node::SocketCall& call) {
  if (!in_flight_ || listener.slot < 0) return;
  char text[kInFlightRecordSize];
  const int n =
      std::snprintf(text, sizeof text, "%s %d %llu %d %d %d %d", listener.sliver->slice.c_str(),
                    static_cast<int>(listener.holder), static_cast<unsigned long long>(call.id),
                    call.domain, call.type, call.protocol, static_cast<int>(call.pid));
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof text) return;
  writeSlot(listener.slot, std::string(text, static_cast<std::size_t>(n)));
}

void RawSocketBroker::recover(Listener& listener, const Record& record) {
  const int fd = listener.fd.get();
  // Read by the previous broker and never answered: its caller still waits
  // (ids of a filter never repeat, so a valid one is that very call).
  if (node::socketCallPending(fd, record.call.id)) {
    spdlog::info("sliver {}: answering {} left unanswered by the previous sliverd", record.slice,
                 describeCall(record.call));
    serve(listener, record.call);
    return;
  }
  // Answered; then one read after it may have been lost before it was written
  // down. Ids of one filter are consecutive, and only a call that was read
  // waits here (one not read yet is not "pending").
  for (std::uint64_t step = 1; step <= kUnrecordedProbe; ++step) {
    if (node::socketCallPending(fd, record.call.id + step)) {
      recoverUnrecorded(listener, record.call.id + step);
      return;
    }
  }
}

void RawSocketBroker::recoverUnrecorded(Listener& listener, std::uint64_t id) {
  Sliver& sliver = *listener.sliver;
  const int fd = listener.fd.get();
  // Who waits in a brokered socket(): the lost call's caller, and callers whose
  // calls were not read yet.
  std::vector<node::SocketCall> waiting;
  try {
    waiting = node::socketCallsWaitingIn(sliver.cgroup.get());
  } catch (const base::SysError& e) {
    spdlog::warn("sliver {}: cannot list its tasks: {}", sliver.slice, e.what());
  }
  std::erase_if(waiting, [](const node::SocketCall& call) { return !brokered(call); });
  // Every call not read yet is read and answered now: its caller is not the one.
  std::vector<pid_t> answered;
  for (int n = 0; n < kRecoveryDrain; ++n) {
    pollfd ready{fd, POLLIN, 0};
    if (::poll(&ready, 1, 0) <= 0 || !(ready.revents & POLLIN)) break;
    const std::optional<node::SocketCall> call = receive(listener);
    if (!call) break;
    answered.push_back(call->pid);
    recordInFlight(listener, *call);
    serve(listener, *call);
  }
  std::vector<node::SocketCall> candidates;
  for (const node::SocketCall& call : waiting) {
    if (std::find(answered.begin(), answered.end(), call.pid) != answered.end()) continue;
    const auto still = node::waitingSocketCall(call.pid);
    if (still && sameRequest(*still, call)) candidates.push_back(call);
  }
  if (!node::socketCallPending(fd, id)) return;
  const bool one_request =
      !candidates.empty() &&
      std::all_of(candidates.begin(), candidates.end(), [&](const node::SocketCall& call) {
        return sameRequest(call, candidates.front());
      });
  if (!one_request) {
    // Which task asked what cannot be told: a transient failure, never a
    // socket of the wrong kind.
    spdlog::warn(
        "sliver {}: a socket() call read by the previous sliverd and not recorded cannot "
        "be told apart ({} candidates): failed with ENOBUFS",
        sliver.slice, candidates.size());
    node::refuseSocketCall(fd, id, ENOBUFS);
    return;
  }
  node::SocketCall call = candidates.front();
  call.id = id;
  if (candidates.size() > 1) call.pid = 0;
  spdlog::info("sliver {}: answering {} read by the previous sliverd and not recorded",
               sliver.slice, describeCall(call));
  recordInFlight(listener, call);
  serve(listener, call);
}

}  // namespace plng::sliverd

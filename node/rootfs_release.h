#pragma once
// The last reference to a stopped sliver's root filesystem, dropped on a thread
// of its own.
//
// A sliver's root is an overlay whose upper layer lives on the node's storage
// volume. The overlay's final unmount syncs that whole upper filesystem
// (overlayfs' sync_fs: on btrfs a transaction commit, about 2.5 ms of a 4.7 ms
// stop on the development VM, docs/benchmarks.md "sliver_bench"). Without a
// reference of ours, that unmount is the last step of sliver-init's exit, and
// stop() waits for it. LinuxSliverRuntime pins the root before it signals
// sliver-init and hands the pin here once the sliver is down: the sync still
// happens, moments later, off the caller's path.
//
// A pin of a sliver must be gone before its next overlay is mounted over the
// same upper directory (two overlays over one upper layer are undefined
// behaviour; overlayfs warns, and with index=on refuses): start() calls
// waitFor() first.

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "base/fd.h"

namespace plng::node {

class RootfsReleaser {
 public:
  RootfsReleaser() = default;
  RootfsReleaser(const RootfsReleaser&) = delete;
  RootfsReleaser& operator=(const RootfsReleaser&) = delete;
  // Drops every pin still queued (each one's sync happens here), then joins.
  ~RootfsReleaser();

  // Queues `pin` (a descriptor holding the sliver's root mount) to be closed.
  void release(const std::string& sliver, base::UniqueFd pin);
  // Returns once no pin of `sliver` is queued or being closed.
  void waitFor(const std::string& sliver);

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable wake_;  // the thread: something queued, or stopping
  std::condition_variable done_;  // waitFor: a pin was closed
  std::deque<std::pair<std::string, base::UniqueFd>> queue_;
  std::map<std::string, int> held_;  // pins per sliver, queued or closing
  bool stopping_ = false;
  std::thread thread_;
};

// An O_PATH descriptor of the root directory of process `pid`, the sliver's init
// behind `pidfd`; empty when that process is gone (or was never that pid's).
// Holding it keeps the sliver's root mount, and so its overlay, alive after the
// sliver's mount namespace is torn down.
base::UniqueFd pinRootOf(pid_t pid, int pidfd);

}  // namespace plng::node

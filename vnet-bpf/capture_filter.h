// The kernel half of a slice's packet capture (docs/vnet.md, "Packet capture"):
// the socket filter (capture/capture.bpf.c) that restricts a packet socket to
// the slice's own packets — those whose port or echo id the slice owns in the
// `ports` map NetworkPolicy pinned — attached and locked so that whoever holds
// the socket can neither detach nor replace it.
//
// sliverd makes every packet socket a slice gets (its raw socket broker for a
// slice with the net_capture tag; the local API's capture for any slice) with
// protocol 0, which hooks it to no device, attaches the slice's filter, and
// only then binds it to the protocol asked for (node::bindPacketSocket): not
// one packet is queued on it unfiltered.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>

#include "base/fd.h"

namespace plng::vnet {

// Loads slice `xid`'s capture program: a BPF_PROG_TYPE_SOCKET_FILTER reading
// the `ports` map pinned under `pin_dir` (NetworkPolicy's directory). Throws
// SysError (ENOENT: no policy pinned there, so no owner is known) or
// BpfLoadError (the verifier's log).
base::UniqueFd loadCaptureProgram(const std::filesystem::path& pin_dir, std::uint32_t xid);

// Attaches `program` to the socket `socket` (SO_ATTACH_BPF) and locks it
// (SO_LOCK_FILTER): from then on SO_ATTACH_FILTER, SO_ATTACH_BPF and
// SO_DETACH_FILTER on it fail with EPERM. Throws SysError.
void attachLockedFilter(int socket, int program);

// Every slice's capture program, loaded at its first use and kept: a load
// takes a few milliseconds, a socket filter nothing per socket. Thread-safe.
class CaptureFilters {
 public:
  explicit CaptureFilters(std::filesystem::path pin_dir) : pin_dir_(std::move(pin_dir)) {}

  // attachLockedFilter(socket, <slice xid's program>), the program loaded
  // first if need be. Throws as loadCaptureProgram and attachLockedFilter.
  void restrict(int socket, std::uint32_t xid);
  // Drops the program of a slice that is gone (sockets holding it keep it).
  void forget(std::uint32_t xid);

 private:
  std::filesystem::path pin_dir_;
  std::mutex mutex_;
  std::map<std::uint32_t, base::UniqueFd> programs_;
};

}  // namespace plng::vnet

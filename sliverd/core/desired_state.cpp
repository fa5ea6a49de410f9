#include "sliverd/core/desired_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <set>
#include <stdexcept>

#include "base/error.h"
#include "base/file.h"
#include "proto/node_protocol.h"
#include "sliverd/login/slice_accounts.h"

namespace plng::sliverd {

namespace fs = std::filesystem;
namespace pb = planetlab::v1;

namespace {

constexpr const char* kPlcStateFile = "plc-state";
constexpr const char* kTicketsDir = "tickets";

// Ticket ids become file names: only [0-9A-Za-z_-], never "." or "/".
bool validTicketId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

std::vector<std::string> sortedUnique(std::vector<std::string> keys) {
  for (auto& k : keys) {
    while (!k.empty() && (k.back() == '\n' || k.back() == '\r' || k.back() == ' ')) k.pop_back();
  }
  std::erase_if(
      keys, [](const std::string& k) { return k.empty() || k.find('\n') != std::string::npos; });
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

}  // namespace

void writeAuthorizedKeys(const plng::node::NodePaths& paths, const std::string& slice,
                         const std::vector<std::string>& keys) {
  std::string content;
  for (const auto& key : keys) content += key + "\n";
  if (base::readFileIfExists(paths.authorizedKeys(slice)) == content) return;
  // writeSliceAuthorizedKeys creates only the sliver's own directory.
  fs::create_directories(paths.sliverDir(slice).parent_path());
  writeSliceAuthorizedKeys(paths, slice, keys);
}

DesiredSliver desiredFromTags(const std::string& slice, std::uint32_t xid,
                              const std::map<std::string, std::string>& tags,
                              std::vector<std::string> keys, std::int64_t expires_at,
                              std::string source) {
  DesiredSliver out;
  out.config.slice = slice;
  out.config.xid = xid;
  try {
    out.config = plng::node::sliverConfigFromTags(slice, xid, tags);
    out.network = plng::node::networkLimitsFromTags(tags);
    out.rights = plng::node::networkRightsFromTags(tags);
    if (auto it = tags.find("proper"); it != tags.end()) {
      out.proper = plng::node::properFromTag(it->second);
    }
  } catch (const std::exception& e) {
    out.invalid = e.what();
  }
  out.keys = sortedUnique(std::move(keys));
  out.tags = tags;
  out.expires_at = expires_at;
  out.source = std::move(source);
  return out;
}

std::vector<std::string> DesiredState::blacklist() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> prefixes;
  prefixes.reserve(plc_state_.blacklist_size());
  for (const auto& entry : plc_state_.blacklist()) prefixes.push_back(entry.prefix());
  return prefixes;
}

std::map<std::string, std::string> DesiredState::nodeTags() const {
  std::lock_guard lock(mutex_);
  return {plc_state_.node_tags().begin(), plc_state_.node_tags().end()};
}

DesiredState::DesiredState(plng::node::NodePaths paths, std::string hostname)
    : paths_(std::move(paths)),
      hostname_(std::move(hostname)),
      trusted_keys_(std::make_shared<plng::ticket::TrustedKeys>()) {}

std::vector<std::string> DesiredState::load() {
  std::vector<std::string> warnings;
  std::lock_guard lock(mutex_);
  const fs::path plc_file = paths_.state_dir / kPlcStateFile;
  try {
    if (auto bytes = base::readFileIfExists(plc_file)) {
      pb::NodeState state;
      if (state.ParseFromString(*bytes)) {
        setPlcStateLocked(state);
      } else {
        warnings.push_back(plc_file.string() + " does not parse; waiting for PLC's state");
      }
    }
  } catch (const std::exception& e) {
    warnings.push_back(e.what());
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(paths_.state_dir / kTicketsDir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!validTicketId(name)) continue;  // temporary files and strays
    try {
      auto bytes = base::readFileIfExists(entry.path());
      pb::SignedTicket ticket;
      pb::TicketBody body;
      if (!bytes || !ticket.ParseFromString(*bytes) || !body.ParseFromString(ticket.body()) ||
          body.ticket_id() != name) {
        warnings.push_back(entry.path().string() + " is not a ticket record; ignored");
        continue;
      }
      tickets_[name] = ticketEntry(body);
    } catch (const std::exception& e) {
      warnings.push_back(e.what());
    }
  }
  ++generation_;
  return warnings;
}

void DesiredState::setPlcStateLocked(const pb::NodeState& state) {
  plc_state_ = state;
  plc_slivers_.clear();
  for (const auto& spec : state.slivers()) {
    std::vector<std::string> keys;
    for (const auto& k : spec.keys()) keys.push_back(k.key());
    std::map<std::string, std::string> tags(spec.tags().begin(), spec.tags().end());
    DesiredSliver& sliver = plc_slivers_[spec.slice_name()] = desiredFromTags(
        spec.slice_name(), spec.xid(), tags, std::move(keys), spec.expires_at(), "plc");
    sliver.about.description = spec.description();
    sliver.about.url = spec.url();
    for (const auto& contact : spec.contacts())
      sliver.about.contacts.push_back({contact.name(), contact.email(), contact.role()});
  }
  std::vector<pb::PlcPublicKey> keys(state.plc_keys().begin(), state.plc_keys().end());
  try {
    trusted_keys_ = std::make_shared<plng::ticket::TrustedKeys>(keys);
  } catch (const std::invalid_argument&) {
    // A malformed key list keeps the previous keys rather than trusting nothing.
  }
}

bool DesiredState::setPlcState(const pb::NodeState& state) {
  std::lock_guard lock(mutex_);
  if (plc_state_.version() != 0 && state.epoch() == plc_state_.epoch() &&
      state.version() <= plc_state_.version()) {
    return false;
  }
  fs::create_directories(paths_.state_dir);
  base::writeFileAtomic(paths_.state_dir / kPlcStateFile, state.SerializeAsString(), 0600);
  setPlcStateLocked(state);
  ++generation_;
  return true;
}

std::int64_t DesiredState::plcVersion() const {
  std::lock_guard lock(mutex_);
  return plc_state_.version();
}

PlcStatePosition DesiredState::plcPosition() const {
  std::lock_guard lock(mutex_);
  return PlcStatePosition{plc_state_.epoch(), plc_state_.version()};
}

std::shared_ptr<const plng::ticket::TrustedKeys> DesiredState::trustedKeys() const {
  std::lock_guard lock(mutex_);
  return trusted_keys_;
}

DesiredState::TicketEntry DesiredState::ticketEntry(const pb::TicketBody& body) const {
  const pb::NodeGrant* grant = nullptr;
  for (const auto& g : body.nodes()) {
    if (plng::proto::sameHostname(g.hostname(), hostname_)) grant = &g;
  }
  if (grant == nullptr) {
    throw std::invalid_argument("ticket " + body.ticket_id() + " does not name node " + hostname_);
  }
  std::vector<std::string> keys;
  for (const auto& k : body.member_keys()) keys.push_back(k.key());
  std::map<std::string, std::string> tags(grant->tags().begin(), grant->tags().end());
  return TicketEntry{body, desiredFromTags(body.slice_name(), body.xid(), tags, std::move(keys),
                                           body.not_after(), "ticket")};
}

bool DesiredState::addTicket(const pb::SignedTicket& ticket, const pb::TicketBody& body) {
  if (!validTicketId(body.ticket_id())) {
    throw std::invalid_argument("ticket id '" + body.ticket_id() +
                                "' is not a plain identifier (letters, digits, '-', '_')");
  }
  TicketEntry entry = ticketEntry(body);
  std::lock_guard lock(mutex_);
  if (tickets_.contains(body.ticket_id())) return false;
  const fs::path dir = paths_.state_dir / kTicketsDir;
  fs::create_directories(dir);
  base::writeFileAtomic(dir / body.ticket_id(), ticket.SerializeAsString(), 0600);
  tickets_.emplace(body.ticket_id(), std::move(entry));
  ++generation_;
  return true;
}

bool DesiredState::hasTicket(const std::string& ticket_id) const {
  std::lock_guard lock(mutex_);
  return tickets_.contains(ticket_id);
}

void DesiredState::pruneTickets(std::int64_t now) {
  std::lock_guard lock(mutex_);
  for (auto it = tickets_.begin(); it != tickets_.end();) {
    if (it->second.body.not_after() + kTicketRetentionS < now) {
      std::error_code ec;
      fs::remove(paths_.state_dir / kTicketsDir / it->first, ec);
      it = tickets_.erase(it);
      ++generation_;
    } else {
      ++it;
    }
  }
}

DesiredMap DesiredState::desired(std::int64_t now) const {
  std::lock_guard lock(mutex_);
  // Every source of each slice: PLC's spec first, then tickets, newest issued last.
  std::map<std::string, std::vector<const DesiredSliver*>> sources;
  for (const auto& [slice, sliver] : plc_slivers_) sources[slice].push_back(&sliver);
  std::vector<const TicketEntry*> tickets;
  for (const auto& [id, entry] : tickets_) tickets.push_back(&entry);
  std::stable_sort(tickets.begin(), tickets.end(), [](const auto* a, const auto* b) {
    return a->body.issued_at() < b->body.issued_at();
  });
  for (const auto* t : tickets) sources[t->sliver.config.slice].push_back(&t->sliver);

  DesiredMap out;
  for (const auto& [slice, all] : sources) {
    std::vector<const DesiredSliver*> live;
    for (const auto* s : all) {
      if (!s->expired(now)) live.push_back(s);
    }
    if (live.empty()) {
      // Everything expired: keep the slice, marked expired, so its sliver is deleted.
      DesiredSliver expired = *all.back();
      for (const auto* s : all) expired.expires_at = std::max(expired.expires_at, s->expires_at);
      out[slice] = std::move(expired);
      continue;
    }
    // PLC's view is the freshest when it has the slice; otherwise the newest ticket.
    const DesiredSliver* base = live.front()->source == "plc" ? live.front() : live.back();
    DesiredSliver merged = *base;
    bool from_plc = false, from_ticket = false;
    std::vector<std::string> keys;
    for (const auto* s : live) {
      (s->source == "plc" ? from_plc : from_ticket) = true;
      keys.insert(keys.end(), s->keys.begin(), s->keys.end());
      if (s->expires_at == 0 || merged.expires_at == 0) {
        merged.expires_at = 0;
      } else {
        merged.expires_at = std::max(merged.expires_at, s->expires_at);
      }
    }
    merged.keys = sortedUnique(std::move(keys));
    merged.source = from_plc && from_ticket ? "plc+ticket" : (from_plc ? "plc" : "ticket");
    out[slice] = std::move(merged);
  }
  return out;
}

std::optional<DesiredSliver> DesiredState::lookup(const std::string& slice,
                                                  std::int64_t now) const {
  auto all = desired(now);
  auto it = all.find(slice);
  if (it == all.end()) return std::nullopt;
  return it->second;
}

std::uint64_t DesiredState::generation() const {
  std::lock_guard lock(mutex_);
  return generation_;
}

}  // namespace plng::sliverd

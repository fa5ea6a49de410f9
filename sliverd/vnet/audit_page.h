// The node's "who sent this?" pages (docs/vnet.md, "Flow auditing"), as
// PlanetLab's nodes served them to outside administrators: which slices sent
// what to a destination in the last hour, each slice's description, URL and
// PIs, and a per-slice summary; HTML for a browser and the same as JSON. Pure
// rendering over the flow record files: the daemon serves it with app::HttpServer.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/http_server.h"
#include "sliverd/core/desired_state.h"
#include "sliverd/vnet/flow_log.h"

namespace plng::sliverd {

// Records of one slice to one destination summed over a window: one row per
// (protocol, addresses, ports or ICMP type/echo id, verdict).
struct FlowSummary {
  FlowRecord total;  // packets and bytes summed, flags OR'd, first/last seen widened
  std::size_t records = 0;
};
std::vector<FlowSummary> summarize(const std::vector<FlowRecord>& records);

// "&lt;b&gt;": text safe in HTML content and attribute values.
std::string escapeHtml(std::string_view text);

class AuditPages {
 public:
  struct Options {
    std::string hostname;  // the node's name, in titles
    std::string plc_url;   // PLC's web address for older traffic; may be empty
    std::chrono::seconds window = std::chrono::hours(1);
  };
  // `about` gives what the desired state says about a slice (empty when the
  // node does not know it).
  AuditPages(const FlowFiles& files, std::function<SliceAbout(const std::string&)> about,
             const FlowClock& clock, Options options);

  using Response = app::HttpResponse;
  // GET of `target` (path and query): "/", "/?dst=ADDR", "/slice/NAME",
  // "/api/flows?dst=ADDR", "/api/slices/NAME"; 404 for the rest, 400 for a
  // destination that is not an address.
  Response get(std::string_view target) const;

 private:
  Response formPage() const;
  Response destinationPage(const std::string& dst, bool json) const;
  Response slicePage(const std::string& slice, bool json) const;
  std::vector<FlowRecord> lastWindow() const;

  const FlowFiles& files_;
  std::function<SliceAbout(const std::string&)> about_;
  const FlowClock& clock_;
  Options options_;
};

}  // namespace plng::sliverd

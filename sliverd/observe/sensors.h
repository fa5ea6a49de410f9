// The node's sensor server's pages (PlanetLab's sensor interface;
// docs/sensors.md): each sensor a path answering a CSV table, header row
// first, rendered from a NodeObserver's reading. Served by app::HttpServer on
// `sensor_listen`; slivers reach it (service_allowlist), the world does not.
#pragma once

#include <string_view>

#include "app/http_server.h"
#include "sliverd/observe/node_reading.h"

namespace plng::sliverd {

class SensorPages {
 public:
  explicit SensorPages(const NodeObserver& observer) : observer_(observer) {}

  // GET (or HEAD) `target`: 200 with text/csv, 404 for an unknown sensor or
  // slice (text/plain, saying what exists), 500 when the node cannot be read.
  app::HttpResponse get(std::string_view target) const;

  static constexpr const char* kContentType = "text/csv; charset=utf-8";

 private:
  const NodeObserver& observer_;
};

}  // namespace plng::sliverd

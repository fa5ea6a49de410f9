// What a benchmark prints about the machine it ran on, and the text helpers of
// its tables: shared by the benchmarks that print a report.
#pragma once

#include <cstddef>
#include <string>

namespace plng::bench {

// CPUs this process may run on (what nproc prints).
int usableCpus();
// "Linux <release> <machine>", or "unknown".
std::string kernelRelease();
// /proc/loadavg's first three fields.
std::string loadAverage();
// Now as 2026-12-03T18:40:00Z.
std::string nowUtc();

// `value` with `decimals` digits after the point.
std::string fixed(double value, int decimals);
// `s` padded with blanks to `width`, on the left (`right`-aligned) or the right.
std::string pad(const std::string& s, std::size_t width, bool right = true);

}  // namespace plng::bench

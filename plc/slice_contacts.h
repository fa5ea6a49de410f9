// Who answers for a slice: its description and URL, and the PIs of its site
// (live, enabled persons holding role pi there), as nodes show them on their
// "who sent this?" page (SliverSpec) and Admin.GetFlows returns them with each flow.
#pragma once

#include <cstdint>
#include <map>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "proto/plc.pb.h"

namespace plng::plc {

struct SliceContacts {
  std::string description;
  std::string url;
  std::vector<planetlab::v1::SliceContact> contacts;  // role "pi", ordered by email
};

// The contacts of each slice of `slice_ids` (deleted slices too: flows outlive
// them), by slice_id; one SQL statement.
std::map<std::int64_t, SliceContacts> sliceContacts(pqxx::transaction_base& tx,
                                                    const std::vector<std::int64_t>& slice_ids);

}  // namespace plng::plc

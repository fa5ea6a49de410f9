// What one person or slice may make PLC store and send to nodes: the max_* keys
// of PlcConfig. A node's desired state carries, for each sliver, its slice's
// member keys and effective tags, so these limits bound what one user can put
// in every node's state (docs/plc.md, Limits, derives the worst case from them).
//
// Each check throws ApiError naming the configuration key: INVALID_ARGUMENT for
// one value that is too large, RESOURCE_EXHAUSTED for a count or a total over
// its limit. The checks that count rows run after the change, inside its
// transaction, with the rows they count locked, so that they hold at commit.
#pragma once

#include <cstdint>
#include <pqxx/pqxx>
#include <string>

#include "plc/config.h"
#include "plc/validate.h"

namespace plng::plc {

// What one key or tag costs in a node's state beyond its text: protobuf framing
// (at most 10 bytes for a key, 11 for a tag entry), rounded up.
inline constexpr std::int64_t kStateEntryOverhead = 16;

// The key line (max_key_length) and its comment (max_key_comment_length).
void checkSshKeySize(const PlcConfig& config, const ParsedSshKey& key);

// After adding a key to a person: their keys (max_keys_per_person), and the key
// bytes of every live slice they are a member of (max_slice_key_bytes). Locks
// the person and those slices first.
void lockForPersonKeys(pqxx::work& tx, std::int64_t person_id);
void checkPersonKeys(pqxx::work& tx, const PlcConfig& config, std::int64_t person_id,
                     const std::string& email);

// After adding members to a (locked) slice: max_slice_members, max_slice_key_bytes.
void checkSliceMembers(pqxx::work& tx, const PlcConfig& config, std::int64_t slice_id,
                       const std::string& slice_name);

// One tag value (max_tag_value_length); `what` names it in the message.
void checkTagValueLength(const PlcConfig& config, const std::string& what,
                         const std::string& value);

// After setting a tag of a (locked) slice: max_slice_tags, max_slice_tag_bytes.
void checkSliceTags(pqxx::work& tx, const PlcConfig& config, std::int64_t slice_id,
                    const std::string& slice_name);

}  // namespace plng::plc

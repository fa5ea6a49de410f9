#include "plc/plc_limits.h"

#include "plc/errors.h"

namespace plng::plc {

namespace {

// The bytes a slice's member keys take in a node's state: each key line, its
// owner's email, and the framing. Every member counts (enabled or not, keys
// blacklisted or not): enabling a person or lifting a blacklist entry then
// never pushes a slice over its limit.
constexpr const char* kSliceKeyBytes =
    "coalesce(sum(octet_length(k.key_text) + octet_length(p.email) + $2::bigint), 0)";

}  // namespace

void checkSshKeySize(const PlcConfig& config, const ParsedSshKey& key) {
  const auto length = static_cast<std::int64_t>(key.canonical.size());
  if (length > config.max_key_length) {
    invalidArgument("SSH key is " + std::to_string(length) + " bytes long; max_key_length is " +
                    std::to_string(config.max_key_length) +
                    " (an ssh-ed25519 key takes about 100; shorten its comment or use a"
                    " smaller key type)");
  }
  // canonical = "<type> <base64>[ <comment>]"
  auto body_end = key.canonical.find(' ', key.type.size() + 1);
  const std::int64_t comment =
      body_end == std::string::npos ? 0 : length - static_cast<std::int64_t>(body_end) - 1;
  if (comment > config.max_key_comment_length) {
    invalidArgument("SSH key comment is " + std::to_string(comment) +
                    " bytes long; max_key_comment_length is " +
                    std::to_string(config.max_key_comment_length));
  }
}

void lockForPersonKeys(pqxx::work& tx, std::int64_t person_id) {
  // Person first, then their slices in id order (AddSliceMembers and
  // SetSliceTag lock one slice; nothing locks a slice before a person).
  tx.exec_params("SELECT 1 FROM persons WHERE person_id = $1 FOR UPDATE", person_id);
  tx.exec_params(
      "SELECT 1 FROM slices WHERE deleted_at IS NULL AND slice_id IN"
      " (SELECT slice_id FROM slice_members WHERE person_id = $1) ORDER BY slice_id FOR UPDATE",
      person_id);
}

void checkPersonKeys(pqxx::work& tx, const PlcConfig& config, std::int64_t person_id,
                     const std::string& email) {
  auto keys = tx.exec_params1("SELECT count(*) FROM keys WHERE person_id = $1", person_id)[0]
                  .as<std::int64_t>();
  if (keys > config.max_keys_per_person) {
    resourceExhausted(
        email + " already has " + std::to_string(keys - 1) + " SSH keys; max_keys_per_person is " +
        std::to_string(config.max_keys_per_person) + " (delete one first: plcctl key delete)");
  }
  auto over =
      tx.exec_params(std::string("SELECT sl.name, ") + kSliceKeyBytes +
                         " FROM slice_members mine JOIN slices sl ON sl.slice_id = mine.slice_id"
                         " AND sl.deleted_at IS NULL"
                         " JOIN slice_members m ON m.slice_id = sl.slice_id"
                         " JOIN persons p ON p.person_id = m.person_id AND p.deleted_at IS NULL"
                         " JOIN keys k ON k.person_id = p.person_id"
                         " WHERE mine.person_id = $1 GROUP BY sl.name HAVING " +
                         kSliceKeyBytes + " > $3 ORDER BY 2 DESC, 1 LIMIT 1",
                     person_id, kStateEntryOverhead, config.max_slice_key_bytes);
  if (!over.empty()) {
    resourceExhausted("with this key, the member keys of slice " + over[0][0].as<std::string>() +
                      " would take " + over[0][1].as<std::string>() +
                      " bytes on its nodes; max_slice_key_bytes is " +
                      std::to_string(config.max_slice_key_bytes) +
                      " (use a shorter key or comment, or ask the slice's PI to remove members)");
  }
}

void checkSliceMembers(pqxx::work& tx, const PlcConfig& config, std::int64_t slice_id,
                       const std::string& slice_name) {
  auto row = tx.exec_params1(
      std::string("SELECT (SELECT count(*) FROM slice_members m JOIN persons p USING (person_id)"
                  "  WHERE m.slice_id = $1 AND p.deleted_at IS NULL),"
                  " (SELECT ") +
          kSliceKeyBytes +
          " FROM slice_members m JOIN persons p ON p.person_id = m.person_id"
          "  AND p.deleted_at IS NULL JOIN keys k ON k.person_id = p.person_id"
          "  WHERE m.slice_id = $1)",
      slice_id, kStateEntryOverhead);
  auto members = row[0].as<std::int64_t>();
  if (members > config.max_slice_members) {
    resourceExhausted("slice " + slice_name + " would have " + std::to_string(members) +
                      " members; max_slice_members is " + std::to_string(config.max_slice_members));
  }
  auto bytes = row[1].as<std::int64_t>();
  if (bytes > config.max_slice_key_bytes) {
    resourceExhausted("the member keys of slice " + slice_name + " would take " +
                      std::to_string(bytes) + " bytes on its nodes; max_slice_key_bytes is " +
                      std::to_string(config.max_slice_key_bytes));
  }
}

void checkTagValueLength(const PlcConfig& config, const std::string& what,
                         const std::string& value) {
  if (static_cast<std::int64_t>(value.size()) > config.max_tag_value_length) {
    invalidArgument(what + " is " + std::to_string(value.size()) +
                    " bytes long; max_tag_value_length is " +
                    std::to_string(config.max_tag_value_length) +
                    " (an initscript that needs more can fetch the rest when it runs)");
  }
}

void checkSliceTags(pqxx::work& tx, const PlcConfig& config, std::int64_t slice_id,
                    const std::string& slice_name) {
  auto row = tx.exec_params1(
      "SELECT count(*), coalesce(sum(octet_length(tt.name) + octet_length(st.value)"
      " + $2::bigint), 0) FROM slice_tags st JOIN tag_types tt USING (tag_type_id)"
      " WHERE st.slice_id = $1",
      slice_id, kStateEntryOverhead);
  auto tags = row[0].as<std::int64_t>();
  if (tags > config.max_slice_tags) {
    resourceExhausted("slice " + slice_name + " would have " + std::to_string(tags) +
                      " tags; max_slice_tags is " + std::to_string(config.max_slice_tags) +
                      " (delete some: plcctl slice tag list " + slice_name + ")");
  }
  auto bytes = row[1].as<std::int64_t>();
  if (bytes > config.max_slice_tag_bytes) {
    resourceExhausted("the tags of slice " + slice_name + " would take " + std::to_string(bytes) +
                      " bytes; max_slice_tag_bytes is " +
                      std::to_string(config.max_slice_tag_bytes));
  }
}

}  // namespace plng::plc

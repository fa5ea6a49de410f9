#include "plc/slice_contacts.h"

#include "plc/admin_views.h"

namespace plng::plc {

std::map<std::int64_t, SliceContacts> sliceContacts(pqxx::transaction_base& tx,
                                                    const std::vector<std::int64_t>& slice_ids) {
  std::map<std::int64_t, SliceContacts> out;
  if (slice_ids.empty()) return out;
  const auto rows = tx.exec_params(
      "SELECT sl.slice_id, sl.description, sl.url,"
      " trim(p.first_name || ' ' || p.last_name), p.email"
      " FROM slices sl"
      " LEFT JOIN (person_roles r JOIN persons p ON p.person_id = r.person_id"
      "            AND p.deleted_at IS NULL AND p.enabled)"
      "        ON r.site_id = sl.site_id AND r.role = 'pi'"
      " WHERE sl.slice_id = ANY($1::bigint[])"
      " ORDER BY sl.slice_id, p.email",
      pgIdArray(slice_ids));
  for (const auto& r : rows) {
    auto& entry = out[r[0].as<std::int64_t>()];
    entry.description = r[1].as<std::string>();
    entry.url = r[2].as<std::string>();
    if (r[4].is_null()) continue;
    planetlab::v1::SliceContact contact;
    contact.set_name(r[3].as<std::string>());
    contact.set_email(r[4].as<std::string>());
    contact.set_role("pi");
    entry.contacts.push_back(std::move(contact));
  }
  return out;
}

}  // namespace plng::plc

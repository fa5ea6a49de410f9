// Sites and organizations: site add|list|show|update|delete,
// org add|list|add-site|remove-site|delete.
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/values.h"
#include "cli/views.h"

namespace plcctl {

namespace {

// Site options shared by add and update; only what is given is sent.
std::vector<FlagSpec> siteFlags(bool name_required) {
  return {
      name_required ? flag::required("name", "NAME", "the site's full name")
                    : flag::value("name", "NAME", "the site's full name"),
      flag::value("url", "URL", "the site's web page"),
      flag::value("enabled", "BOOL", "whether the site may run slices (true|false)"),
      flag::value("max-slices", "N", "how many slices the site may have"),
      flag::value("max-slivers", "N", "how many slivers its slices may have in all"),
  };
}

template <class Request>
void applySiteFlags(const ParsedArgs& args, Request& request) {
  if (auto name = args.value("name")) request.set_name(*name);
  if (auto url = args.value("url")) request.set_url(*url);
  if (auto enabled = args.value("enabled")) request.set_enabled(parseBool(*enabled, "--enabled"));
  if (auto n = optionalInt32(args, "max-slices")) request.set_max_slices(*n);
  if (auto n = optionalInt32(args, "max-slivers")) request.set_max_slivers(*n);
}

void siteAdd(Invocation& inv) {
  v1::AddSiteRequest request;
  request.set_login_base(inv.args.positional(0));
  applySiteFlags(inv.args, request);
  inv.out.item(inv.plc().call(&v1::Admin::Stub::AddSite, request), siteView());
}

void siteList(Invocation& inv) {
  v1::GetSitesRequest request;
  for (const std::string& login_base : inv.args.positionals()) request.add_login_bases(login_base);
  request.set_include_deleted(inv.args.has("deleted"));
  inv.out.list(inv.plc().call(&v1::Admin::Stub::GetSites, request).sites(), siteView());
}

void siteShow(Invocation& inv) {
  v1::GetSitesRequest request;
  request.add_login_bases(inv.args.positional(0));
  request.set_include_deleted(true);
  const auto response = inv.plc().call(&v1::Admin::Stub::GetSites, request);
  inv.out.item(theOne(response.sites(), "site", request.login_bases(0)), siteView());
}

void siteUpdate(Invocation& inv) {
  v1::UpdateSiteRequest request;
  request.set_login_base(inv.args.positional(0));
  applySiteFlags(inv.args, request);
  inv.out.item(inv.plc().call(&v1::Admin::Stub::UpdateSite, request), siteView());
}

void siteDelete(Invocation& inv) {
  v1::DeleteSiteRequest request;
  request.set_login_base(inv.args.positional(0));
  const auto response = inv.plc().call(&v1::Admin::Stub::DeleteSite, request);
  inv.out.done(response, "Deleted site " + request.login_base() + ".");
}

void orgAdd(Invocation& inv) {
  v1::AddOrganizationRequest request;
  request.set_name(inv.args.positional(0));
  request.set_description(inv.args.valueOr("description", ""));
  inv.out.item(inv.plc().call(&v1::Admin::Stub::AddOrganization, request), organizationView());
}

void orgList(Invocation& inv) {
  v1::GetOrganizationsRequest request;
  for (const std::string& name : inv.args.positionals()) request.add_names(name);
  inv.out.list(inv.plc().call(&v1::Admin::Stub::GetOrganizations, request).organizations(),
               organizationView());
}

v1::OrganizationSiteRequest organizationSite(const ParsedArgs& args) {
  v1::OrganizationSiteRequest request;
  request.set_organization(args.positional(0));
  request.set_login_base(args.positional(1));
  return request;
}

void orgAddSite(Invocation& inv) {
  inv.out.item(inv.plc().call(&v1::Admin::Stub::AddSiteToOrganization, organizationSite(inv.args)),
               organizationView());
}

void orgRemoveSite(Invocation& inv) {
  inv.out.item(
      inv.plc().call(&v1::Admin::Stub::RemoveSiteFromOrganization, organizationSite(inv.args)),
      organizationView());
}

void orgDelete(Invocation& inv) {
  v1::DeleteOrganizationRequest request;
  request.set_name(inv.args.positional(0));
  const auto response = inv.plc().call(&v1::Admin::Stub::DeleteOrganization, request);
  inv.out.done(response, "Deleted organization " + request.name() + ".");
}

const PositionalSpec kLoginBase =
    arg::one("LOGIN_BASE", "the site's short name, prefix of its slice names (e.g. princeton)");

}  // namespace

void addSiteCommands(CommandTable& table) {
  table.section("Accounts");
  table.group("site", "Sites: institutions that host nodes and own slices");
  table.add({
      .path = "site add",
      .summary = "Create a site (admin)",
      .positionals = {kLoginBase},
      .flags = siteFlags(/*name_required=*/true),
      .examples = {"plcctl site add princeton --name 'Princeton University' "
                   "--url https://www.princeton.edu --max-slices 20"},
      .run = siteAdd,
  });
  table.add({
      .path = "site list",
      .summary = "List sites, all or the ones named",
      .positionals = {arg::any("LOGIN_BASE", "only these sites")},
      .flags = {flag::toggle("deleted", "include deleted sites")},
      .examples = {"plcctl site list", "plcctl site list princeton mit -o json"},
      .run = siteList,
  });
  table.add({
      .path = "site show",
      .summary = "Show one site",
      .positionals = {kLoginBase},
      .examples = {"plcctl site show princeton"},
      .run = siteShow,
  });
  table.add({
      .path = "site update",
      .summary = "Change a site's name, URL, limits or enabled state",
      .positionals = {kLoginBase},
      .flags = siteFlags(/*name_required=*/false),
      .examples = {"plcctl site update princeton --max-slices 30 --enabled true"},
      .run = siteUpdate,
  });
  table.add({
      .path = "site delete",
      .summary = "Delete a site (kept for history, marked deleted)",
      .positionals = {kLoginBase},
      .examples = {"plcctl site delete princeton"},
      .run = siteDelete,
  });

  table.group("org", "Organizations: groups of sites (consortia, federations)");
  table.add({
      .path = "org add",
      .summary = "Create an organization (admin)",
      .positionals = {arg::one("NAME", "the organization's name")},
      .flags = {flag::value("description", "TEXT", "what the organization is")},
      .examples = {"plcctl org add planetlab-europe --description 'PlanetLab Europe sites'"},
      .run = orgAdd,
  });
  table.add({
      .path = "org list",
      .summary = "List organizations, all or the ones named",
      .positionals = {arg::any("NAME", "only these organizations")},
      .examples = {"plcctl org list"},
      .run = orgList,
  });
  table.add({
      .path = "org add-site",
      .summary = "Add a site to an organization",
      .positionals = {arg::one("ORG", "the organization"), kLoginBase},
      .examples = {"plcctl org add-site planetlab-europe inria"},
      .run = orgAddSite,
  });
  table.add({
      .path = "org remove-site",
      .summary = "Remove a site from an organization",
      .positionals = {arg::one("ORG", "the organization"), kLoginBase},
      .examples = {"plcctl org remove-site planetlab-europe inria"},
      .run = orgRemoveSite,
  });
  table.add({
      .path = "org delete",
      .summary = "Delete an organization",
      .positionals = {arg::one("NAME", "the organization")},
      .examples = {"plcctl org delete planetlab-europe"},
      .run = orgDelete,
  });
}

}  // namespace plcctl

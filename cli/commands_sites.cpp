// Sites and organizations: site add|request|approve|list|show|update|delete,
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

void siteRequest(Invocation& inv) {
  v1::RequestSiteRequest request;
  request.set_login_base(inv.args.positional(0));
  request.set_name(*inv.args.value("name"));
  request.set_url(*inv.args.value("url"));
  request.set_pi_email(*inv.args.value("pi-email"));
  request.set_pi_first_name(*inv.args.value("pi-first-name"));
  request.set_pi_last_name(*inv.args.value("pi-last-name"));
  // The PI runs the nodes unless someone else is named.
  request.set_tech_contact_name(
      inv.args.valueOr("tech-name", request.pi_first_name() + " " + request.pi_last_name()));
  request.set_tech_contact_email(inv.args.valueOr("tech-email", request.pi_email()));
  request.set_pi_password(readPassword(inv.args, /*confirm=*/true));
  const auto site = inv.plc().call(&v1::Admin::Stub::RequestSite, request, Auth::kAnonymous);
  if (inv.out.json()) {
    inv.out.printJson(site);
    return;
  }
  inv.out.out() << "Requested site " << site.login_base() << " for " << request.pi_email()
                << ". PLC's admins review the request; once they approve it, " << request.pi_email()
                << " can log in (plcctl login) as the site's PI.\n";
}

void siteApprove(Invocation& inv) {
  v1::ApproveSiteRequest request;
  request.set_login_base(inv.args.positional(0));
  inv.out.item(inv.plc().call(&v1::Admin::Stub::ApproveSite, request), siteView());
}

void siteList(Invocation& inv) {
  v1::GetSitesRequest request;
  for (const std::string& login_base : inv.args.positionals()) request.add_login_bases(login_base);
  request.set_include_deleted(inv.args.has("deleted"));
  request.set_pending_only(inv.args.has("pending"));
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
  if (auto name = inv.args.value("tech-name")) request.set_tech_contact_name(*name);
  if (auto email = inv.args.value("tech-email")) request.set_tech_contact_email(*email);
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
  std::vector<FlagSpec> request_flags = {
      flag::required("name", "NAME", "the site's full name"),
      flag::required("url", "URL", "the site's web page"),
      flag::required("pi-email", "EMAIL", "the PI's email: a new account, the site's PI"),
      flag::required("pi-first-name", "NAME", "the PI's given name"),
      flag::required("pi-last-name", "NAME", "the PI's family name"),
      flag::value("tech-name", "NAME", "who runs the site's nodes (default: the PI)"),
      flag::value("tech-email", "EMAIL", "the tech contact's email (default: the PI's)"),
  };
  for (FlagSpec& spec : passwordFlags("PI's new")) request_flags.push_back(std::move(spec));
  table.add({
      .path = "site request",
      .summary = "Ask PLC for a new site, as its PI (no login needed)",
      .positionals = {kLoginBase},
      .flags = std::move(request_flags),
      .examples = {"plcctl site request princeton --name 'Princeton University' "
                   "--url https://www.princeton.edu --pi-email larry@princeton.edu "
                   "--pi-first-name Larry --pi-last-name Peterson --password-file ./pi.pw"},
      .run = siteRequest,
      .details =
          "Creates the site and the PI's account, both disabled, until PLC's admins approve\n"
          "the request (plcctl site approve) or reject it (plcctl site delete). The PI's\n"
          "password (8 characters or more) comes from --password-stdin, --password-file or\n"
          "a prompt. PLC limits requests per client address (join_source_burst) and the\n"
          "requests awaiting approval (max_pending_sites).",
  });
  table.add({
      .path = "site approve",
      .summary = "Approve a requested site: enable it and its PI (admin)",
      .positionals = {kLoginBase},
      .examples = {"plcctl site list --pending", "plcctl site approve princeton"},
      .run = siteApprove,
      .details = "To reject a request, delete the site: plcctl site delete LOGIN_BASE (the\n"
                 "PI's account made by the request goes with it).",
  });
  table.add({
      .path = "site list",
      .summary = "List sites, all or the ones named",
      .positionals = {arg::any("LOGIN_BASE", "only these sites")},
      .flags = {flag::toggle("deleted", "include deleted sites"),
                flag::toggle("pending", "only requested sites awaiting approval")},
      .examples = {"plcctl site list", "plcctl site list princeton mit -o json",
                   "plcctl site list --pending"},
      .run = siteList,
  });
  table.add({
      .path = "site show",
      .summary = "Show one site",
      .positionals = {kLoginBase},
      .examples = {"plcctl site show princeton"},
      .run = siteShow,
  });
  std::vector<FlagSpec> update_flags = siteFlags(/*name_required=*/false);
  update_flags.push_back(flag::value("tech-name", "NAME", "who runs the site's nodes"));
  update_flags.push_back(flag::value("tech-email", "EMAIL", "the tech contact's email address"));
  table.add({
      .path = "site update",
      .summary = "Change a site's name, URL, tech contact, limits or enabled state",
      .positionals = {kLoginBase},
      .flags = std::move(update_flags),
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

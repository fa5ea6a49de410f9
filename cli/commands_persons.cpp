// Persons and their SSH keys: person add|register|list|show|update|delete|
// enable|disable|add-site|remove-site|add-role|remove-role, key add|list|
// delete|blacklist|blacklisted.
#include <algorithm>
#include <array>
#include <sstream>

#include "base/strings.h"
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/values.h"
#include "cli/views.h"

namespace plcctl {

namespace {

const PositionalSpec kEmail = arg::one("EMAIL", "the person's email address");

void personAdd(Invocation& inv) {
  v1::AddPersonRequest request;
  request.set_email(inv.args.positional(0));
  request.set_first_name(*inv.args.value("first-name"));
  request.set_last_name(*inv.args.value("last-name"));
  request.set_login_base(*inv.args.value("site"));
  request.set_password(readPassword(inv.args, /*confirm=*/true));
  inv.out.item(inv.plc().call(&v1::Admin::Stub::AddPerson, request), personView());
}

void personRegister(Invocation& inv) {
  v1::RegisterPersonRequest request;
  request.set_email(inv.args.positional(0));
  request.set_first_name(*inv.args.value("first-name"));
  request.set_last_name(*inv.args.value("last-name"));
  request.set_login_base(*inv.args.value("site"));
  request.set_password(readPassword(inv.args, /*confirm=*/true));
  const auto person = inv.plc().call(&v1::Admin::Stub::RegisterPerson, request, Auth::kAnonymous);
  if (inv.out.json()) {
    inv.out.printJson(person);
    return;
  }
  inv.out.out() << "Registered " << person.email() << " at site " << request.login_base()
                << ". The account is disabled until a PI of the site enables it"
                << " (plcctl person enable " << person.email() << ").\n";
}

void personList(Invocation& inv) {
  v1::GetPersonsRequest request;
  for (const std::string& email : inv.args.positionals()) request.add_emails(email);
  request.set_login_base(inv.args.valueOr("site", ""));
  request.set_include_deleted(inv.args.has("deleted"));
  request.set_pending_only(inv.args.has("pending"));
  inv.out.list(inv.plc().call(&v1::Admin::Stub::GetPersons, request).persons(), personView());
}

void personShow(Invocation& inv) {
  v1::GetPersonsRequest request;
  request.add_emails(inv.args.positional(0));
  request.set_include_deleted(true);
  const auto response = inv.plc().call(&v1::Admin::Stub::GetPersons, request);
  inv.out.item(theOne(response.persons(), "person", request.emails(0)), personView());
}

void updatePerson(Invocation& inv, const v1::UpdatePersonRequest& request) {
  inv.out.item(inv.plc().call(&v1::Admin::Stub::UpdatePerson, request), personView());
}

void personUpdate(Invocation& inv) {
  v1::UpdatePersonRequest request;
  request.set_email(inv.args.positional(0));
  if (auto name = inv.args.value("first-name")) request.set_first_name(*name);
  if (auto name = inv.args.value("last-name")) request.set_last_name(*name);
  if (auto site = inv.args.value("primary-site")) request.set_primary_site(*site);
  const bool new_password = inv.args.has("password-stdin") || inv.args.has("password-file");
  if (new_password || inv.args.has("change-password")) {
    request.set_password(readPassword(inv.args, /*confirm=*/true));
  }
  updatePerson(inv, request);
}

void setEnabled(Invocation& inv, bool enabled) {
  v1::UpdatePersonRequest request;
  request.set_email(inv.args.positional(0));
  request.set_enabled(enabled);
  updatePerson(inv, request);
}

void personEnable(Invocation& inv) { setEnabled(inv, true); }
void personDisable(Invocation& inv) { setEnabled(inv, false); }

void personDelete(Invocation& inv) {
  v1::DeletePersonRequest request;
  request.set_email(inv.args.positional(0));
  const auto response = inv.plc().call(&v1::Admin::Stub::DeletePerson, request);
  inv.out.done(response, "Deleted person " + request.email() + ".");
}

v1::PersonSiteRequest personSite(const ParsedArgs& args) {
  v1::PersonSiteRequest request;
  request.set_email(args.positional(0));
  request.set_login_base(args.positional(1));
  return request;
}

void personAddSite(Invocation& inv) {
  inv.out.item(inv.plc().call(&v1::Admin::Stub::AddPersonToSite, personSite(inv.args)),
               personView());
}

void personRemoveSite(Invocation& inv) {
  inv.out.item(inv.plc().call(&v1::Admin::Stub::RemovePersonFromSite, personSite(inv.args)),
               personView());
}

v1::PersonRoleRequest personRole(const ParsedArgs& args) {
  static constexpr std::array<std::string_view, 4> kRoles = {"admin", "pi", "tech", "user"};
  const std::string& role = args.positional(1);
  if (std::find(kRoles.begin(), kRoles.end(), role) == kRoles.end()) {
    throw UsageError("ROLE must be one of admin, pi, tech, user; got '" + role + "'");
  }
  if (role != "admin" && !args.has("site")) {
    throw UsageError("role " + role + " applies to one site: give --site LOGIN_BASE");
  }
  v1::PersonRoleRequest request;
  request.set_email(args.positional(0));
  request.set_role(role);
  request.set_login_base(args.valueOr("site", ""));
  return request;
}

void personAddRole(Invocation& inv) {
  inv.out.item(inv.plc().call(&v1::Admin::Stub::AddRoleToPerson, personRole(inv.args)),
               personView());
}

void personRemoveRole(Invocation& inv) {
  inv.out.item(inv.plc().call(&v1::Admin::Stub::DeleteRoleFromPerson, personRole(inv.args)),
               personView());
}

// The OpenSSH public key line from --key or --key-file: the first line that
// is neither blank nor a comment.
std::string sshKeyFromArgs(const ParsedArgs& args) {
  const auto path = args.value("key-file");
  const std::string origin = path ? *path : "--key";
  const std::string text = path ? readFile(*path) : *args.value("key");
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const std::string_view key = plng::base::trim(line);
    if (key.empty() || key.front() == '#') continue;
    if (key.starts_with("-----BEGIN")) {
      throw UsageError(origin + " holds a private key; give the public key (the .pub file)");
    }
    if (key.find(' ') == std::string_view::npos) {
      throw UsageError(origin + " is not an OpenSSH public key line ('TYPE BASE64 [COMMENT]')");
    }
    return std::string(key);
  }
  throw UsageError(origin + " holds no public key");
}

void keyAdd(Invocation& inv) {
  requireOneOf(inv.args, {"key", "key-file"});
  v1::AddPersonKeyRequest request;
  request.set_key(sshKeyFromArgs(inv.args));
  if (auto email = inv.args.value("email")) {
    request.set_email(*email);
  } else {
    request.set_email(inv.plc().call(&v1::Auth::Stub::WhoAmI, v1::Empty()).email());
  }
  inv.out.item(inv.plc().call(&v1::Admin::Stub::AddPersonKey, request), keyView());
}

void keyList(Invocation& inv) {
  v1::GetKeysRequest request;
  request.set_email(inv.args.valueOr("email", ""));
  inv.out.list(inv.plc().call(&v1::Admin::Stub::GetKeys, request).keys(), keyView());
}

void keyDelete(Invocation& inv) {
  v1::DeleteKeyRequest request;
  request.set_key_id(parseInteger(inv.args.positional(0), "KEY_ID", 1));
  const auto response = inv.plc().call(&v1::Admin::Stub::DeleteKey, request);
  inv.out.done(response, "Deleted key " + inv.args.positional(0) + ".");
}

void keyBlacklist(Invocation& inv) {
  const auto key_id = inv.args.optionalPositional(0);
  const int given =
      (key_id ? 1 : 0) + (inv.args.has("key") ? 1 : 0) + (inv.args.has("key-file") ? 1 : 0);
  if (given != 1) throw UsageError("give exactly one of KEY_ID, --key, --key-file");
  v1::BlacklistKeyRequest request;
  if (key_id) {
    request.set_key_id(parseInteger(*key_id, "KEY_ID", 1));
  } else {
    request.set_key(sshKeyFromArgs(inv.args));
  }
  const auto response = inv.plc().call(&v1::Admin::Stub::BlacklistKey, request);
  inv.out.done(response, key_id ? "Blacklisted key " + *key_id + " and deleted it everywhere."
                                : "Blacklisted the key.");
}

void keyBlacklisted(Invocation& inv) {
  const auto response = inv.plc().call(&v1::Admin::Stub::GetBlacklistedKeys, v1::Empty());
  inv.out.strings(response.fingerprints(), "fingerprint", "blacklisted keys");
}

std::vector<FlagSpec> keyTextFlags() {
  return {
      flag::value("key", "TEXT", "the OpenSSH public key line, e.g. \"ssh-ed25519 AAAA... me@x\""),
      flag::value("key-file", "PATH", "read the public key from PATH (e.g. ~/.ssh/id_ed25519.pub)"),
  };
}

}  // namespace

void addPersonCommands(CommandTable& table) {
  table.group("person", "Persons: researchers, PIs, techs and admins");
  std::vector<FlagSpec> add_flags = {
      flag::required("first-name", "NAME", "given name"),
      flag::required("last-name", "NAME", "family name"),
      flag::required("site", "LOGIN_BASE", "the person's primary site"),
  };
  for (FlagSpec& spec : passwordFlags("new")) add_flags.push_back(std::move(spec));
  table.add({
      .path = "person add",
      .summary = "Create an account (PI of the site, or admin)",
      .positionals = {kEmail},
      .flags = std::move(add_flags),
      .examples = {"plcctl person add alice@princeton.edu --first-name Alice --last-name Smith "
                   "--site princeton --password-file ./alice.pw"},
      .run = personAdd,
      .details = "The password (8 characters or more) is never given on the command line: it\n"
                 "comes from --password-stdin, --password-file, or a prompt on the terminal.",
  });
  std::vector<FlagSpec> register_flags = {
      flag::required("first-name", "NAME", "given name"),
      flag::required("last-name", "NAME", "family name"),
      flag::required("site", "LOGIN_BASE", "the (enabled) site to join"),
  };
  for (FlagSpec& spec : passwordFlags("new")) register_flags.push_back(std::move(spec));
  table.add({
      .path = "person register",
      .summary = "Register an account at a site (no login needed)",
      .positionals = {kEmail},
      .flags = std::move(register_flags),
      .examples = {"plcctl person register alice@princeton.edu --first-name Alice "
                   "--last-name Smith --site princeton --password-file ./alice.pw"},
      .run = personRegister,
      .details = "The account is created disabled, with role user at the site, until a PI of the\n"
                 "site (or an admin) enables it: plcctl person enable EMAIL. PLC limits\n"
                 "registrations per client address (join_source_burst) and the disabled accounts\n"
                 "of one site (max_pending_persons_per_site).",
  });
  table.add({
      .path = "person list",
      .summary = "List persons, all, the ones named, or a site's",
      .positionals = {arg::any("EMAIL", "only these persons")},
      .flags = {flag::value("site", "LOGIN_BASE", "only members of this site"),
                flag::toggle("deleted", "include deleted persons"),
                flag::toggle("pending", "only disabled accounts (awaiting a PI or admin)")},
      .examples = {"plcctl person list --site princeton", "plcctl person list --pending"},
      .run = personList,
  });
  table.add({
      .path = "person show",
      .summary = "Show one person with roles and keys",
      .positionals = {kEmail},
      .examples = {"plcctl person show alice@princeton.edu"},
      .run = personShow,
  });
  std::vector<FlagSpec> update_flags = {
      flag::value("first-name", "NAME", "new given name"),
      flag::value("last-name", "NAME", "new family name"),
      flag::value("primary-site", "LOGIN_BASE", "new primary site (one of the person's sites)"),
      flag::toggle("change-password", "prompt on the terminal for a new password"),
  };
  for (FlagSpec& spec : passwordFlags("new")) update_flags.push_back(std::move(spec));
  table.add({
      .path = "person update",
      .summary = "Change a person's names, primary site or password",
      .positionals = {kEmail},
      .flags = std::move(update_flags),
      .examples = {"plcctl person update alice@princeton.edu --last-name Jones",
                   "plcctl person update alice@princeton.edu --change-password"},
      .run = personUpdate,
  });
  table.add({
      .path = "person delete",
      .summary = "Delete a person (kept for history, marked deleted)",
      .positionals = {kEmail},
      .examples = {"plcctl person delete alice@princeton.edu"},
      .run = personDelete,
  });
  table.add({
      .path = "person enable",
      .summary = "Enable a person's account (PI of one of their sites, or admin)",
      .positionals = {kEmail},
      .examples = {"plcctl person enable alice@princeton.edu"},
      .run = personEnable,
  });
  table.add({
      .path = "person disable",
      .summary = "Disable a person's account without deleting it",
      .positionals = {kEmail},
      .examples = {"plcctl person disable alice@princeton.edu"},
      .run = personDisable,
  });
  const PositionalSpec login_base = arg::one("LOGIN_BASE", "the site");
  table.add({
      .path = "person add-site",
      .summary = "Make a person a member of another site",
      .positionals = {kEmail, login_base},
      .examples = {"plcctl person add-site alice@princeton.edu mit"},
      .run = personAddSite,
  });
  table.add({
      .path = "person remove-site",
      .summary = "Remove a person from a site",
      .positionals = {kEmail, login_base},
      .examples = {"plcctl person remove-site alice@princeton.edu mit"},
      .run = personRemoveSite,
  });
  const PositionalSpec role = arg::one("ROLE", "admin, pi, tech or user");
  const FlagSpec role_site =
      flag::value("site", "LOGIN_BASE", "the site the role applies to (all roles but admin)");
  table.add({
      .path = "person add-role",
      .summary = "Grant a role at a site (pi, tech, user) or admin",
      .positionals = {kEmail, role},
      .flags = {role_site},
      .examples = {"plcctl person add-role alice@princeton.edu pi --site princeton",
                   "plcctl person add-role root@plc.example.org admin"},
      .run = personAddRole,
  });
  table.add({
      .path = "person remove-role",
      .summary = "Take a role away",
      .positionals = {kEmail, role},
      .flags = {role_site},
      .examples = {"plcctl person remove-role alice@princeton.edu tech --site princeton"},
      .run = personRemoveRole,
  });

  table.group("key", "SSH public keys that let persons log into their slivers");
  std::vector<FlagSpec> add_key_flags = keyTextFlags();
  add_key_flags.push_back(flag::value("email", "EMAIL", "whose key it is (default: yours)"));
  table.add({
      .path = "key add",
      .summary = "Add an SSH public key to a person",
      .flags = std::move(add_key_flags),
      .examples = {"plcctl key add --key-file ~/.ssh/id_ed25519.pub",
                   "plcctl key add --email bob@mit.edu --key \"ssh-ed25519 AAAAC3Nza... bob\""},
      .run = keyAdd,
      .usage = "(--key TEXT | --key-file PATH) [--email EMAIL]",
  });
  table.add({
      .path = "key list",
      .summary = "List a person's keys (default: yours)",
      .flags = {flag::value("email", "EMAIL", "whose keys to list")},
      .examples = {"plcctl key list", "plcctl key list --email bob@mit.edu -o json"},
      .run = keyList,
  });
  table.add({
      .path = "key delete",
      .summary = "Delete a key",
      .positionals = {arg::one("KEY_ID", "the key's id, from 'plcctl key list'")},
      .examples = {"plcctl key delete 42"},
      .run = keyDelete,
  });
  table.add({
      .path = "key blacklist",
      .summary = "Blacklist a key everywhere, by id or by its text (admin)",
      .positionals = {arg::optional("KEY_ID", "an existing key: it is also deleted everywhere")},
      .flags = keyTextFlags(),
      .examples = {"plcctl key blacklist 42", "plcctl key blacklist --key-file leaked_key.pub"},
      .run = keyBlacklist,
      .usage = "(KEY_ID | --key TEXT | --key-file PATH)",
  });
  table.add({
      .path = "key blacklisted",
      .summary = "List the fingerprints of blacklisted keys",
      .examples = {"plcctl key blacklisted"},
      .run = keyBlacklisted,
  });
}

}  // namespace plcctl

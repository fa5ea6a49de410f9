// Session and API tokens: login, logout, whoami, token create|list|revoke.
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/values.h"
#include "cli/views.h"

namespace plcctl {

namespace {

void login(Invocation& inv) {
  v1::LoginRequest request;
  request.set_email(*inv.args.value("email"));
  request.set_password(readPassword(inv.args, /*confirm=*/false));
  const auto response = inv.plc().call(&v1::Auth::Stub::Login, request, Auth::kAnonymous);

  const std::filesystem::path saved_in = saveSession(inv, response);
  if (inv.out.json()) {
    inv.out.printJson(response);
    return;
  }
  inv.out.out() << "Logged in to PLC at " << inv.plc().options().address << " as "
                << request.email() << "; the session expires "
                << formatTimeFromNow(response.expires_at(), unixNow()) << ".\n"
                << "Token saved in " << saved_in.string() << ".\n";
}

void logout(Invocation& inv) {
  const std::string& token = inv.settings.token.value;
  bool revoked = true;
  v1::Empty response;
  try {
    response = inv.plc().call(&v1::Auth::Stub::Logout, v1::Empty());
  } catch (const RpcError& error) {
    // An expired or already revoked token is as logged out as it gets.
    if (error.status().error_code() != grpc::StatusCode::UNAUTHENTICATED) throw;
    revoked = false;
  }
  ConfigFile config = ConfigFile::load(inv.settings.config_path);
  const bool saved = config.get("token") == token;
  if (saved) {
    config.erase("token");
    config.erase("token_expires_at");
    config.save();
  }
  inv.out.done(response, std::string(revoked ? "Logged out" : "The token was no longer valid") +
                             (saved ? "; token removed from " + config.path().string() : "") + ".");
}

void whoami(Invocation& inv) {
  const auto response = inv.plc().call(&v1::Auth::Stub::WhoAmI, v1::Empty());
  inv.out.item(response, whoAmIView(inv.plc().options().address));
}

void tokenCreate(Invocation& inv) {
  v1::CreateApiTokenRequest request;
  request.set_description(inv.args.valueOr("description", ""));
  request.set_expires_at(expiryFromArgs(inv.args).value_or(0));
  const auto response = inv.plc().call(&v1::Auth::Stub::CreateApiToken, request);
  if (inv.out.json()) {
    inv.out.printJson(response);
    return;
  }
  inv.out.out() << "token: " << response.token() << "\n\n";
  inv.out.item(response.info(), apiTokenView());
  inv.out.err() << "plcctl: the token is shown only this once; store it now.\n";
}

void tokenList(Invocation& inv) {
  const auto response = inv.plc().call(&v1::Auth::Stub::ListApiTokens, v1::Empty());
  inv.out.list(response.tokens(), apiTokenView());
}

void tokenRevoke(Invocation& inv) {
  v1::RevokeApiTokenRequest request;
  request.set_id(parseInteger(inv.args.positional(0), "ID", 1));
  const auto response = inv.plc().call(&v1::Auth::Stub::RevokeApiToken, request);
  inv.out.done(response, "Revoked API token " + inv.args.positional(0) + ".");
}

}  // namespace

void addAuthCommands(CommandTable& table) {
  table.section("Session");
  std::vector<FlagSpec> login_flags = {flag::required("email", "EMAIL", "your account's email")};
  for (FlagSpec& spec : passwordFlags("account")) login_flags.push_back(std::move(spec));
  table.add({
      .path = "login",
      .summary = "Log in with email and password and save the session token",
      .flags = std::move(login_flags),
      .examples = {"plcctl --plc plc.example.org:8620 login --email alice@princeton.edu",
                   "pass show plc | plcctl login --email alice@princeton.edu --password-stdin"},
      .run = login,
      .details = "Without --password-stdin or --password-file the password is asked for on the\n"
                 "terminal, without echo. The PLC address and the token are saved in the config\n"
                 "file (mode 0600), so later commands need neither --plc nor --token.",
  });
  table.add({
      .path = "logout",
      .summary = "Revoke the session token at PLC and remove it from the config file",
      .examples = {"plcctl logout"},
      .run = logout,
  });
  table.add({
      .path = "whoami",
      .summary = "Show who the token belongs to: person or node, roles, sites",
      .examples = {"plcctl whoami", "plcctl whoami -o json"},
      .run = whoami,
  });

  table.group("token", "Long-lived API tokens for scripts and services");
  std::vector<FlagSpec> create_flags = {
      flag::value("description", "TEXT", "what the token is for")};
  for (FlagSpec& spec : expiryFlags("the token")) create_flags.push_back(std::move(spec));
  table.add({
      .path = "token create",
      .summary = "Create an API token (shown once; default lifetime one year)",
      .flags = std::move(create_flags),
      .examples = {"plcctl token create --description 'nightly experiment' --days 90"},
      .run = tokenCreate,
  });
  table.add({
      .path = "token list",
      .summary = "List your API tokens",
      .examples = {"plcctl token list"},
      .run = tokenList,
  });
  table.add({
      .path = "token revoke",
      .summary = "Revoke one of your API tokens",
      .positionals = {arg::one("ID", "the token's id, from 'plcctl token list'")},
      .examples = {"plcctl token revoke 12"},
      .run = tokenRevoke,
  });
}

}  // namespace plcctl

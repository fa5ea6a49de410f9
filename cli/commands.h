// What a command handler gets (Invocation) and the functions that add each
// area's commands to the table. Handlers read their arguments, make one or a
// few calls through PlcClient and print through Printer; failures propagate
// as exceptions that main() maps to exit codes.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "cli/args.h"
#include "cli/client_config.h"
#include "cli/command_table.h"
#include "cli/output.h"
#include "cli/plc_client.h"

namespace plcctl {

namespace v1 = planetlab::v1;

class Invocation {
 public:
  Invocation(const ParsedArgs& parsed, const ClientSettings& resolved, ConnectionOptions connection,
             Printer& printer)
      : args(parsed), settings(resolved), out(printer), connection_(std::move(connection)) {}

  const ParsedArgs& args;
  const ClientSettings& settings;
  Printer& out;

  // The connection to PLC, opened on first use.
  PlcClient& plc() {
    if (!plc_) plc_.emplace(connection_);
    return *plc_;
  }

 private:
  ConnectionOptions connection_;
  std::optional<PlcClient> plc_;
};

// Builds the whole command table.
CommandTable buildCommandTable();

void addAuthCommands(CommandTable& table);    // login, logout, whoami, token
void addSiteCommands(CommandTable& table);    // site, org
void addPersonCommands(CommandTable& table);  // person, key
void addNodeCommands(CommandTable& table);    // node, nodegroup, tagtype
void addPolicyCommands(CommandTable& table);  // blacklist, plckey, events
void addSliceCommands(CommandTable& table);   // slice, ticket
void addSyncCommands(CommandTable& table);    // sync
void addAuditCommands(CommandTable& table);   // audit

// Shared by several areas -------------------------------------------------

// The NOT_FOUND error PLC would give for a `what` named `name` ("site",
// "princeton"), for show commands built on list calls.
RpcError notFound(std::string_view what, std::string_view name);

// The single item a show command asked for, or notFound.
template <class T>
const T& theOne(const google::protobuf::RepeatedPtrField<T>& items, std::string_view what,
                std::string_view name) {
  if (items.empty()) throw notFound(what, name);
  return items[0];
}

// A password from --password-stdin (one line of stdin), --password-file
// (its first line) or, with neither, a prompt on the terminal with echo off
// (asked twice when `confirm`). Throws UsageError when there is no terminal
// to prompt on, LocalError when the password is empty.
std::string readPassword(const ParsedArgs& args, bool confirm);
// The password options that readPassword understands.
std::vector<FlagSpec> passwordFlags(std::string_view purpose);

// Saves the PLC address and a freshly issued token in the config file;
// returns the file's path.
std::filesystem::path saveSession(Invocation& inv, const v1::LoginResponse& session);

// The value of an optional int32 option, if given.
std::optional<std::int32_t> optionalInt32(const ParsedArgs& args, std::string_view flag);
// An expiry from --expires (absolute time) or --days (from now); nullopt when
// neither is given. Throws UsageError when both are.
std::optional<std::int64_t> expiryFromArgs(const ParsedArgs& args);
std::vector<FlagSpec> expiryFlags(std::string_view what);

}  // namespace plcctl

#include "bench/plc_bench_populate.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>
#include <thread>

#include "bench/plc_bench_workload.h"
#include "proto/ticket.h"
#include "tests/support/plc_client.h"
#include "tests/support/ssh_key.h"

namespace plng::bench {

namespace {

namespace pb = planetlab::v1;
using plng::test::PlcClient;
using Clock = std::chrono::steady_clock;

constexpr int kKeysPerPerson = 2;
constexpr const char* kNodeGroup = "alpha";
// One node in this many joins the node group (tag deployment=alpha).
constexpr int kNodeGroupEvery = 10;

std::string newPublicKeyBytes() {
  const auto key = plng::ticket::generateKeyPair().public_key;
  return std::string(reinterpret_cast<const char*>(key.data()), key.size());
}

// "populating: 400/1000 slices" at every tenth of the way, then the time taken.
class Progress {
 public:
  Progress(std::string what, std::size_t total) : what_(std::move(what)), total_(total) {}

  void advance() {
    const std::size_t done = ++done_;
    const std::size_t step = total_ == 0 ? 10 : done * 10 / total_;
    std::lock_guard lock(mutex_);
    if (step <= printedStep_) return;
    printedStep_ = step;
    std::cerr << "populating: " << done << "/" << total_ << " " << what_;
    if (done == total_) {
      const double s = std::chrono::duration<double>(Clock::now() - start_).count();
      char line[96];
      std::snprintf(line, sizeof line, " in %.1f s (%.0f/s)", s,
                    s > 0 ? static_cast<double>(total_) / s : 0.0);
      std::cerr << line;
    }
    std::cerr << "\n";
  }

 private:
  std::string what_;
  std::size_t total_;
  std::atomic<std::size_t> done_{0};
  std::mutex mutex_;
  std::size_t printedStep_ = 0;
  Clock::time_point start_ = Clock::now();
};

struct PersonPlan {
  std::string email;
  std::string loginBase;
  std::string role;  // pi | user
  std::string firstName;
  std::string password;
};

class Populator {
 public:
  Populator(const PopulationSpec& spec, const std::vector<std::shared_ptr<grpc::Channel>>& channels,
            const std::string& adminToken)
      : spec_(spec) {
    for (const auto& channel : channels) admins_.emplace_back(channel, adminToken);
    plan();
  }

  Population run() {
    const auto start = Clock::now();
    addSites();
    addPersons();
    addNodes();
    addNodeGroup();
    addSlices();
    loginMembers();
    fetchPlcKeys();
    population_.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    population_.apiCalls = calls_.load();
    population_.keysPerPerson = kKeysPerPerson;
    population_.persons = static_cast<int>(persons_.size());
    return std::move(population_);
  }

 private:
  // Decides every name and every random choice up front, so a seed reproduces the
  // same database whatever the order the concurrent callers run in.
  void plan() {
    std::mt19937_64 rng(spec_.seed);
    const int siteDigits = digitsFor(spec_.sites);
    for (int s = 0; s < spec_.sites; ++s) sites_.push_back("site" + zeroPadded(s, siteDigits));

    // Members of a site's slices come from its PI and its users.
    std::vector<std::vector<std::string>> memberPool(sites_.size());
    for (std::size_t site = 0; site < sites_.size(); ++site) {
      const std::string& base = sites_[site];
      auto addPerson = [&](const std::string& local, const std::string& role) {
        PersonPlan p;
        p.email = local + "@" + base + ".bench.test";
        p.loginBase = base;
        p.role = role;
        p.firstName = local;
        p.password = "bench-" + local + "-" + base;
        memberPool[site].push_back(p.email);
        persons_.push_back(std::move(p));
      };
      addPerson("pi", "pi");
      for (int u = 1; u <= spec_.membersPerSlice; ++u)
        addPerson("user" + std::to_string(u), "user");
    }

    const int nodeDigits = digitsFor(spec_.nodes);
    for (int n = 0; n < spec_.nodes; ++n) {
      const std::string& base = sites_[static_cast<std::size_t>(n % spec_.sites)];
      nodes_.push_back({"n" + zeroPadded(n, nodeDigits) + "." + base + ".bench.test", base});
    }

    const int sliceDigits = digitsFor(spec_.slices);
    std::vector<std::size_t> nodeIndexes(nodes_.size());
    std::iota(nodeIndexes.begin(), nodeIndexes.end(), std::size_t{0});
    for (int j = 0; j < spec_.slices; ++j) {
      const auto site = static_cast<std::size_t>(j % spec_.sites);
      BenchSlice slice;
      slice.name = sites_[site] + "_s" + zeroPadded(j, sliceDigits);
      std::sample(memberPool[site].begin(), memberPool[site].end(),
                  std::back_inserter(slice.members), spec_.membersPerSlice, rng);
      std::vector<std::size_t> chosen;
      std::sample(nodeIndexes.begin(), nodeIndexes.end(), std::back_inserter(chosen),
                  spec_.nodesPerSlice, rng);
      std::shuffle(chosen.begin(), chosen.end(), rng);
      for (std::size_t n : chosen) slice.nodes.push_back(nodes_[n].hostname);
      population_.slices.push_back(std::move(slice));
    }
  }

  void parallelFor(std::size_t count,
                   const std::function<void(std::size_t, const PlcClient&)>& body) {
    plng::bench::parallelFor(count, spec_.threads, admins_, body);
  }

  // Counts every call, failed or not, for the report.
  template <class Stub, class Request, class Response>
  Response call(const PlcClient& client,
                grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                const std::type_identity_t<Request>& request, const std::string& what,
                bool alreadyExistsIsFine = false) {
    ++calls_;
    return callOrThrow(client, method, request, what, alreadyExistsIsFine);
  }

  void addSites() {
    const int slicesPerSite = (spec_.slices + spec_.sites - 1) / spec_.sites;
    Progress progress("sites", sites_.size());
    parallelFor(sites_.size(), [&](std::size_t i, const PlcClient& admin) {
      pb::AddSiteRequest request;
      request.set_login_base(sites_[i]);
      request.set_name("Benchmark site " + std::to_string(i));
      request.set_url("https://" + sites_[i] + ".bench.test/");
      request.set_max_slices(slicesPerSite);
      request.set_max_slivers(std::max(1000, slicesPerSite * spec_.nodesPerSlice));
      call(admin, &pb::Admin::Stub::AddSite, request, "AddSite " + sites_[i]);
      progress.advance();
    });
  }

  void addPersons() {
    Progress progress("persons", persons_.size());
    parallelFor(persons_.size(), [&](std::size_t i, const PlcClient& admin) {
      const PersonPlan& p = persons_[i];
      pb::AddPersonRequest add;
      add.set_email(p.email);
      add.set_first_name(p.firstName);
      add.set_last_name(p.loginBase);
      add.set_password(p.password);
      add.set_login_base(p.loginBase);
      call(admin, &pb::Admin::Stub::AddPerson, add, "AddPerson " + p.email);

      pb::UpdatePersonRequest enable;
      enable.set_email(p.email);
      enable.set_enabled(true);
      call(admin, &pb::Admin::Stub::UpdatePerson, enable, "UpdatePerson " + p.email + " enabled");

      pb::PersonRoleRequest role;
      role.set_email(p.email);
      role.set_role(p.role);
      role.set_login_base(p.loginBase);
      // A new person may already hold the user role at their primary site.
      call(admin, &pb::Admin::Stub::AddRoleToPerson, role,
           "AddRoleToPerson " + p.email + " " + p.role + "@" + p.loginBase,
           /*alreadyExistsIsFine=*/true);

      for (int k = 0; k < kKeysPerPerson; ++k) {
        pb::AddPersonKeyRequest key;
        key.set_email(p.email);
        key.set_key(plng::test::newSshKey(p.firstName + "@laptop" + std::to_string(k)));
        call(admin, &pb::Admin::Stub::AddPersonKey, key, "AddPersonKey " + p.email);
      }
      progress.advance();
    });
  }

  void addNodes() {
    Progress progress("nodes", nodes_.size());
    parallelFor(nodes_.size(), [&](std::size_t i, const PlcClient& admin) {
      pb::AddNodeRequest request;
      request.set_hostname(nodes_[i].hostname);
      request.set_login_base(nodes_[i].loginBase);
      request.set_public_key(newPublicKeyBytes());
      request.set_boot_state("boot");
      call(admin, &pb::Admin::Stub::AddNode, request, "AddNode " + nodes_[i].hostname);
      if (i % kNodeGroupEvery == 0) {
        pb::SetNodeTagRequest tag;
        tag.set_hostname(nodes_[i].hostname);
        tag.set_tag("deployment");
        tag.set_value(kNodeGroup);
        call(admin, &pb::Admin::Stub::SetNodeTag, tag, "SetNodeTag " + nodes_[i].hostname);
      }
      progress.advance();
    });
  }

  void addNodeGroup() {
    pb::AddNodeGroupRequest request;
    request.set_name(kNodeGroup);
    request.set_tag("deployment");
    request.set_value(kNodeGroup);
    call(admins_.front(), &pb::Admin::Stub::AddNodeGroup, request,
         std::string("AddNodeGroup ") + kNodeGroup);
  }

  void addSlices() {
    Progress progress("slices", population_.slices.size());
    parallelFor(population_.slices.size(), [&](std::size_t i, const PlcClient& admin) {
      const BenchSlice& slice = population_.slices[i];
      pb::AddSliceRequest add;
      add.set_name(slice.name);
      add.set_description("plc_bench slice " + std::to_string(i));
      add.set_url("https://bench.test/" + slice.name);
      if (spec_.nodesPerSlice > 100) add.set_max_nodes(spec_.nodesPerSlice);
      call(admin, &pb::Slice::Stub::AddSlice, add, "AddSlice " + slice.name);

      pb::SliceMembersRequest members;
      members.set_name(slice.name);
      for (const auto& email : slice.members) members.add_emails(email);
      call(admin, &pb::Slice::Stub::AddSliceMembers, members, "AddSliceMembers " + slice.name);

      pb::SliceNodesRequest nodes;
      nodes.set_name(slice.name);
      for (const auto& hostname : slice.nodes) nodes.add_hostnames(hostname);
      call(admin, &pb::Slice::Stub::AddSliceNodes, nodes, "AddSliceNodes " + slice.name);

      auto setTag = [&](const std::string& tag, const std::string& value,
                        const std::string& node = {}, const std::string& nodegroup = {}) {
        pb::SetSliceTagRequest request;
        request.set_slice(slice.name);
        request.set_tag(tag);
        request.set_value(value);
        request.set_node(node);
        request.set_nodegroup(nodegroup);
        call(admin, &pb::Slice::Stub::SetSliceTag, request,
             "SetSliceTag " + slice.name + " " + tag);
      };
      setTag("initscript", "#!/bin/sh\nexec /usr/local/bin/" + slice.name + "-agent\n");
      setTag("vref", "debian12-dev");
      setTag("cpu_share", "64", {}, kNodeGroup);
      setTag("net_max_rate", "20Mbit", slice.nodes.front());
      progress.advance();
    });
  }

  void loginMembers() {
    std::vector<const PersonPlan*> members;
    std::unordered_map<std::string, bool> isMember;
    for (const auto& slice : population_.slices) {
      for (const auto& email : slice.members) isMember[email] = true;
    }
    for (const auto& p : persons_) {
      if (isMember.count(p.email) != 0) members.push_back(&p);
    }
    std::vector<std::string> tokens(members.size());
    Progress progress("member logins", members.size());
    parallelFor(members.size(), [&](std::size_t i, const PlcClient& admin) {
      PlcClient client(admin.channel());
      const grpc::Status status = client.login(members[i]->email, members[i]->password);
      ++calls_;
      if (!status.ok()) {
        throwIfStopRequested();
        throw std::runtime_error("Login " + members[i]->email + ": " +
                                 plng::test::describeStatus(status));
      }
      tokens[i] = client.token();
      progress.advance();
    });
    for (std::size_t i = 0; i < members.size(); ++i) {
      population_.tokens[members[i]->email] = tokens[i];
    }
  }

  void fetchPlcKeys() {
    const auto keys =
        call(admins_.front(), &pb::Admin::Stub::GetPlcKeys, pb::Empty(), "GetPlcKeys");
    population_.plcKeys.assign(keys.keys().begin(), keys.keys().end());
    if (population_.plcKeys.empty()) throw std::runtime_error("GetPlcKeys returned no key");
  }

  struct NodePlan {
    std::string hostname;
    std::string loginBase;
  };

  PopulationSpec spec_;
  std::vector<PlcClient> admins_;  // one per replica
  std::vector<std::string> sites_;
  std::vector<PersonPlan> persons_;
  std::vector<NodePlan> nodes_;
  Population population_;
  std::atomic<std::uint64_t> calls_{0};
};

}  // namespace

std::string zeroPadded(int value, int width) {
  std::string digits = std::to_string(value);
  if (static_cast<int>(digits.size()) < width) {
    digits.insert(0, static_cast<std::size_t>(width) - digits.size(), '0');
  }
  return digits;
}

int digitsFor(int count) { return static_cast<int>(std::to_string(std::max(count - 1, 1)).size()); }

void parallelFor(std::size_t count, int threads, const std::vector<PlcClient>& admins,
                 const std::function<void(std::size_t, const PlcClient&)>& body) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr firstFailure;
  std::mutex failureMutex;
  std::vector<std::thread> workers;
  const int n = std::max(1, std::min<int>(threads, static_cast<int>(count)));
  for (int t = 0; t < n; ++t) {
    workers.emplace_back([&, t] {
      const PlcClient& admin = admins[static_cast<std::size_t>(t) % admins.size()];
      while (!failed && !stopRequested()) {
        const std::size_t i = next++;
        if (i >= count) break;
        try {
          body(i, admin);
        } catch (...) {
          std::lock_guard lock(failureMutex);
          if (!firstFailure) firstFailure = std::current_exception();
          failed = true;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  // A failure that is only the echo of Ctrl-C (plcd got the signal too) reads
  // better as "interrupted".
  throwIfStopRequested();
  if (firstFailure) std::rethrow_exception(firstFailure);
}

Population populate(const PopulationSpec& spec,
                    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                    const std::string& adminToken) {
  if (channels.empty()) throw std::invalid_argument("populate: no plcd to talk to");
  Populator populator(spec, channels, adminToken);
  return populator.run();
}

}  // namespace plng::bench

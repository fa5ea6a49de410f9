// Restarts lose nothing: PostgreSQL restarting under a running plcd, and the node
// streams plcd holds surviving it. (plcd's own restarts: plc_fixture_test.)
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "auth.h"
#include "plc_fixture.h"
#include "ticket.h"

namespace pb = planetlab::v1;
using grpc::StatusCode;
using namespace std::chrono_literals;
using plng::test::PlcClient;
using plng::test::PlcFixture;

namespace {

// Retries a call while PLC reports its database unreachable, as a client would.
template <class F>
grpc::Status untilAvailable(F&& call, std::chrono::seconds limit = 30s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto status = call();
    if (status.error_code() != StatusCode::UNAVAILABLE ||
        std::chrono::steady_clock::now() > deadline) {
      return status;
    }
    std::this_thread::sleep_for(200ms);
  }
}

// Reads a WatchSlivers stream on a thread of its own.
class Watch {
 public:
  Watch(const PlcClient& node, std::int64_t since) : ctx_(node.context(120s)) {
    pb::WatchSliversRequest req;
    req.set_since_version(since);
    reader_ = node.nodeSync().WatchSlivers(ctx_.get(), req);
    thread_ = std::thread([this] {
      pb::NodeState state;
      while (reader_->Read(&state)) {
        std::lock_guard lock(mutex_);
        states_.push_back(state);
        cv_.notify_all();
      }
    });
  }
  ~Watch() {
    ctx_->TryCancel();
    thread_.join();
    reader_->Finish().ok();
  }
  std::optional<pb::NodeState> next(std::chrono::seconds timeout) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [&] { return !states_.empty(); })) return std::nullopt;
    auto s = states_.front();
    states_.pop_front();
    return s;
  }

 private:
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReader<pb::NodeState>> reader_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<pb::NodeState> states_;
  std::thread thread_;
};

}  // namespace

TEST_CASE_METHOD(PlcFixture, "PostgreSQL restarting under plcd loses nothing", "[plc][pg]") {
  pb::AddSiteRequest site;
  site.set_login_base("princeton");
  site.set_name("Princeton");
  REQUIRE_OK(admin().call(&pb::Admin::Stub::AddSite, site).first);

  auto node_key = plng::ticket::generateKeyPair();
  pb::AddNodeRequest node;
  node.set_hostname("n1.princeton.edu");
  node.set_login_base("princeton");
  node.set_public_key(std::string(reinterpret_cast<const char*>(node_key.public_key.data()), 32));
  REQUIRE_OK(admin().call(&pb::Admin::Stub::AddNode, node).first);

  pb::AddSliceRequest slice;
  slice.set_name("princeton_before");
  REQUIRE_OK(admin().call(&pb::Slice::Stub::AddSlice, slice).first);
  pb::SliceNodesRequest bind;
  bind.set_name("princeton_before");
  bind.add_hostnames("n1.princeton.edu");
  REQUIRE_OK(admin().call(&pb::Slice::Stub::AddSliceNodes, bind).first);

  // The node logs in with its key and opens its stream.
  pb::NodeChallengeRequest ask;
  ask.set_hostname("n1.princeton.edu");
  auto [asked, challenge] = anonymous().call(&pb::Auth::Stub::GetNodeChallenge, ask);
  REQUIRE_OK(asked);
  pb::NodeLoginRequest login;
  login.set_hostname("n1.princeton.edu");
  login.set_nonce(challenge.nonce());
  auto sig = plng::ticket::sign(node_key.private_key,
                                plng::plc::nodeLoginMessage("n1.princeton.edu", challenge.nonce()));
  login.set_signature(std::string(reinterpret_cast<const char*>(sig.data()), sig.size()));
  auto [logged_in, node_session] = anonymous().call(&pb::Auth::Stub::NodeLogin, login);
  REQUIRE_OK(logged_in);
  PlcClient node_client = anonymous().withToken(node_session.token());

  Watch watch(node_client, 0);
  auto first = watch.next(10s);
  REQUIRE(first.has_value());
  REQUIRE(first->slivers_size() == 1);

  // Concurrent callers make plcd open several pooled connections.
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        admin().call(&pb::Slice::Stub::GetSlices, pb::GetSlicesRequest{}).first.ok();
      }
    });
  }
  for (auto& t : callers) t.join();

  auto& server = pg();
  server.stop();
  // While the database is down, calls fail with UNAVAILABLE and a message to act on.
  auto [down, _] = admin().call(&pb::Slice::Stub::GetSlices, pb::GetSlicesRequest{});
  CHECK(down.error_code() == StatusCode::UNAVAILABLE);
  CHECK(down.error_message().find("database") != std::string::npos);
  server.start();

  // Everything written before is still there, and the session still works.
  pb::GetSlicesResponse listed;
  REQUIRE_OK(untilAvailable(
      [&] { return admin().call(&pb::Slice::Stub::GetSlices, pb::GetSlicesRequest{}, &listed); }));
  REQUIRE(listed.slices_size() == 1);
  CHECK(listed.slices(0).name() == "princeton_before");
  CHECK(listed.slices(0).nodes(0) == "n1.princeton.edu");

  // Every pooled connection died with the server; none of them may surface as an
  // error now that PostgreSQL is back.
  for (int i = 0; i < 40; ++i) {
    CHECK_OK(admin().call(&pb::Slice::Stub::GetSlices, pb::GetSlicesRequest{}).first);
  }

  // A change after the restart still reaches the stream opened before it (the
  // change listener reconnected).
  slice.set_name("princeton_after");
  REQUIRE_OK(admin().call(&pb::Slice::Stub::AddSlice, slice).first);
  bind.set_name("princeton_after");
  REQUIRE_OK(admin().call(&pb::Slice::Stub::AddSliceNodes, bind).first);
  std::optional<pb::NodeState> state;
  do {
    state = watch.next(20s);
    REQUIRE(state.has_value());
  } while (state->slivers_size() < 2);
  CHECK(state->version() > first->version());
}

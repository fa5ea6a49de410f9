// Runs a rollback step when a scope is left early, unless dismissed.
//
//   ScopeGuard remove_tmp([&] { ::unlink(tmp.c_str()); });
//   ...steps that may throw...
//   remove_tmp.dismiss();  // success: keep it
#pragma once

#include <utility>

namespace plng::base {

template <typename Rollback>
class [[nodiscard]] ScopeGuard {
 public:
  explicit ScopeGuard(Rollback rollback) : rollback_(std::move(rollback)) {}
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;
  // A rollback step must not throw: it may run while an exception unwinds.
  ~ScopeGuard() {
    if (armed_) rollback_();
  }
  void dismiss() { armed_ = false; }

 private:
  Rollback rollback_;
  bool armed_ = true;
};

}  // namespace plng::base

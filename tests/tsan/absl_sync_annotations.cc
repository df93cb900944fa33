// ThreadSanitizer over Debian's Abseil.
//
// Debian builds Abseil without -fsanitize=thread, so TSan cannot see the happens-before edges that
// absl::Mutex, absl::CondVar, absl::Notification, absl::BlockingCounter and absl::Barrier create:
// every access to ABSL_GUARDED_BY data looks like a race (in our own frames, where no suppression
// by library can tell it from a real one). Linked into every binary of --config=tsan, this file
// interposes the out-of-line synchronisation functions of libabsl_synchronization: each calls the
// real one (found with dlsym(RTLD_NEXT)) and tells TSan about the release/acquire it performs.
// TSan then checks our code against the real synchronisation, and races on anything not
// protected by these primitives are still reported. gRPC's internal absl::Mutex calls go through
// the same functions, so the edges gRPC creates with them become visible too.
//
// Notes: reader locks are modelled like writer locks (a release by one reader is acquired by the
// next; real readers must not write anyway). Only the annotations are added; the real functions
// do all the work, in all configs this file is not linked (see .bazelrc `build:tsan`).
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/barrier.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace {

template <typename Fn>
Fn Real(const char* mangled) {
  void* p = dlsym(RTLD_NEXT, mangled);
  if (p == nullptr) {
    std::fprintf(stderr, "absl_sync_annotations: %s not found: %s\n", mangled, dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(p);
}

#define REAL(type, mangled) static const auto real = Real<type>(mangled)

void Acquire(const void* p) { __tsan_acquire(const_cast<void*>(p)); }
void Release(const void* p) { __tsan_release(const_cast<void*>(p)); }

// Notification's flag is read inline (HasBeenNotified) by instrumented code: release on it too.
// Its layout: {Mutex mutex_; std::atomic<bool> notified_yet_;}.
const void* NotifiedFlag(const absl::Notification* n) {
  return reinterpret_cast<const char*>(n) + sizeof(absl::Mutex);
}

// absl evaluates a waiter's Condition while holding the mutex internally, in the waiting thread or
// in the one unlocking: the evaluation must see the mutex acquired, and the thread evaluating
// must see the waiter's set-up. The wrapping Condition uses the (void*) constructor, which lives in
// the uninstrumented library, so TSan does not look at the Condition object itself.
class GuardedCondition {
 public:
  GuardedCondition(const absl::Condition* cond, absl::Mutex* mu) : cond_(cond), mu_(mu) {
    Release(this);  // published to whichever thread evaluates it
  }
  absl::Condition Wrapped() { return absl::Condition(&GuardedCondition::Eval, this); }
  // The waiter calls this after the real call returned, before `this` (on its stack) goes away:
  // every evaluation, in whatever thread, happened before.
  void Retire() { Acquire(this); }

 private:
  static bool Eval(void* arg) {
    Acquire(arg);
    auto* g = static_cast<GuardedCondition*>(arg);
    Acquire(g->mu_);
    const bool r = g->cond_->Eval();
    // The evaluator holds the mutex: whoever takes it next must see what the evaluation read.
    Release(g->mu_);
    Release(arg);
    return r;
  }
  const absl::Condition* const cond_;
  absl::Mutex* const mu_;
};

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  real(this);
  Acquire(this);
}

void Mutex::ReaderLock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  real(this);
  Acquire(this);
}

bool Mutex::TryLock() {
  REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}

void Mutex::Unlock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  Release(this);
  real(this);
}

void Mutex::ReaderUnlock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  Release(this);
  real(this);
}

void Mutex::LockWhen(const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&), "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  GuardedCondition g(&cond, this);
  real(this, g.Wrapped());
  g.Retire();
  Acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&),
       "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  GuardedCondition g(&cond, this);
  real(this, g.Wrapped());
  g.Retire();
  Acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
       "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  GuardedCondition g(&cond, this);
  const bool r = real(this, g.Wrapped(), timeout);
  g.Retire();
  Acquire(this);  // held either way
  return r;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Time),
       "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  GuardedCondition g(&cond, this);
  const bool r = real(this, g.Wrapped(), deadline);
  g.Retire();
  Acquire(this);
  return r;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
       "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  GuardedCondition g(&cond, this);
  const bool r = real(this, g.Wrapped(), timeout);
  g.Retire();
  Acquire(this);
  return r;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Time),
       "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  GuardedCondition g(&cond, this);
  const bool r = real(this, g.Wrapped(), deadline);
  g.Retire();
  Acquire(this);
  return r;
}

// Await* release the mutex while waiting and hold it again on return.
void Mutex::Await(const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&), "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  GuardedCondition g(&cond, this);
  Release(this);
  real(this, g.Wrapped());
  g.Retire();
  Acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
       "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  GuardedCondition g(&cond, this);
  Release(this);
  const bool r = real(this, g.Wrapped(), timeout);
  g.Retire();
  Acquire(this);
  return r;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Time),
       "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  GuardedCondition g(&cond, this);
  Release(this);
  const bool r = real(this, g.Wrapped(), deadline);
  g.Retire();
  Acquire(this);
  return r;
}

void CondVar::Wait(Mutex* mu) {
  REAL(void (*)(CondVar*, Mutex*), "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  Release(mu);
  real(this, mu);
  Acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  REAL(bool (*)(CondVar*, Mutex*, absl::Duration),
       "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  Release(mu);
  const bool r = real(this, mu, timeout);
  Acquire(mu);
  return r;
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  REAL(bool (*)(CondVar*, Mutex*, absl::Time),
       "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  Release(mu);
  const bool r = real(this, mu, deadline);
  Acquire(mu);
  return r;
}

void Notification::Notify() {
  REAL(void (*)(Notification*), "_ZN4absl7debian312Notification6NotifyEv");
  Release(this);
  Release(NotifiedFlag(this));
  real(this);
}

void Notification::WaitForNotification() const {
  REAL(void (*)(const Notification*), "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  Acquire(this);
}

bool Notification::WaitForNotificationWithTimeout(absl::Duration timeout) const {
  REAL(bool (*)(const Notification*, absl::Duration),
       "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool r = real(this, timeout);
  if (r) Acquire(this);
  return r;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  REAL(bool (*)(const Notification*, absl::Time),
       "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool r = real(this, deadline);
  if (r) Acquire(this);
  return r;
}

bool BlockingCounter::DecrementCount() {
  REAL(bool (*)(BlockingCounter*), "_ZN4absl7debian315BlockingCounter14DecrementCountEv");
  Release(this);
  return real(this);
}

void BlockingCounter::Wait() {
  REAL(void (*)(BlockingCounter*), "_ZN4absl7debian315BlockingCounter4WaitEv");
  real(this);
  Acquire(this);
}

bool Barrier::Block() {
  REAL(bool (*)(Barrier*), "_ZN4absl7debian37Barrier5BlockEv");
  Release(this);
  const bool r = real(this);
  Acquire(this);
  return r;
}

ABSL_NAMESPACE_END
}  // namespace absl

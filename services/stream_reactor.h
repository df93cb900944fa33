// StreamReactor<Msg>: a server-streaming callback reactor fed from any thread.
//
// Producers (driver threads, lifecycle threads) never hold the reactor: they hold the
// shared `Channel`, which outlives it. The channel keeps one write in flight, queues the rest
// (coalescing adjacent mergeable messages, so a slow reader costs memory proportional to the text,
// not to the token count), sends the last message together with the status when it can (one gRPC
// operation instead of two), and finishes the RPC exactly once: on the producer's Finish(), or with
// CANCELLED when the client cancels or the deadline passes (then the producer's OnCancel hook
// runs so upstream work stops). gRPC operations are always started without the channel lock held,
// because gRPC may run a reaction inline.
//
// A client that stops reading stalls the write in flight (HTTP/2 flow control) and the queue grows.
// With `StreamLimits`, the channel gives up on such a client: once the queue holds more than
// `max_pending_bytes`, or a Push finds one write in flight for longer than `write_stall`, the
// OnCancel hook runs (the upstream prediction stops), the queue is dropped and the RPC finishes with
// RESOURCE_EXHAUSTED naming the limit — the client sees it after what it had not read yet.
// Producers that must never lose a message in this way (WatchModels counts its drops itself) pull
// at the reader's pace instead: SetOnIdle runs when the queue is empty and no write is in flight.
#ifndef LMGATE_SERVICES_STREAM_REACTOR_H_
#define LMGATE_SERVICES_STREAM_REACTOR_H_

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lmgate::services {

// Bounds of one stream's send queue; zero = no bound. Config `limits.*` (deploy/CONFIG.md).
struct StreamLimits {
  size_t max_pending_bytes = 0;  // serialized bytes queued behind the write in flight
  absl::Duration write_stall = absl::ZeroDuration();  // longest a write may stay in flight
};

template <typename Msg>
class StreamReactor : public grpc::ServerWriteReactor<Msg> {
 public:
  // Merges `next` into `last` if they can travel as one message; returns whether it did.
  using MergeFn = std::function<bool(Msg* last, const Msg& next)>;

  // Thread-safe.
  class Channel {
   public:
    // Queues `msg`. Returns false once the stream is finished (client gone): stop producing.
    bool Push(Msg msg) {
      StreamReactor* start = nullptr;
      const Msg* to_write = nullptr;
      std::function<void()> hook;
      StreamReactor* finish_now = nullptr;
      grpc::Status give_up;
      {
        absl::MutexLock lock(&mu_);
        if (finishing_ || final_status_) return false;
        if (!write_in_flight_ && pending_.empty()) {
          in_flight_ = std::move(msg);
          write_in_flight_ = true;
          write_started_ = absl::Now();
          start = reactor_;
          to_write = &in_flight_;
          SendMetadataLocked();
        } else {
          bool merged = false;
          if (!pending_.empty() && merge_) {
            const size_t before = pending_.back().ByteSizeLong();
            merged = merge_(&pending_.back(), msg);
            if (merged) pending_bytes_ += pending_.back().ByteSizeLong() - before;
          }
          if (!merged) {
            pending_bytes_ += msg.ByteSizeLong();
            pending_.push_back(std::move(msg));
          }
          finish_now = GiveUpIfOverLimitsLocked(&hook);
          if (finish_now) give_up = *final_status_;
        }
      }
      if (start) start->StartWrite(to_write);
      if (hook) hook();
      if (finish_now) finish_now->Finish(std::move(give_up));
      return finish_now == nullptr;
    }

    // `limits` apply to Pushes from now on. Call before producing.
    void SetLimits(StreamLimits limits) {
      absl::MutexLock lock(&mu_);
      limits_ = limits;
    }

    // `fn` runs (without the lock, on gRPC's or the producer's thread) each time a write completes
    // and nothing is queued behind it: the moment a pulling producer may Push the next message.
    void SetOnIdle(std::function<void()> fn) {
      absl::MutexLock lock(&mu_);
      on_idle_ = std::move(fn);
    }

    // Nothing queued and no write in flight (a Push now starts a write at once).
    bool idle() const {
      absl::MutexLock lock(&mu_);
      return !write_in_flight_ && pending_.empty() && !finishing_ && !final_status_;
    }

    // Finishes the RPC with `status` once everything queued has been written. Only the first
    // Finish (or the client's cancellation) counts.
    void Finish(grpc::Status status) {
      StreamReactor* finish_now = nullptr;
      grpc::Status final_copy;
      {
        absl::MutexLock lock(&mu_);
        if (finishing_ || final_status_) return;
        final_status_ = std::move(status);
        if (!write_in_flight_ && pending_.empty()) {
          finishing_ = true;
          SendMetadataLocked();
          finish_now = reactor_;
          final_copy = *final_status_;
        }
      }
      if (finish_now) finish_now->Finish(std::move(final_copy));
    }

    // Queues `last` and finishes with `status` once everything before it is written. When nothing
    // is queued, the message, the initial metadata and the status go out as one gRPC operation
    // (StartWriteAndFinish); otherwise the last queued write carries the status. Only the first
    // Finish/FinishWith (or the client's cancellation) counts.
    void FinishWith(Msg last, grpc::Status status) {
      StreamReactor* start = nullptr;
      grpc::Status st;
      {
        absl::MutexLock lock(&mu_);
        if (finishing_ || final_status_) return;
        final_status_ = std::move(status);
        if (write_in_flight_ || !pending_.empty()) {
          pending_.push_back(std::move(last));  // kept whole: OnWriteDone sends it with the status
          return;
        }
        in_flight_ = std::move(last);
        write_in_flight_ = true;  // never cleared: a write-and-finish has no OnWriteDone
        finishing_ = true;
        SendMetadataLocked();
        start = reactor_;
        st = *final_status_;
      }
      if (start) start->StartWriteAndFinish(&in_flight_, grpc::WriteOptions(), std::move(st));
    }

    // Adds initial metadata; ignored once the first message or the status has gone out.
    void AddInitialMetadata(const std::string& key, const std::string& value) {
      absl::MutexLock lock(&mu_);
      if (!metadata_sent_) metadata_.emplace_back(key, value);
    }

    // Sets initial metadata `key` to `value`, replacing a value set before (one header per
    // key); ignored once the first message or the status has gone out.
    void SetInitialMetadata(const std::string& key, const std::string& value) {
      absl::MutexLock lock(&mu_);
      if (metadata_sent_) return;
      for (auto& [k, v] : metadata_) {
        if (k == key) {
          v = value;
          return;
        }
      }
      metadata_.emplace_back(key, value);
    }

    // Adds trailing metadata; ignored once the RPC is finishing (the status is on its way).
    void AddTrailingMetadata(const std::string& key, const std::string& value) {
      absl::MutexLock lock(&mu_);
      // The reactor (and ctx_) lives until OnDone, which follows Finish; gRPC reads the trailers
      // only at Finish, which starts only after finishing_ is set under mu_.
      if (!finishing_ && reactor_ != nullptr) ctx_->AddTrailingMetadata(key, value);
    }

    // `fn` runs once if the client cancels (or the deadline passes); at once if it already did.
    void SetOnCancel(std::function<void()> fn) {
      {
        absl::MutexLock lock(&mu_);
        if (!cancelled_) {
          on_cancel_ = std::move(fn);
          return;
        }
      }
      fn();
    }

    bool cancelled() const {
      absl::MutexLock lock(&mu_);
      return cancelled_;
    }

    // The status the stream finished (or will finish) with; OK while it has none yet.
    grpc::Status final_status() const {
      absl::MutexLock lock(&mu_);
      return final_status_.value_or(grpc::Status::OK);
    }

   private:
    friend class StreamReactor;

    // Over a StreamLimits bound: takes the cancel hook (for the caller to run without the lock),
    // drops the queue and records the status; returns the reactor to Finish on, else null. The
    // write in flight stays (gRPC owns it): the status follows it once the client reads again.
    StreamReactor* GiveUpIfOverLimitsLocked(std::function<void()>* hook)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      std::string why;
      if (limits_.max_pending_bytes > 0 && pending_bytes_ > limits_.max_pending_bytes) {
        why = absl::StrCat("the client did not read: more than ", limits_.max_pending_bytes,
                           " bytes of this stream are waiting to be sent "
                           "(limits.stream_max_pending_bytes); the generation was cancelled");
      } else if (limits_.write_stall > absl::ZeroDuration() && write_in_flight_ &&
                 absl::Now() - write_started_ > limits_.write_stall) {
        why = absl::StrCat("the client did not read for ",
                           absl::FormatDuration(limits_.write_stall),
                           " (limits.stream_write_stall_seconds); the generation was cancelled");
      } else {
        return nullptr;
      }
      *hook = std::move(on_cancel_);
      on_cancel_ = nullptr;
      pending_.clear();
      pending_bytes_ = 0;
      final_status_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, why);
      finishing_ = true;
      return reactor_;
    }

    void SendMetadataLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (metadata_sent_) return;
      metadata_sent_ = true;
      for (auto& [k, v] : metadata_) ctx_->AddInitialMetadata(k, v);
    }

    void OnWriteDone(bool ok) {
      StreamReactor* start = nullptr;
      StreamReactor* finish_now = nullptr;
      bool with_status = false;  // the write carries the final status
      grpc::Status st;
      std::function<void()> on_idle;
      {
        absl::MutexLock lock(&mu_);
        write_in_flight_ = false;
        if (!ok) {
          // The stream broke (client gone); OnCancel follows or already ran.
          pending_.clear();
          pending_bytes_ = 0;
          if (!final_status_) final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "stream broken");
        }
        if (!pending_.empty() && !finishing_) {
          in_flight_ = std::move(pending_.front());
          pending_.pop_front();
          pending_bytes_ -= std::min(pending_bytes_, in_flight_.ByteSizeLong());
          write_in_flight_ = true;
          write_started_ = absl::Now();
          start = reactor_;
          if (pending_.empty() && final_status_) {
            with_status = true;
            finishing_ = true;
            st = *final_status_;
          }
        } else if (final_status_ && !finishing_) {
          finishing_ = true;
          finish_now = reactor_;
          st = *final_status_;
        } else if (!final_status_) {
          on_idle = on_idle_;
        }
      }
      if (start && with_status) {
        start->StartWriteAndFinish(&in_flight_, grpc::WriteOptions(), std::move(st));
      } else if (start) {
        start->StartWrite(&in_flight_);
      }
      if (finish_now) finish_now->Finish(std::move(st));
      if (on_idle) on_idle();
    }

    void OnCancel() {
      std::function<void()> hook;
      StreamReactor* finish_now = nullptr;
      grpc::Status final_copy;
      {
        absl::MutexLock lock(&mu_);
        cancelled_ = true;
        hook = std::move(on_cancel_);
        on_cancel_ = nullptr;
        pending_.clear();
        pending_bytes_ = 0;
        if (!final_status_) {
          final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the call");
        }
        if (!write_in_flight_ && !finishing_) {
          finishing_ = true;
          finish_now = reactor_;
          final_copy = *final_status_;
        }
      }
      if (hook) hook();
      if (finish_now) finish_now->Finish(std::move(final_copy));
    }

    void OnDone() {
      std::function<void()> hook;
      std::function<void()> on_idle;
      {
        absl::MutexLock lock(&mu_);
        reactor_ = nullptr;
        hook = std::move(on_cancel_);
        on_cancel_ = nullptr;
        on_idle = std::move(on_idle_);
        on_idle_ = nullptr;
      }
      // The call is over, so the cancel hook can never run. Dropping it breaks the cycle
      // channel -> hook -> producer (e.g. a GenerateRun) -> sink -> channel, which otherwise
      // leaked every stream's objects; `hook` is destroyed here, outside the lock.
    }

    mutable absl::Mutex mu_;
    StreamReactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;
    grpc::CallbackServerContext* ctx_ = nullptr;
    MergeFn merge_;
    Msg in_flight_;  // owned by the write in flight; touched only when write_in_flight_ flips
    std::deque<Msg> pending_ ABSL_GUARDED_BY(mu_);
    size_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // serialized size of pending_
    StreamLimits limits_ ABSL_GUARDED_BY(mu_);
    absl::Time write_started_ ABSL_GUARDED_BY(mu_);
    std::function<void()> on_idle_ ABSL_GUARDED_BY(mu_);
    bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
    bool finishing_ ABSL_GUARDED_BY(mu_) = false;  // Finish() called on the reactor
    bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
    bool metadata_sent_ ABSL_GUARDED_BY(mu_) = false;
    std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);
    std::vector<std::pair<std::string, std::string>> metadata_ ABSL_GUARDED_BY(mu_);
    std::function<void()> on_cancel_ ABSL_GUARDED_BY(mu_);
  };

  StreamReactor(grpc::CallbackServerContext* ctx, MergeFn merge = nullptr)
      : channel_(std::make_shared<Channel>()) {
    channel_->reactor_ = this;
    channel_->ctx_ = ctx;
    channel_->merge_ = std::move(merge);
  }

  const std::shared_ptr<Channel>& channel() const { return channel_; }

  void OnWriteDone(bool ok) override { channel_->OnWriteDone(ok); }
  void OnCancel() override { channel_->OnCancel(); }
  void OnDone() override {
    channel_->OnDone();
    delete this;
  }

 private:
  std::shared_ptr<Channel> channel_;
};

}  // namespace lmgate::services

#endif  // LMGATE_SERVICES_STREAM_REACTOR_H_

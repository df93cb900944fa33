// TSan defaults of lmgate's --config=tsan binaries, compiled into every one of them (with
// absl_sync_annotations.cc), so subprocesses such as lmgate and the emulator get them too;
// TSAN_OPTIONS from the environment is applied on top.
//
// Debian's libraries (gRPC, protobuf, Abseil, libcurl, ...) are not instrumented: TSan cannot see
// how they synchronise, so the memory operations their code performs through TSan's interceptors
// (malloc/free, memcpy, ...) must not be judged: ignore_noninstrumented_modules. Our own code is
// instrumented and fully checked. Suppressions are for what remains inside those libraries only;
// never a frame of ours, never a type of ours. Each entry says why.
extern "C" const char* __tsan_default_options() { return "ignore_noninstrumented_modules=1"; }

extern "C" const char* __tsan_default_suppressions() {
  return
      // Abseil's deadlock detector (on in tests: Debian builds Abseil without NDEBUG) guards its
      // lock graph with an internal SpinLock TSan does not see; the graph is absl-private.
      "race:absl::*::synchronization_internal::GraphCycles\n"
      // gRPC's C++ call objects (CallOpSet and its ops, InterceptorBatchMethodsImpl, the callback
      // tags) are inline header code, so instrumented in our binaries, but gRPC hands them between
      // threads with synchronisation TSan cannot see: atomics in gRPC core and in libgrpc++
      // (e.g. ServerCallbackCall::MaybeDone's reference count, the empty batch that resumes a
      // call after a server interceptor, the executor). Each entry names a gRPC function that
      // only touches gRPC's own objects and calls no code of ours.
      // Top frame only: these are leaves.
      "race_top:grpc::internal::CallOpSet\n"
      "race_top:grpc::internal::InterceptorBatchMethodsImpl\n"
      "race_top:grpc::internal::CallOpSendMessage::FinishOp\n"
      "race_top:grpc::internal::CallOpSendInitialMetadata::FinishOp\n"
      "race_top:grpc::internal::Call::\n"
      "race_top:grpc::ByteBuffer::Clear\n"
      "race_top:grpc::ByteBuffer::Swap\n"
      "race_top:grpc::internal::CallOpServerSendStatus::FinishOp\n"
      "race_top:grpc::internal::CallbackWithSuccessTag::Run\n"
      // The same tag's entry point: Set() fills it on the thread that starts the op (e.g. a
      // reactor's Finish), gRPC core's completion queue runs it on another.
      "race_top:grpc::internal::CallbackWithSuccessTag::StaticRun\n"
      // The callback tags torn down by gRPC once the call is done (CallOnDone on gRPC's
      // executor, after MaybeDone's uninstrumented reference count reached zero); the
      // std::function it clears holds gRPC's own lambda.
      "race:grpc::internal::CallbackWithSuccessTag::Clear\n"
      // Anywhere in the stack: their top frames are libstdc++'s std::function internals (the
      // function objects they hold are gRPC's own lambdas).
      "race:grpc::internal::InterceptorBatchMethodsImpl::InterceptorBatchMethodsImpl\n"
      "race:grpc::internal::InterceptorBatchMethodsImpl::~InterceptorBatchMethodsImpl\n"
      "race:grpc::internal::InterceptorBatchMethodsImpl::SetSendMessage\n";
}

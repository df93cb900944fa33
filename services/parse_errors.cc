#include "services/parse_errors.h"

#include "absl/strings/str_cat.h"

namespace lmgate::services {
namespace {

using grpc::experimental::InterceptionHookPoints;

class ParseErrorInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit ParseErrorInterceptor(const char* method) : method_(method) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (!seen_request_ && m->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      seen_request_ = true;
      // The server deserialises the request before this hook; null = it could not.
      parse_failed_ = m->GetRecvMessage() == nullptr;
    }
    if (parse_failed_ && m->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      m->ModifySendStatus(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("the request of ", method_,
                       " could not be parsed as its protobuf message (string fields must be "
                       "valid UTF-8; the bytes must be the message's wire encoding)")));
    }
    m->Proceed();
  }

 private:
  const char* const method_;  // gRPC's static method name
  bool seen_request_ = false;
  bool parse_failed_ = false;
};

class Factory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new ParseErrorInterceptor(info->method());
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeParseErrorInterceptorFactory() {
  return std::make_unique<Factory>();
}

}  // namespace lmgate::services

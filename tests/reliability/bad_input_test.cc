// Bad input through gRPC: every request is refused with INVALID_ARGUMENT (or gRPC's own
// RESOURCE_EXHAUSTED for a message over the size limit) and a message that says what is wrong,
// and nothing reaches the LM Studio host.
#include <string>
#include <vector>

#include <grpcpp/generic/generic_stub.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "tests/reliability/fixture.h"

namespace lmgate::reliability {
namespace {

class BadInputTest : public LmgateFixture {
 protected:
  void SetUp() override {
    LmgateFixture::SetUp();
    before_ = emu_->Stats();
  }
  void TearDown() override {
    // Nothing was sent upstream: no prediction, load, embedding or tokenizer call.
    const auto after = emu_->Stats();
    for (const char* k : {"predictions_started", "loads_started", "embeddings", "unloads"}) {
      EXPECT_EQ(after[k], before_[k]) << k;
    }
    for (const char* i : {"sdk", "rest_v0", "rest_v1", "openai"}) {
      EXPECT_EQ(after["requests_by_interface"][i], before_["requests_by_interface"][i]) << i;
    }
    LmgateFixture::TearDown();
  }

  // Sends raw bytes as the request of `method` (e.g. "/lmgate.v1.Inference/Chat").
  grpc::Status Raw(const std::string& method, const std::string& bytes) {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    absl::Notification done;
    grpc::Status status;
    grpc::StubOptions options;
    // Server-streaming methods also answer a unary-shaped call: the status is what counts.
    stub.UnaryCall(&ctx, method, options, &request, &response, [&](grpc::Status s) {
      status = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();
    return status;
  }

  grpc::Status ChatStatus(const v1::ChatRequest& req) {
    return Chat(req, absl::Seconds(10)).status;
  }

  nlohmann::json before_;
};

void ExpectInvalid(const grpc::Status& st, const std::string& mentions, const std::string& what) {
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << what << ": " << st.error_code() << " " << st.error_message();
  EXPECT_NE(st.error_message().find(mentions), std::string::npos)
      << what << ": \"" << st.error_message() << "\" does not mention " << mentions;
}

TEST_F(BadInputTest, InvalidUtf8InAStringFieldIsInvalidArgumentOnEveryMethod) {
  // Field 1 (model) = 0xFF 0xFE: a proto3 string that is not UTF-8.
  const std::string bad_model("\x0a\x02\xff\xfe", 4);
  for (const char* method :
       {"/lmgate.v1.Inference/Chat", "/lmgate.v1.Inference/Complete", "/lmgate.v1.Inference/Embed",
        "/lmgate.v1.Inference/Tokenize", "/lmgate.v1.Inference/CountTokens",
        "/lmgate.v1.ModelManager/LoadModel", "/lmgate.v1.ModelManager/UnloadModel",
        "/lmgate.v1.ModelManager/GetModel"}) {
    ExpectInvalid(Raw(method, bad_model), "UTF-8", method);
  }
  // Invalid UTF-8 nested in a message's content.
  v1::ChatRequest req = ChatRequest(v1::DRIVER_SDK);
  std::string bytes = req.SerializeAsString();
  const size_t at = bytes.find("gateways");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = '\xc3';  // a lead byte followed by ASCII
  ExpectInvalid(Raw("/lmgate.v1.Inference/Chat", bytes), "UTF-8", "nested content");
}

TEST_F(BadInputTest, BytesThatAreNotAProtobufMessageAreInvalidArgument) {
  for (const std::string& junk : {std::string("\xff\xff\xff\xff\xff", 5), std::string("\x0a\x7f", 2),
                                  std::string("GET / HTTP/1.1\r\n\r\n")}) {
    ExpectInvalid(Raw("/lmgate.v1.Inference/Chat", junk), "could not be parsed", "junk");
  }
}

TEST_F(BadInputTest, OversizedMessagesAreRefusedWithTheLimit) {
  v1::ChatRequest req = ChatRequest(v1::DRIVER_SDK);
  req.mutable_messages(0)->set_content(std::string(5 << 20, 'a'));
  grpc::Status st = ChatStatus(req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_NE(st.error_message().find("larger than max"), std::string::npos) << st.error_message();
  // Under the transport limit but over lmgate's: too many messages.
  v1::ChatRequest many = ChatRequest(v1::DRIVER_SDK);
  for (int i = 0; i < 4100; ++i) *many.add_messages() = many.messages(0);
  ExpectInvalid(ChatStatus(many), "messages", "4101 messages");
  v1::EmbedRequest embed;
  for (int i = 0; i < 3000; ++i) embed.add_inputs("x");
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::EmbedResponse er;
  ExpectInvalid(inference_->Embed(&ctx, embed, &er), "inputs", "3000 inputs");
}

TEST_F(BadInputTest, AbsurdParameterValuesNameTheField) {
  struct Case {
    const char* field;
    void (*set)(v1::ChatRequest*);
  };
  const Case cases[] = {
      {"temperature", [](v1::ChatRequest* r) { r->mutable_sampling()->set_temperature(1e308); }},
      {"temperature", [](v1::ChatRequest* r) { r->mutable_sampling()->set_temperature(NAN); }},
      {"top_p", [](v1::ChatRequest* r) { r->mutable_sampling()->set_top_p(0); }},
      {"top_k", [](v1::ChatRequest* r) { r->mutable_sampling()->set_top_k(-1); }},
      {"min_p", [](v1::ChatRequest* r) { r->mutable_sampling()->set_min_p(-0.5); }},
      {"max_tokens", [](v1::ChatRequest* r) { r->mutable_sampling()->set_max_tokens(-5); }},
      {"max_tokens", [](v1::ChatRequest* r) { r->mutable_sampling()->set_max_tokens(0); }},
      {"presence_penalty",
       [](v1::ChatRequest* r) { r->mutable_sampling()->set_presence_penalty(-INFINITY); }},
      {"repeat_penalty", [](v1::ChatRequest* r) { r->mutable_sampling()->set_repeat_penalty(0); }},
      {"stop",
       [](v1::ChatRequest* r) {
         for (int i = 0; i < 17; ++i) r->mutable_sampling()->add_stop("x");
       }},
      {"stop", [](v1::ChatRequest* r) { r->mutable_sampling()->add_stop(""); }},
      {"ttl_hint", [](v1::ChatRequest* r) { r->mutable_ttl_hint()->set_seconds(-100); }},
      {"role", [](v1::ChatRequest* r) { r->mutable_messages(0)->set_role("root"); }},
      {"model", [](v1::ChatRequest* r) { r->set_model(std::string(10000, 'm')); }},
      {"model", [](v1::ChatRequest* r) { r->set_model("qwen\n3"); }},
      {"json_schema",
       [](v1::ChatRequest* r) { r->mutable_structured_output()->set_json_schema("{nope"); }},
      {"parameters_json_schema",
       [](v1::ChatRequest* r) {
         auto* t = r->add_tools();
         t->set_name("f");
         t->set_parameters_json_schema("[1,");
       }},
  };
  for (const Case& c : cases) {
    v1::ChatRequest req = ChatRequest(v1::DRIVER_SDK);
    c.set(&req);
    ExpectInvalid(ChatStatus(req), c.field, c.field);
  }
  v1::LoadModelRequest load;
  load.set_model(kModel);
  load.mutable_config()->set_context_length(-4096);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto reader = models_->LoadModel(&ctx, load);
  v1::LoadModelResponse lr;
  while (reader->Read(&lr)) {
  }
  ExpectInvalid(reader->Finish(), "context_length", "load context_length");
}

TEST_F(BadInputTest, UnknownEnumValuesAreInvalidArgument) {
  v1::ChatRequest a = ChatRequest(v1::DRIVER_SDK);
  a.set_driver(static_cast<v1::Driver>(99));
  ExpectInvalid(ChatStatus(a), "driver", "driver 99");
  v1::ChatRequest b = ChatRequest(v1::DRIVER_SDK);
  b.set_priority(static_cast<v1::Priority>(42));
  ExpectInvalid(ChatStatus(b), "priority", "priority 42");
  v1::ChatRequest c = ChatRequest(v1::DRIVER_SDK);
  c.set_context_overflow_policy(static_cast<v1::ContextOverflowPolicy>(-7));
  ExpectInvalid(ChatStatus(c), "context_overflow_policy", "overflow -7");
  v1::ChatRequest d = ChatRequest(v1::DRIVER_SDK);
  d.mutable_tool_choice()->set_mode(static_cast<v1::ToolChoice::Mode>(9));
  ExpectInvalid(ChatStatus(d), "tool_choice", "tool_choice 9");
  v1::TokenizeRequest t;
  t.set_text("x");
  t.set_driver(static_cast<v1::Driver>(-1));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::TokenizeResponse tr;
  ExpectInvalid(inference_->Tokenize(&ctx, t, &tr), "driver", "tokenize driver -1");
}

TEST_F(BadInputTest, EmptyRequestsAreInvalidArgument) {
  ExpectInvalid(ChatStatus(v1::ChatRequest()), "messages", "empty ChatRequest");
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    auto reader = inference_->Complete(&ctx, v1::CompleteRequest());
    v1::ChatResponse r;
    while (reader->Read(&r)) {
    }
    ExpectInvalid(reader->Finish(), "prompt", "empty CompleteRequest");
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::EmbedResponse r;
    ExpectInvalid(inference_->Embed(&ctx, v1::EmbedRequest(), &r), "inputs", "empty EmbedRequest");
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::UnloadModelResponse r;
    ExpectInvalid(models_->UnloadModel(&ctx, v1::UnloadModelRequest(), &r), "model",
                  "empty UnloadModelRequest");
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::Model r;
    ExpectInvalid(models_->GetModel(&ctx, v1::GetModelRequest(), &r), "model",
                  "empty GetModelRequest");
  }
  // Not here by design (see the protos): an empty LoadModelRequest loads the default model, and
  // an empty TokenizeRequest counts the tokens of "" with it.
}

// {"a":{"a":...1...}} nested `levels` deep, as text (building it with nlohmann would recurse).
std::string DeepJson(int levels) {
  std::string s;
  s.reserve(levels * 6 + 1);
  for (int i = 0; i < levels; ++i) s += R"({"a":)";
  s += "1";
  s.append(levels, '}');
  return s;
}

// Item 1 of issue 13: 20,000 levels overflowed the sdk_ws io thread's stack in nlohmann's
// recursive copies, 100,000 the HTTP drivers'; now refused at validation, before any copy.
TEST_F(BadInputTest, DeeplyNestedJsonIsRefusedPerFieldOnEveryDriver) {
  const std::string deep = DeepJson(100000);
  struct Field {
    const char* name;
    void (*set)(v1::ChatRequest*, const std::string&);
  };
  const Field fields[] = {
      {"tools[0].parameters_json_schema",
       [](v1::ChatRequest* r, const std::string& j) {
         auto* t = r->add_tools();
         t->set_name("f");
         t->set_parameters_json_schema(j);
       }},
      {"structured_output.json_schema",
       [](v1::ChatRequest* r, const std::string& j) {
         r->mutable_structured_output()->set_json_schema(j);
       }},
      {"messages[1].tool_calls[0].arguments",
       [](v1::ChatRequest* r, const std::string& j) {
         auto* m = r->add_messages();
         m->set_role("assistant");
         auto* tc = m->add_tool_calls();
         tc->set_id("c1");
         tc->set_name("f");
         tc->set_arguments(j);
         auto* answer = r->add_messages();
         answer->set_role("tool");
         answer->set_tool_call_id("c1");
         answer->set_content("{}");
       }},
  };
  for (v1::Driver d : kDrivers) {
    for (const Field& f : fields) {
      v1::ChatRequest req = ChatRequest(d);
      f.set(&req, deep);
      const std::string what = absl::StrCat(v1::Driver_Name(d), " ", f.name);
      const grpc::Status st = ChatStatus(req);
      ExpectInvalid(st, f.name, what);
      ExpectInvalid(st, "nested deeper than 64 levels", what);
    }
    v1::CompleteRequest complete;
    complete.set_model(kModel);
    complete.set_driver(d);
    complete.set_prompt("Say hi.");
    complete.mutable_structured_output()->set_json_schema(deep);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    auto reader = inference_->Complete(&ctx, complete);
    v1::ChatResponse r;
    while (reader->Read(&r)) {
    }
    ExpectInvalid(reader->Finish(), "structured_output.json_schema",
                  absl::StrCat(v1::Driver_Name(d), " Complete"));
  }
  // Just over the limit is refused the same way.
  v1::ChatRequest req = ChatRequest(v1::DRIVER_SDK);
  req.mutable_structured_output()->set_json_schema(DeepJson(65));
  ExpectInvalid(ChatStatus(req), "nested deeper than 64 levels", "65 levels");
}

grpc::Status LoadStatus(v1::ModelManager::Stub* stub, const v1::LoadModelRequest& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto reader = stub->LoadModel(&ctx, req);
  v1::LoadModelResponse r;
  while (reader->Read(&r)) {
  }
  return reader->Finish();
}

// Item 15 of issue 13: numeric fields that reached the host.
TEST_F(BadInputTest, OutOfRangeLoadSettingsNameTheFieldAndTheRange) {
  struct Case {
    const char* field;
    const char* mentions;
    void (*set)(v1::LoadConfig*);
  };
  const Case cases[] = {
      {"context_length", "16777216", [](v1::LoadConfig* c) { c->set_context_length(2147483647); }},
      {"rope_frequency_base", "1e+09", [](v1::LoadConfig* c) { c->set_rope_frequency_base(NAN); }},
      {"rope_frequency_base", "1e+09",
       [](v1::LoadConfig* c) { c->set_rope_frequency_base(INFINITY); }},
      {"rope_frequency_base", "1e+09", [](v1::LoadConfig* c) { c->set_rope_frequency_base(1e300); }},
      {"rope_frequency_scale", "1000",
       [](v1::LoadConfig* c) { c->set_rope_frequency_scale(INFINITY); }},
      {"rope_frequency_scale", "1000", [](v1::LoadConfig* c) { c->set_rope_frequency_scale(-2); }},
      {"eval_batch_size", "65536", [](v1::LoadConfig* c) { c->set_eval_batch_size(2147483647); }},
      {"ttl", "8760h", [](v1::LoadConfig* c) { c->mutable_ttl()->set_seconds(1000000000000); }},
      {"ttl", "nanos", [](v1::LoadConfig* c) {
         c->mutable_ttl()->set_seconds(5);
         c->mutable_ttl()->set_nanos(2000000000);
       }},
  };
  for (const Case& c : cases) {
    v1::LoadModelRequest load;
    load.set_model(kModel);
    c.set(load.mutable_config());
    const grpc::Status st = LoadStatus(models_.get(), load);
    ExpectInvalid(st, absl::StrCat("config.", c.field), c.field);
    ExpectInvalid(st, c.mentions, c.field);
  }
  // Above the model's own maximum, which lmgate knows from the host's listing (32768 here).
  v1::LoadModelRequest load;
  load.set_model("google/gemma-3-1b");
  load.mutable_config()->set_context_length(40000);
  const grpc::Status st = LoadStatus(models_.get(), load);
  ExpectInvalid(st, "config.context_length", "40000 for a 32768 model");
  ExpectInvalid(st, "32768", "40000 for a 32768 model");
}

TEST_F(BadInputTest, OutOfRangeRequestNumbersNameTheField) {
  struct Case {
    const char* field;
    void (*set)(v1::ChatRequest*);
  };
  const Case cases[] = {
      {"sampling.top_k", [](v1::ChatRequest* r) { r->mutable_sampling()->set_top_k(2147483647); }},
      {"sampling.max_tokens",
       [](v1::ChatRequest* r) { r->mutable_sampling()->set_max_tokens(2147483647); }},
      {"sampling.temperature",
       [](v1::ChatRequest* r) { r->mutable_sampling()->set_temperature(INFINITY); }},
      {"sampling.frequency_penalty",
       [](v1::ChatRequest* r) { r->mutable_sampling()->set_frequency_penalty(NAN); }},
      {"ttl_hint", [](v1::ChatRequest* r) { r->mutable_ttl_hint()->set_seconds(1000000000000); }},
      {"ttl_hint", [](v1::ChatRequest* r) {
         r->mutable_ttl_hint()->set_seconds(10);
         r->mutable_ttl_hint()->set_nanos(2000000000);
       }},
  };
  for (const Case& c : cases) {
    v1::ChatRequest req = ChatRequest(v1::DRIVER_SDK);
    c.set(&req);
    ExpectInvalid(ChatStatus(req), c.field, c.field);
  }
  {
    v1::EmbedRequest embed;
    embed.add_inputs("one");
    embed.set_priority(static_cast<v1::Priority>(77));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::EmbedResponse er;
    ExpectInvalid(inference_->Embed(&ctx, embed, &er), "priority", "embed priority 77");
  }
  {
    v1::EmbedRequest embed;
    embed.add_inputs("one");
    embed.mutable_ttl_hint()->set_nanos(2000000000);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::EmbedResponse er;
    ExpectInvalid(inference_->Embed(&ctx, embed, &er), "ttl_hint", "embed ttl_hint nanos 2e9");
  }
  {
    v1::UnloadModelRequest unload;
    unload.set_model(kModel);
    unload.set_driver(static_cast<v1::Driver>(99));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::UnloadModelResponse r;
    ExpectInvalid(models_->UnloadModel(&ctx, unload, &r), "driver", "unload driver 99");
  }
  {
    v1::ListModelsRequest list;
    list.set_type(static_cast<v1::ModelType>(9));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::ListModelsResponse r;
    ExpectInvalid(models_->ListModels(&ctx, list, &r), "type", "list type 9");
  }
}

}  // namespace
}  // namespace lmgate::reliability

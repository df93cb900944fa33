#include "services/conversations/store.h"

#include <gtest/gtest.h>

#include <set>

#include "services/admission/clock.h"

namespace lmgate::conversations {
namespace {

StoredResponse Response(const std::string& tenant, const std::string& text,
                        const std::string& id = NewResponseId()) {
  StoredResponse r;
  r.id = id;
  r.tenant = tenant;
  r.model = "m";
  r.instructions = "be brief";
  auto turn = std::make_shared<Turn>();
  backends::Message in;
  in.role = "user";
  in.content = text;
  turn->input.push_back(in);
  turn->output.role = "assistant";
  turn->output.content = "ok";
  r.turns.push_back(turn);
  return r;
}

TEST(ConversationStore, IdsAreRandomWithPrefix) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewResponseId();
    ASSERT_EQ(id.size(), 5u + 32u);
    EXPECT_EQ(id.substr(0, 5), "resp_");
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(ConversationStore, PutGetDeleteOwnTenantOnly) {
  admission::SimulatedClock clock;
  InProcessConversationStore store({}, &clock);
  StoredResponse r = Response("alice", "hello");
  const std::string id = r.id;
  ASSERT_TRUE(store.Put(std::move(r)).ok());
  auto got = store.Get("alice", id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)->turns.at(0)->input.at(0).content, "hello");
  EXPECT_EQ((*got)->created, clock.Now());
  // Another tenant sees the same NOT_FOUND as for an unknown id.
  auto other = store.Get("bob", id);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.Delete("bob", id).code(), absl::StatusCode::kNotFound);
  auto unknown = store.Get("alice", "resp_nope");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(other.status().message().find(id) != std::string::npos, true);
  ASSERT_TRUE(store.Delete("alice", id).ok());
  EXPECT_EQ(store.Get("alice", id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.entries(), 0u);
  EXPECT_EQ(store.bytes(), 0u);
}

TEST(ConversationStore, DuplicateIdRefused) {
  InProcessConversationStore store({});
  ASSERT_TRUE(store.Put(Response("a", "x", "resp_1")).ok());
  EXPECT_EQ(store.Put(Response("a", "y", "resp_1")).code(), absl::StatusCode::kAlreadyExists);
}

TEST(ConversationStore, ExpiresAfterTtlWithoutSleeping) {
  admission::SimulatedClock clock;
  StoreOptions options;
  options.ttl = absl::Seconds(60);
  InProcessConversationStore store(options, &clock);
  StoredResponse r = Response("a", "x");
  const std::string id = r.id;
  ASSERT_TRUE(store.Put(std::move(r)).ok());
  clock.Advance(absl::Seconds(59));
  EXPECT_TRUE(store.Get("a", id).ok());
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(store.Get("a", id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.Delete("a", id).code(), absl::StatusCode::kNotFound);
  // The next Put drops the expired entry (memory is returned, not only hidden).
  ASSERT_TRUE(store.Put(Response("a", "y")).ok());
  EXPECT_EQ(store.entries(), 1u);
}

TEST(ConversationStore, EvictsOldestBeyondMaxEntries) {
  StoreOptions options;
  options.max_entries = 3;
  InProcessConversationStore store(options);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    StoredResponse r = Response("a", "x");
    ids.push_back(r.id);
    ASSERT_TRUE(store.Put(std::move(r)).ok());
  }
  EXPECT_EQ(store.entries(), 3u);
  EXPECT_FALSE(store.Get("a", ids[0]).ok());
  EXPECT_FALSE(store.Get("a", ids[1]).ok());
  EXPECT_TRUE(store.Get("a", ids[2]).ok());
  EXPECT_TRUE(store.Get("a", ids[4]).ok());
}

TEST(ConversationStore, EvictsOldestBeyondMaxBytes) {
  const size_t one = ResponseBytes(Response("a", std::string(1000, 'x')));
  StoreOptions options;
  options.max_bytes = one * 3;
  options.max_conversation_bytes = one * 3;
  InProcessConversationStore store(options);
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    StoredResponse r = Response("a", std::string(1000, 'x'));
    ids.push_back(r.id);
    ASSERT_TRUE(store.Put(std::move(r)).ok());
    EXPECT_LE(store.bytes(), options.max_bytes);
  }
  EXPECT_EQ(store.entries(), 3u);
  EXPECT_FALSE(store.Get("a", ids[6]).ok());
  EXPECT_TRUE(store.Get("a", ids[7]).ok());
}

TEST(ConversationStore, OneConversationOverItsBoundIsRefusedNamingTheKey) {
  StoreOptions options;
  options.max_conversation_bytes = 4096;
  InProcessConversationStore store(options);
  ASSERT_TRUE(store.Put(Response("a", "small")).ok());
  absl::Status st = store.Put(Response("a", std::string(5000, 'x')));
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("conversations.max_conversation_bytes=4096"), std::string::npos)
      << st;
  EXPECT_EQ(store.entries(), 1u);  // nothing evicted for a refused one
}

}  // namespace
}  // namespace lmgate::conversations

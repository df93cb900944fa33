#include "services/admission/identity.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace lmgate::admission {

bool Tenant::AllowsModel(absl::string_view model) const {
  if (models.empty()) return true;
  for (const auto& m : models) {
    if (!m.empty() && m.back() == '*') {
      if (absl::StartsWith(model, absl::string_view(m).substr(0, m.size() - 1))) return true;
    } else if (m == model) {
      return true;
    }
  }
  return false;
}

absl::Status Tenant::CheckModel(absl::string_view model_key, absl::string_view requested) const {
  if (AllowsModel(model_key)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "tenant ", name, " may not use model ", model_key,
      requested.empty() || requested == model_key
          ? ""
          : absl::StrCat(" (\"", requested, "\" is an instance of it)")));
}

std::string Identity::Sha256Hex(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

namespace {

// IPv4 addresses live in the IPv4-mapped IPv6 range (::ffff:a.b.c.d), so that an allowlist entry
// written either way matches a client connecting either way.
constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// Parses a numeric IPv4 or IPv6 address into its 16-byte IPv6 form; `bits` is 32 or 128 (the
// width of the address as written).
bool ParseAddress(const std::string& text, uint8_t out[16], int* bits) {
  uint8_t v4[4];
  if (inet_pton(AF_INET, text.c_str(), v4) == 1) {
    std::copy(kMappedPrefix, kMappedPrefix + 12, out);
    std::copy(v4, v4 + 4, out + 12);
    *bits = 32;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), out) == 1) {
    *bits = 128;
    return true;
  }
  return false;
}

// gRPC peer strings are URIs: "ipv4:10.1.2.3:5000", "ipv6:%5B::1%5D:5000" (brackets and a zone's
// '%' percent-encoded). Returns the address without port, brackets or zone ("" if malformed).
std::string PeerHost(absl::string_view peer) {
  auto hex = [](char c) {
    return absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10;
  };
  std::string decoded;
  for (size_t i = 0; i < peer.size(); ++i) {
    if (peer[i] == '%' && i + 2 < peer.size() && absl::ascii_isxdigit(peer[i + 1]) &&
        absl::ascii_isxdigit(peer[i + 2])) {
      decoded.push_back(static_cast<char>(hex(peer[i + 1]) * 16 + hex(peer[i + 2])));
      i += 2;
    } else {
      decoded.push_back(peer[i]);
    }
  }
  absl::string_view d = decoded;
  std::string host;
  if (absl::ConsumePrefix(&d, "[")) {
    const size_t close = d.find(']');
    if (close == absl::string_view::npos) return "";
    host = std::string(d.substr(0, close));
  } else {
    const size_t colon = d.rfind(':');
    host = std::string(colon == absl::string_view::npos ? d : d.substr(0, colon));
  }
  return host.substr(0, host.find('%'));  // the zone ("fe80::1%eth0") names no address
}

}  // namespace

std::string Identity::KeyWeakness(absl::string_view key) {
  if (key.size() < kMinKeyLength) {
    return absl::StrCat("is ", key.size(), " characters; keys must be at least ", kMinKeyLength);
  }
  // Shipped or documented placeholders, whatever the separators: "replace-me-app-key",
  // "CHANGE_ME...", "your-api-key-here", "example-key-...".
  std::string folded;
  for (char c : key) {
    if (absl::ascii_isalnum(c)) folded.push_back(absl::ascii_tolower(c));
  }
  for (const char* word : {"replaceme", "changeme", "example", "placeholder", "yourkey",
                           "yourapikey", "insertkey", "dummy", "xxxxxxxx"}) {
    if (absl::StrContains(folded, word)) {
      return absl::StrCat("looks like a placeholder (contains \"", word, "\")");
    }
  }
  bool seen[256] = {};
  int distinct = 0;
  for (unsigned char c : key) {
    if (!seen[c]) ++distinct;
    seen[c] = true;
  }
  if (distinct < kMinKeyDistinctChars) {
    return absl::StrCat("has only ", distinct, " distinct characters (at least ",
                        kMinKeyDistinctChars, " needed)");
  }
  return "";
}

absl::StatusOr<Identity::Cidr> Identity::ParseCidr(absl::string_view text) {
  Cidr c;
  absl::string_view addr = text;
  size_t slash = text.find('/');
  if (slash != absl::string_view::npos) addr = text.substr(0, slash);
  int bits = 0;
  if (!ParseAddress(std::string(addr), c.addr, &bits)) {
    return absl::InvalidArgumentError(absl::StrCat("allow_cidrs: \"", text, "\" is not an address"));
  }
  c.prefix = 128;
  if (slash != absl::string_view::npos) {
    int p;
    if (!absl::SimpleAtoi(text.substr(slash + 1), &p) || p < 0 || p > bits) {
      return absl::InvalidArgumentError(absl::StrCat("allow_cidrs: bad prefix in \"", text, "\""));
    }
    c.prefix = p + (128 - bits);  // an IPv4 prefix counts within ::ffff:0:0/96
  }
  return c;
}

absl::StatusOr<std::unique_ptr<Identity>> Identity::Create(const IdentityOptions& options) {
  std::unique_ptr<Identity> id(new Identity());
  id->anonymous_.name = "anonymous";
  id->anonymous_.admin = true;
  for (size_t i = 0; i < options.keys.size(); ++i) {
    const KeyConfig& k = options.keys[i];
    const std::string where = absl::StrCat("keys[", i, "] (", k.tenant.name, ")");
    if (k.tenant.name.empty()) return absl::InvalidArgumentError(where + ": tenant name is empty");
    int sources = !k.key_sha256.empty() + !k.key_env.empty() + !k.key_file.empty() +
                  !k.client_cn.empty();
    if (sources != 1) {
      return absl::InvalidArgumentError(
          where + ": set exactly one of key_sha256, key_env, key_file, client_cn");
    }
    if (!(k.tenant.weight > 0)) return absl::InvalidArgumentError(where + ": weight must be > 0");
    if (!k.client_cn.empty()) {
      if (!id->by_cn_.emplace(k.client_cn, k.tenant).second) {
        return absl::InvalidArgumentError(where + ": client_cn " + k.client_cn + " listed twice");
      }
      continue;
    }
    std::string digest_hex;
    if (!k.key_sha256.empty()) {
      digest_hex = absl::AsciiStrToLower(k.key_sha256);
      if (digest_hex.size() != 64 || digest_hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return absl::InvalidArgumentError(where + ": key_sha256 must be 64 hex digits");
      }
    } else {
      std::string key;
      if (!k.key_env.empty()) {
        const char* v = std::getenv(k.key_env.c_str());
        if (v == nullptr) {
          return absl::NotFoundError(absl::StrCat(where, ": environment variable ", k.key_env,
                                                  " is not set"));
        }
        key = v;
      } else {
        std::ifstream in(k.key_file);
        if (!in) return absl::NotFoundError(absl::StrCat(where, ": cannot read ", k.key_file));
        std::stringstream ss;
        ss << in.rdbuf();
        key = std::string(absl::StripTrailingAsciiWhitespace(ss.str()));
      }
      if (std::string why = KeyWeakness(key); !why.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": the key from ", k.key_env.empty() ? k.key_file : k.key_env, " ", why,
            "; generate one with `openssl rand -hex 24`"));
      }
      digest_hex = Sha256Hex(key);
    }
    if (!(k.tenant.weight > 0)) return absl::InvalidArgumentError(where + ": weight must be > 0");
    id->tenants_.emplace_back(absl::HexStringToBytes(digest_hex), k.tenant);
  }
  for (const auto& c : options.allow_cidrs) {
    auto cidr = ParseCidr(c);
    if (!cidr.ok()) return cidr.status();
    id->allow_.push_back(*cidr);
  }
  return id;
}

const Tenant* Identity::FindByClientCn(absl::string_view cn) const {
  auto it = by_cn_.find(std::string(cn));
  return it == by_cn_.end() ? nullptr : &it->second;
}

absl::StatusOr<const Tenant*> Identity::Authenticate(absl::string_view presented) const {
  if (!keys_enabled()) return &anonymous_;
  if (presented.empty()) {
    return absl::UnauthenticatedError(
        "this lmgate requires an API key: send `authorization: Bearer <key>` or `x-api-key`");
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), digest);
  const Tenant* found = nullptr;
  for (const auto& [d, t] : tenants_) {  // no early exit: timing does not depend on the match
    if (CRYPTO_memcmp(d.data(), digest, sizeof(digest)) == 0) found = &t;
  }
  if (found == nullptr) return absl::UnauthenticatedError("unknown API key");
  return found;
}

absl::Status Identity::CheckPeer(absl::string_view peer) const {
  if (allow_.empty()) return absl::OkStatus();
  std::string host;
  if (absl::ConsumePrefix(&peer, "ipv4:") || absl::ConsumePrefix(&peer, "ipv6:")) {
    host = PeerHost(peer);
  } else {
    return absl::PermissionDeniedError(absl::StrCat("client address ", peer,
                                                    " is not in the allowlist"));
  }
  uint8_t addr[16] = {};
  int bits = 0;
  if (!ParseAddress(host, addr, &bits)) {
    return absl::PermissionDeniedError(absl::StrCat("cannot parse client address ", peer));
  }
  for (const auto& c : allow_) {
    int left = c.prefix;
    bool match = true;
    for (int i = 0; left > 0 && match; ++i, left -= 8) {
      uint8_t mask = left >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - left));
      match = (addr[i] & mask) == (c.addr[i] & mask);
    }
    if (match) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat("client address ", host,
                                                  " is not in the allowlist (allow_cidrs)"));
}

}  // namespace lmgate::admission

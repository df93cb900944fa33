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

std::string Identity::Sha256Hex(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

absl::StatusOr<Identity::Cidr> Identity::ParseCidr(absl::string_view text) {
  Cidr c;
  absl::string_view addr = text;
  size_t slash = text.find('/');
  if (slash != absl::string_view::npos) addr = text.substr(0, slash);
  std::string a(addr);
  if (inet_pton(AF_INET, a.c_str(), c.addr) == 1) {
    c.prefix = 32;
  } else if (inet_pton(AF_INET6, a.c_str(), c.addr) == 1) {
    c.v6 = true;
    c.prefix = 128;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("allow_cidrs: \"", text, "\" is not an address"));
  }
  if (slash != absl::string_view::npos) {
    int p;
    if (!absl::SimpleAtoi(text.substr(slash + 1), &p) || p < 0 || p > (c.v6 ? 128 : 32)) {
      return absl::InvalidArgumentError(absl::StrCat("allow_cidrs: bad prefix in \"", text, "\""));
    }
    c.prefix = p;
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
      if (key.size() < 16) {
        return absl::InvalidArgumentError(where + ": the key must be at least 16 characters");
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
  bool v6 = false;
  if (absl::ConsumePrefix(&peer, "ipv4:")) {
    host = std::string(peer.substr(0, peer.rfind(':')));
  } else if (absl::ConsumePrefix(&peer, "ipv6:")) {
    v6 = true;
    absl::string_view p = peer;
    if (absl::ConsumePrefix(&p, "[")) p = p.substr(0, p.find(']'));
    host = std::string(p);
    host = host.substr(0, host.find('%'));
  } else {
    return absl::PermissionDeniedError(absl::StrCat("client address ", peer,
                                                    " is not in the allowlist"));
  }
  uint8_t addr[16] = {};
  if (inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), addr) != 1) {
    return absl::PermissionDeniedError(absl::StrCat("cannot parse client address ", host));
  }
  // An IPv4-mapped IPv6 peer (::ffff:a.b.c.d) is checked as IPv4.
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (v6 && std::equal(kMapped, kMapped + 12, addr)) {
    v6 = false;
    std::copy(addr + 12, addr + 16, addr);
  }
  for (const auto& c : allow_) {
    if (c.v6 != v6) continue;
    int bits = c.prefix;
    bool match = true;
    for (int i = 0; bits > 0 && match; ++i, bits -= 8) {
      uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
      match = (addr[i] & mask) == (c.addr[i] & mask);
    }
    if (match) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat("client address ", host,
                                                  " is not in the allowlist (allow_cidrs)"));
}

}  // namespace lmgate::admission

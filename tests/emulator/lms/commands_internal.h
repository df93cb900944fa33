// Helpers shared by the stand-in's command files.
#ifndef LMGATE_TESTS_EMULATOR_LMS_COMMANDS_INTERNAL_H_
#define LMGATE_TESTS_EMULATOR_LMS_COMMANDS_INTERNAL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/emulator/lms/format.h"
#include "tests/emulator/lms/session.h"

namespace lmgate::lms {

// One loaded instance as `listLoaded` returned it, with its namespace.
struct Loaded {
  Namespace ns;
  Json info;
  std::string identifier() const { return StrField(info, "identifier"); }
};

// listLoaded on llm, then embedding.
absl::StatusOr<std::vector<Loaded>> ListLoaded(Session& session);

// {"type":"instanceReference","instanceReference":...} of an instance.
Json InstanceSpecifier(const Json& info);

// createDeviceNameResolver(): repository/lmLinkStatus, which the real CLI calls first in ls, ps,
// load and unload. A failure is tolerated (logged at debug level), as there. The stand-in labels
// devices without LM Link peers (DeviceLabel), which is what a host without LM Link answers.
void FetchLmLinkStatus(Session& session, const Logger& log);

// formatDeviceLabel() without LM Link: "Local" for this machine, "remote:<6 chars>" otherwise.
std::string DeviceLabel(const Json& device_identifier);

// Node's exit code when the top-level await never settles: what the real CLI exits with when the
// host rejects its authentication.
inline constexpr int kExitUnsettledTopLevelAwait = 13;

// What the CLI does when a command throws: "Error: <message>" on stderr, exit code 1. An
// authentication failure instead logs the SDK's "W [...] WebSocket error: Error: Failed to
// authenticate: <reason>" and Node's unsettled-await warning, exit code 13.
int Fail(const Logger& log, const absl::Status& status);

// A case-insensitive then exact ordering, close to String.prototype.localeCompare for model keys.
bool LocaleLess(const std::string& a, const std::string& b);

// The interactive selection the stand-in cannot show: exit code 1 with a message saying so.
int CannotPrompt(const Logger& log, const std::string& what);

}  // namespace lmgate::lms

#endif  // LMGATE_TESTS_EMULATOR_LMS_COMMANDS_INTERNAL_H_

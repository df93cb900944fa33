#include "backends/builtin.h"

#include "backends/cli/register.h"
#include "backends/openai/register.h"
#include "backends/rest/register.h"
#include "backends/sdk_ws/register.h"

namespace lmgate::backends {

absl::Status RegisterBuiltinBackends(BackendRegistry& registry) {
  if (auto st = RegisterSdkWsDriver(registry); !st.ok()) return st;
  if (auto st = rest::RegisterRestDriver(registry); !st.ok()) return st;
  if (auto st = openai::RegisterOpenAiDriver(registry); !st.ok()) return st;
  if (auto st = cli::RegisterCliDriver(registry); !st.ok()) return st;
  return absl::OkStatus();
}

}  // namespace lmgate::backends

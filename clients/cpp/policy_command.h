// lmgatectl policy set|get MODEL: ModelManager.UpdateModelPolicy and its answer, printed.
#ifndef LMGATE_CLIENTS_CPP_POLICY_COMMAND_H_
#define LMGATE_CLIENTS_CPP_POLICY_COMMAND_H_

#include "clients/cpp/client.h"
#include "lmgate/v1/model_manager.pb.h"

namespace lmgate::client {

// Sends `req` (no fields set = read the policy back) and prints the policy in force to stdout.
// Exit status: 0, or 1 with the call's error on stderr.
int PolicyCommand(Client& c, const v1::UpdateModelPolicyRequest& req);

}  // namespace lmgate::client

#endif  // LMGATE_CLIENTS_CPP_POLICY_COMMAND_H_

// LmgateFixture: the shared gateway fixture (tests/util/gateway_fixture.h) set up for fault and
// bad-input runs: every stream of a test runs upstream at once (64 parallel slots on the host and
// in lmgate's admission), a short connect timeout and a fast health probe so that recovery after
// a fault is seen quickly.
#ifndef LMGATE_TESTS_RELIABILITY_FIXTURE_H_
#define LMGATE_TESTS_RELIABILITY_FIXTURE_H_

#include "absl/time/time.h"
#include "tests/util/gateway_fixture.h"

namespace lmgate::reliability {

using testutil::ChatOutcome;
using testutil::IsClearFailure;
using testutil::kDrivers;
using testutil::kModel;

class LmgateFixture : public testutil::GatewayFixture {
 protected:
  void Configure(emulator::Options& emulator, backends::HostConfig& host,
                 services::ServerOptions& server) override {
    emulator.settings.default_parallel = 64;
    host.connect_timeout = absl::Seconds(1);
    server.gateway.admission.default_concurrency = 64;
    server.health_interval = absl::Milliseconds(200);
  }
};

}  // namespace lmgate::reliability

#endif  // LMGATE_TESTS_RELIABILITY_FIXTURE_H_

// lms: a stand-in for LM Studio's `lms` CLI that talks to the lmgate LM Studio emulator (or any
// LM Studio) over the SDK WebSocket protocol, like the real one. See commands.h for what it covers
// and how it differs.
//
//   lms ls [--json] [--llm|--embedding] [modelKey]     lms ps [--json]
//   lms load <key> [-y] [--exact] [--gpu off|max|0..1] [-c N] [--parallel N] [--ttl S]
//            [--identifier ID] [--estimate-only]
//   lms unload [ID] [-a|--all]      lms server status [--json]      lms status
//   every command but `server status`: --host H --port P (no discovery), --quiet, --verbose
#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include "spdlog/spdlog.h"
#include "tests/emulator/lms/args.h"
#include "tests/emulator/lms/commands.h"
#include "tests/emulator/lms/session.h"

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  // The WebSocket and HTTP layers log through spdlog; the CLI's own output is all that shows.
  spdlog::set_level(spdlog::level::off);
  // Like the real CLI, which finds (and records) its home directory when it starts.
  if (absl::Status home = lmgate::lms::InitLmStudioHome(); !home.ok()) {
    std::cerr << home.message() << std::endl;
    return 1;
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  lmgate::lms::ParseOutcome parsed = lmgate::lms::ParseCommandLine(args);
  if (!parsed.command) {
    (parsed.exit_code == 0 ? std::cout : std::cerr) << parsed.text << std::flush;
    return parsed.exit_code;
  }
  const lmgate::lms::CommandLine& line = *parsed.command;
  int code = 1;
  if (line.command == "ls") code = lmgate::lms::RunLs(line);
  if (line.command == "ps") code = lmgate::lms::RunPs(line);
  if (line.command == "load") code = lmgate::lms::RunLoad(line);
  if (line.command == "unload") code = lmgate::lms::RunUnload(line);
  if (line.command == "status") code = lmgate::lms::RunStatus(line);
  if (line.command == "server status") code = lmgate::lms::RunServerStatus(line);
  std::cout << std::flush;
  std::cerr << std::flush;
  return code;
}

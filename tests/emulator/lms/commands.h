// The commands of the `lms` stand-in. Each mirrors its subcommand in lms@07b7252 (src/subcommands/
// list.ts, load.ts, unload.ts, server.ts, status.ts): the same wire calls, JSON on stdout, human
// tables on stdout, log lines on stderr, and the same exit codes — including the real CLI's exit
// code 0 after `unload <unknown identifier>` ("Model Not Found" on stderr).
//
// Like the real CLI it records its home directory under $HOME at start-up (session.h), exits 13
// when the host rejects its authentication, asks repository/lmLinkStatus before ls/ps/load/unload,
// and draws the load spinner on stdout.
//
// Differences from the real CLI, all where it would need a terminal or local state: no interactive
// selection (a command that would prompt exits 1 saying so), no cli-pref.json history (so fuzzy
// ties are broken by list order only), no LM Link device names (every device is "Local" or
// "remote:<id>"), no `server start|stop`, no waking of LM Studio.
#ifndef LMGATE_TESTS_EMULATOR_LMS_COMMANDS_H_
#define LMGATE_TESTS_EMULATOR_LMS_COMMANDS_H_

#include "tests/emulator/lms/args.h"

namespace lmgate::lms {

// Runs the command; returns the process exit code.
int RunLs(const CommandLine& line);
int RunPs(const CommandLine& line);
int RunLoad(const CommandLine& line);
int RunUnload(const CommandLine& line);
int RunServerStatus(const CommandLine& line);
int RunStatus(const CommandLine& line);

}  // namespace lmgate::lms

#endif  // LMGATE_TESTS_EMULATOR_LMS_COMMANDS_H_

// Subcommands of the `streamtrain` multi-tool. Each Register* adds its subcommand to the
// app; the callback runs it and stores the process exit code in `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace streamtrain::tool {

void RegisterBrokerCommand(CLI::App& app, int& exit_code);
void RegisterProduceCommand(CLI::App& app, int& exit_code);
void RegisterInspectCommand(CLI::App& app, int& exit_code);
void RegisterDemoCommand(CLI::App& app, int& exit_code);
void RegisterReplayCommand(CLI::App& app, int& exit_code);
// `inspect lineage`, added to the `inspect` subcommand.
void RegisterInspectLineageCommand(CLI::App& inspect, int& exit_code);

}  // namespace streamtrain::tool

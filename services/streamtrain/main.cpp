// streamtrain: the multi-tool (the one-process demo, dev broker, producer, inspection).
#include "cli_support.h"
#include "commands.h"

int main(int argc, char** argv) {
  using namespace streamtrain;
  std::string log_level = "info";
  int exit_code = 0;
  CLI::App app{
      "streamtrain: continuous training and deployment from a Kafka stream.\n"
      "Every option can also come from --config FILE or STREAMTRAIN_<OPTION> environment "
      "variables."};
  app.require_subcommand(1);
  // --log-level and --config may also follow the subcommand.
  app.fallthrough();
  cli::AddCommonOptions(app, log_level);
  tool::RegisterDemoCommand(app, exit_code);
  tool::RegisterBrokerCommand(app, exit_code);
  tool::RegisterProduceCommand(app, exit_code);
  tool::RegisterInspectCommand(app, exit_code);
  tool::RegisterReplayCommand(app, exit_code);
  cli::BindEnvironment(app);
  // Subcommand callbacks run inside parse(); the log level must be set before them.
  app.parse_complete_callback([&] { cli::ApplyLogLevel(log_level); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}

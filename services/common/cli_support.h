// Command-line plumbing shared by every executable: flags, config file, environment.
//
// Every option can come from three places, strongest first: the command line, the
// environment (STREAMTRAIN_<LONG_NAME>, upper-case, dashes as underscores, e.g.
// STREAMTRAIN_BROKERS), and the file named by --config (TOML/INI: `brokers = "host:9092"`,
// `[kafka]` sections are not needed: keys are the long option names). Only services/
// parse flags; libraries take Options structs.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "streamtrain/common/logging.h"
#include "streamtrain/common/status.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/kafka/client_config.h"
#include "streamtrain/schema/record.h"

namespace streamtrain::cli {

// --config FILE and --log-level LEVEL, on `app`.
void AddCommonOptions(CLI::App& app, std::string& log_level);

// --brokers and repeatable -X/--kafka-property key=value (any librdkafka property:
// security.protocol, sasl.mechanisms, ssl.ca.location, compression.codec, ...).
void AddKafkaOptions(CLI::App& app, kafka::ClientConfig& config,
                     std::vector<std::string>& properties);
// Moves the collected -X values into config.properties; throws CLI::ValidationError on a
// malformed one.
void ApplyKafkaProperties(kafka::ClientConfig& config, const std::vector<std::string>& properties);

// --input-shape, --num-classes, --max-message-bytes. `shape_text` receives the raw shape.
void AddSchemaOptions(CLI::App& app, std::string& shape_text, schema::RecordSchema& schema);
// Parses shape_text into schema.input_shape; throws CLI::ValidationError naming the flag.
void ApplySchemaOptions(const std::string& shape_text, schema::RecordSchema& schema);

// Gives every long option of `app` and its subcommands an environment variable
// STREAMTRAIN_<NAME>. Call after all options are added, before parsing.
void BindEnvironment(CLI::App& app);

// Reads an HMAC key from `path` (--hmac-key-file): the file's bytes without a trailing
// newline; at least 16 bytes. Throws CLI::ValidationError naming `flag` otherwise.
std::string ReadKeyFile(const std::string& flag, const std::string& path);

// The environment variable that holds an HMAC key itself (not a file name), so the key is
// never on a command line (visible in `ps`) nor in a config file.
inline constexpr const char* kHmacKeyEnv = "STREAMTRAIN_HMAC_KEY";

// The HMAC key of a service: ReadKeyFile(flag, key_file) when --hmac-key-file is set (it wins
// over the environment), else the value of STREAMTRAIN_HMAC_KEY when set and non-empty
// (trailing newlines stripped, at least 16 bytes), else none. Errors name the flag or the
// variable and the key's length, never the key. The key is not logged.
std::optional<std::string> ResolveHmacKey(const std::string& flag, const std::string& key_file);

// Applies --log-level (throws CLI::ValidationError for an unknown level).
void ApplyLogLevel(const std::string& level);

// The end of every service's main(): SIGINT/SIGTERM request a graceful stop (installed
// before `create` runs, so a signal during start-up is not lost), then the app runs until
// stopped. `create` returns Result<std::unique_ptr<App>>; a start-up error is logged under
// `logger`, a Run() error is logged by the app itself. Returns the process exit code.
template <typename Create>
int RunService(const std::string& logger, Create create) {
  StopSource stop;
  SignalStopGuard signals(stop);
  auto app = create();
  if (!app.ok()) {
    GetLogger(logger)->error("cannot start: {}", app.status().ToString());
    return 1;
  }
  return (*app)->Run(stop).ok() ? 0 : 1;
}

}  // namespace streamtrain::cli

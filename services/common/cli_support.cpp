#include "cli_support.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "streamtrain/common/logging.h"

namespace streamtrain::cli {

void AddCommonOptions(CLI::App& app, std::string& log_level) {
  app.set_config("--config", "", "Read option values from this TOML/INI file (key = value)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
}

void AddKafkaOptions(CLI::App& app, kafka::ClientConfig& config,
                     std::vector<std::string>& properties) {
  app.add_option("--brokers", config.brokers, "Kafka bootstrap servers, HOST:PORT[,HOST:PORT...]")
      ->required();
  app.add_option("-X,--kafka-property", properties,
                 "Any librdkafka property as key=value, repeatable (e.g. "
                 "-X security.protocol=SASL_SSL -X compression.codec=zstd)")
      ->take_all()
      ->delimiter('\n');
}

void ApplyKafkaProperties(kafka::ClientConfig& config, const std::vector<std::string>& properties) {
  for (const auto& p : properties) {
    Status s = config.AddProperty(p);
    if (!s.ok()) throw CLI::ValidationError("--kafka-property", s.message());
  }
}

void AddSchemaOptions(CLI::App& app, std::string& shape_text, schema::RecordSchema& schema) {
  shape_text = schema.ShapeString();
  app.add_option("--input-shape", shape_text, "Feature shape of every record, e.g. 1x28x28")
      ->capture_default_str();
  app.add_option("--num-classes", schema.num_classes, "Number of classes; labels in [0, N)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-message-bytes", schema.max_message_bytes,
                 "Largest accepted record message, bytes")
      ->capture_default_str();
}

void ApplySchemaOptions(const std::string& shape_text, schema::RecordSchema& schema) {
  auto shape = schema::RecordSchema::ParseShape(shape_text);
  if (!shape.ok()) throw CLI::ValidationError("--input-shape", shape.status().message());
  schema.input_shape = *shape;
}

void BindEnvironment(CLI::App& app) {
  for (CLI::Option* opt : app.get_options()) {
    const auto& names = opt->get_lnames();
    if (names.empty() || names.front() == "help" || names.front() == "config") continue;
    std::string env = "STREAMTRAIN_" + names.front();
    std::transform(env.begin(), env.end(), env.begin(), [](unsigned char c) {
      return c == '-' ? '_' : static_cast<char>(std::toupper(c));
    });
    opt->envname(env);
  }
  for (CLI::App* sub : app.get_subcommands({})) BindEnvironment(*sub);
}

namespace {

// HMAC-SHA256 is only as strong as its key; refuse the obviously weak ones.
constexpr size_t kMinKeyBytes = 16;

void StripNewlines(std::string& key) {
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
}

}  // namespace

std::string ReadKeyFile(const std::string& flag, const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw CLI::ValidationError(flag, "cannot read " + path);
  std::string key((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  StripNewlines(key);
  if (key.size() < kMinKeyBytes) {
    throw CLI::ValidationError(flag, path + " holds " + std::to_string(key.size()) +
                                         " bytes; a key needs at least " +
                                         std::to_string(kMinKeyBytes));
  }
  return key;
}

std::optional<std::string> ResolveHmacKey(const std::string& flag, const std::string& key_file) {
  if (!key_file.empty()) return ReadKeyFile(flag, key_file);
  const char* value = std::getenv(kHmacKeyEnv);
  if (value == nullptr || *value == '\0') return std::nullopt;
  std::string key(value);
  StripNewlines(key);
  if (key.size() < kMinKeyBytes) {
    // The length only: an error message must never carry the key.
    throw CLI::ValidationError(kHmacKeyEnv, "holds " + std::to_string(key.size()) +
                                                " bytes; a key needs at least " +
                                                std::to_string(kMinKeyBytes));
  }
  return key;
}

void ApplyLogLevel(const std::string& level) {
  if (!SetLogLevel(level)) {
    throw CLI::ValidationError("--log-level", "unknown level '" + level + "'");
  }
}

}  // namespace streamtrain::cli

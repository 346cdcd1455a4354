#include "lineage_config.h"

#include <nlohmann/json.hpp>

#include "lineage_log.h"

namespace streamtrain::trainer {
namespace {

// The performance and drift triggers and their action: they decide which iterations draw
// recent history, take extra steps or are held, so replay needs them. Written only when on,
// so a configuration without them keeps the fingerprint it had before they existed.
nlohmann::json DriftJson(const DriftOptions& d) {
  nlohmann::json j = {{"performance_margin", d.performance_margin},
                      {"performance_floor", d.performance_floor},
                      {"action", DriftActionName(d.action)},
                      {"adapt_records", d.adapt_records},
                      {"adapt_window", d.adapt_window},
                      {"adapt_extra_steps", d.adapt_extra_steps},
                      {"hold_margin", d.hold_margin},
                      {"hold_max_records", d.hold_max_records},
                      {"retrain_min_records", d.retrain_min_records},
                      {"retrain_eval_records", d.retrain_eval_records},
                      {"on_features", d.on_features},
                      {"forget_before_change", d.forget_before_change}};
  if (d.detector) {
    const drift::DetectorOptions& x = *d.detector;
    j["detector"] = {{"kind", drift::DetectorKindName(x.kind)},
                     {"adwin_delta", x.adwin_delta},
                     {"adwin_clock", x.adwin_clock},
                     {"adwin_max_buckets", x.adwin_max_buckets},
                     {"adwin_min_window", x.adwin_min_window},
                     {"adwin_grace_period", x.adwin_grace_period},
                     {"ph_delta", x.ph_delta},
                     {"ph_threshold", x.ph_threshold},
                     {"ph_alpha", x.ph_alpha},
                     {"ph_min_instances", x.ph_min_instances},
                     {"ddm_warm_start", x.ddm_warm_start},
                     {"ddm_warning_threshold", x.ddm_warning_threshold},
                     {"ddm_drift_threshold", x.ddm_drift_threshold}};
  }
  return j;
}

Status ApplyDriftJson(const nlohmann::json& j, DriftOptions& d) {
  d.performance_margin = j.at("performance_margin").get<double>();
  d.performance_floor = j.at("performance_floor").get<double>();
  ST_ASSIGN_OR_RETURN(d.action, ParseDriftAction(j.at("action").get<std::string>()));
  d.adapt_records = j.at("adapt_records").get<uint64_t>();
  d.adapt_window = j.at("adapt_window").get<uint64_t>();
  d.adapt_extra_steps = j.at("adapt_extra_steps").get<uint64_t>();
  d.hold_margin = j.at("hold_margin").get<double>();
  d.hold_max_records = j.at("hold_max_records").get<uint64_t>();
  d.retrain_min_records = j.at("retrain_min_records").get<uint64_t>();
  d.retrain_eval_records = j.at("retrain_eval_records").get<uint64_t>();
  d.on_features = j.at("on_features").get<bool>();
  d.forget_before_change = j.at("forget_before_change").get<bool>();
  d.detector.reset();
  if (j.contains("detector")) {
    const auto& x = j.at("detector");
    drift::DetectorOptions o;
    ST_ASSIGN_OR_RETURN(o.kind, drift::ParseDetectorKind(x.at("kind").get<std::string>()));
    o.adwin_delta = x.at("adwin_delta").get<double>();
    o.adwin_clock = x.at("adwin_clock").get<uint64_t>();
    o.adwin_max_buckets = x.at("adwin_max_buckets").get<uint64_t>();
    o.adwin_min_window = x.at("adwin_min_window").get<uint64_t>();
    o.adwin_grace_period = x.at("adwin_grace_period").get<uint64_t>();
    o.ph_delta = x.at("ph_delta").get<double>();
    o.ph_threshold = x.at("ph_threshold").get<double>();
    o.ph_alpha = x.at("ph_alpha").get<double>();
    o.ph_min_instances = x.at("ph_min_instances").get<uint64_t>();
    o.ddm_warm_start = x.at("ddm_warm_start").get<uint64_t>();
    o.ddm_warning_threshold = x.at("ddm_warning_threshold").get<double>();
    o.ddm_drift_threshold = x.at("ddm_drift_threshold").get<double>();
    d.detector = o;
  }
  return Status::Ok();
}

}  // namespace

std::string LineageConfigJson(const TrainerOptions& o, const model::ModelOptions& m) {
  const auto& opt = m.optimizer;
  const auto& sp = o.deployment.sparsifier;
  // nlohmann::json objects keep their keys sorted and print doubles in the shortest form
  // that reads back to the same value: the text is canonical.
  nlohmann::json j = {
      {"format", 1},
      {"mode", TrainingModeName(o.mode)},
      {"trigger", o.trigger},
      {"batch", o.batch},
      {"threads", o.threads},
      {"prequential_window", o.prequential_window},
      {"sampler",
       {{"kind", training::SamplerKindName(o.sampler.kind)},
        {"seed", o.sampler.seed},
        {"window", o.sampler.window},
        {"half_life", o.sampler.half_life}}},
      {"model",
       {{"model", m.model},
        {"input_shape", m.input_shape},
        {"num_classes", m.num_classes},
        {"seed", m.seed},
        {"feature_scale", m.feature_scale},
        {"feature_shift", m.feature_shift},
        {"device", m.device},
        {"optimizer",
         {{"kind", model::OptimizerKindName(opt.kind)},
          {"learning_rate", opt.learning_rate},
          {"weight_decay", opt.weight_decay},
          {"momentum", opt.momentum},
          {"nesterov", opt.nesterov},
          {"beta1", opt.beta1},
          {"beta2", opt.beta2},
          {"epsilon", opt.epsilon},
          {"amsgrad", opt.amsgrad}}}}},
      {"deployment",
       {{"mode", DeployModeName(o.deployment.mode)},
        {"values", static_cast<int>(o.deployment.values)},
        {"publish_gate_margin", o.deployment.publish_gate_margin},
        {"sparsifier",
         {{"kind", sparse::SparsifierKindName(sp.kind)},
          {"ratio", sp.ratio},
          {"scope", sparse::SparsifierScopeName(sp.scope)},
          {"feedback", sparse::FeedbackModeName(sp.feedback)},
          {"warmup_iterations", sp.warmup_iterations},
          {"warmup", sparse::WarmupModeName(sp.warmup)},
          {"seed", sp.seed}}}}},
  };
  if (o.drift.enabled()) j["drift"] = DriftJson(o.drift);
  return j.dump();
}

uint64_t LineageConfigFingerprint(std::string_view json) { return LineageHash(json); }

Status ApplyLineageConfig(std::string_view text, TrainerOptions& o) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("lineage config: not JSON");
  try {
    if (j.at("format").get<int>() != 1) return InvalidArgument("lineage config: unknown format");
    ST_ASSIGN_OR_RETURN(o.mode, ParseTrainingMode(j.at("mode").get<std::string>()));
    o.trigger = j.at("trigger").get<size_t>();
    o.batch = j.at("batch").get<size_t>();
    o.threads = j.at("threads").get<int>();
    o.prequential_window = j.at("prequential_window").get<uint64_t>();
    const auto& s = j.at("sampler");
    ST_ASSIGN_OR_RETURN(o.sampler.kind,
                        training::ParseSamplerKind(s.at("kind").get<std::string>()));
    o.sampler.seed = s.at("seed").get<uint64_t>();
    o.sampler.window = s.at("window").get<uint64_t>();
    o.sampler.half_life = s.at("half_life").get<double>();
    const auto& m = j.at("model");
    o.model.model = m.at("model").get<std::string>();
    o.model.input_shape = m.at("input_shape").get<std::vector<int64_t>>();
    o.model.num_classes = m.at("num_classes").get<int32_t>();
    o.model.seed = m.at("seed").get<uint64_t>();
    o.model.feature_scale = m.at("feature_scale").get<float>();
    o.model.feature_shift = m.at("feature_shift").get<float>();
    o.model.device = m.at("device").get<std::string>();
    const auto& opt = m.at("optimizer");
    ST_ASSIGN_OR_RETURN(o.model.optimizer.kind,
                        model::ParseOptimizerKind(opt.at("kind").get<std::string>()));
    o.model.optimizer.learning_rate = opt.at("learning_rate").get<double>();
    o.model.optimizer.weight_decay = opt.at("weight_decay").get<double>();
    o.model.optimizer.momentum = opt.at("momentum").get<double>();
    o.model.optimizer.nesterov = opt.at("nesterov").get<bool>();
    o.model.optimizer.beta1 = opt.at("beta1").get<double>();
    o.model.optimizer.beta2 = opt.at("beta2").get<double>();
    o.model.optimizer.epsilon = opt.at("epsilon").get<double>();
    o.model.optimizer.amsgrad = opt.at("amsgrad").get<bool>();
    const auto& d = j.at("deployment");
    ST_ASSIGN_OR_RETURN(o.deployment.mode, ParseDeployMode(d.at("mode").get<std::string>()));
    o.deployment.values = static_cast<wire::ValueEncoding>(d.at("values").get<int>());
    o.deployment.publish_gate_margin = d.at("publish_gate_margin").get<double>();
    const auto& sp = d.at("sparsifier");
    auto& so = o.deployment.sparsifier;
    ST_ASSIGN_OR_RETURN(so.kind, sparse::ParseSparsifierKind(sp.at("kind").get<std::string>()));
    so.ratio = sp.at("ratio").get<double>();
    ST_ASSIGN_OR_RETURN(so.scope, sparse::ParseSparsifierScope(sp.at("scope").get<std::string>()));
    ST_ASSIGN_OR_RETURN(so.feedback,
                        sparse::ParseFeedbackMode(sp.at("feedback").get<std::string>()));
    so.warmup_iterations = sp.at("warmup_iterations").get<uint64_t>();
    ST_ASSIGN_OR_RETURN(so.warmup, sparse::ParseWarmupMode(sp.at("warmup").get<std::string>()));
    so.seed = sp.at("seed").get<uint64_t>();
    o.drift = DriftOptions{};
    if (j.contains("drift")) ST_RETURN_IF_ERROR(ApplyDriftJson(j.at("drift"), o.drift));
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("lineage config: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace streamtrain::trainer

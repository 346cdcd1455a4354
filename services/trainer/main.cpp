// streamtrain-trainer: proactive training from the historical store.
#include "cli_support.h"
#include "streamtrain/common/logging.h"
#include "trainer_app.h"

int main(int argc, char** argv) {
  using namespace streamtrain;
  trainer::TrainerOptions options;
  std::string log_level = "info", mode = "proactive", sampler = "uniform", optimizer = "adam";
  std::vector<std::string> kafka_properties;
  std::optional<uint64_t> stop_after;
  std::string deploy, sparsifier = "threshold", ratio = "0.01", scope = "tensor", feedback,
                      warmup = "dense", delta_values = "f32", hmac_key_file;
  std::string swap_deploy = "full", swap_retrain_from;
  std::string adaptive_trigger = "off", max_wait = "off", forget_before_drift = "off";
  std::string drift_detector = "off", drift_action = "alert";
  drift::DetectorOptions detector;
  auto& deployment = options.deployment;

  CLI::App app{
      "streamtrain-trainer: keeps a model learning from the historical store that ingest "
      "writes. Every t new records it scores them with the current model (prequential "
      "evaluation), then takes one SGD step on them plus b - t records sampled from history.\n"
      "Every option can also come from --config FILE or STREAMTRAIN_<OPTION> environment "
      "variables."};
  cli::AddCommonOptions(app, log_level);
  app.add_option("--store", options.store, "Historical store directory (read-only)")->required();
  app.add_option("--checkpoint-dir", options.checkpoint_dir,
                 "Checkpoint directory; the trainer resumes from the checkpoint there")
      ->required();
  app.add_option("--brokers", options.kafka.brokers,
                 "Kafka bootstrap servers (for model deployment)");
  app.add_option("-X,--kafka-property", kafka_properties, "librdkafka property key=value")
      ->take_all();
  app.add_option("--model", options.model.model,
                 "lenet5 | mlp[:H,H..] | logreg | resnet18 | torchscript:FILE")
      ->capture_default_str();
  app.add_option("--optimizer", optimizer, "sgd | adam")->capture_default_str();
  app.add_option("--lr", options.model.optimizer.learning_rate, "Learning rate")
      ->capture_default_str();
  app.add_option("--momentum", options.model.optimizer.momentum, "SGD momentum")
      ->capture_default_str();
  app.add_option("--weight-decay", options.model.optimizer.weight_decay, "L2 weight decay")
      ->capture_default_str();
  app.add_flag("--amsgrad", options.model.optimizer.amsgrad, "Adam: use AMSGrad");
  app.add_option("--feature-scale", options.model.feature_scale,
                 "Multiplies every feature before the model sees it (1/255 for raw pixels)")
      ->capture_default_str();
  app.add_option("--feature-shift", options.model.feature_shift,
                 "Added after the scale: the model sees x * scale + shift (e.g. -mean/std)")
      ->capture_default_str();
  app.add_option("--seed", options.model.seed, "Seed of the weights and the samplers")
      ->capture_default_str();
  app.add_option("--device", options.model.device,
                 "Where the model, optimizer state and batches live: cpu | cuda | cuda:N (cuda "
                 "needs a -DSTREAMTRAIN_CUDA=ON build)")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "LibTorch intra-op threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--mode", mode, "proactive | online | full")->capture_default_str();
  app.add_option("--trigger", options.trigger, "t: new records per iteration")
      ->capture_default_str();
  app.add_option("--batch", options.batch, "b: mini-batch size")->capture_default_str();
  app.add_option("--adaptive-trigger", adaptive_trigger,
                 "on | off: when more than t records wait, one iteration takes all of them up "
                 "to --adaptive-max-new (the rest of the batch still from history), so a "
                 "backlog drains instead of growing to --max-backlog")
      ->capture_default_str();
  app.add_option("--adaptive-max-new", options.triggers.adaptive_max_new,
                 "Most new records one adaptive iteration takes, in [t, b] (0: b)")
      ->capture_default_str();
  app.add_option("--max-wait", max_wait,
                 "When fewer than t records wait and the oldest has waited this long (e.g. "
                 "2s, 500ms), iterate on what there is (off: wait for t)")
      ->capture_default_str();
  app.add_option("--sampler", sampler, "uniform | window | recency | inverse-frequency")
      ->capture_default_str();
  app.add_option("--window", options.sampler.window, "Window of the window sampler, records")
      ->capture_default_str();
  app.add_option("--half-life", options.sampler.half_life,
                 "Half-life of the recency sampler, records")
      ->capture_default_str();
  app.add_option("--initial-records", options.initial_records,
                 "Records the initial model is trained on")
      ->capture_default_str();
  app.add_option("--initial-epochs", options.initial_epochs, "Epochs of initial training")
      ->capture_default_str();
  app.add_option("--retrain-every", options.retrain_every,
                 "Full mode: retrain from scratch every c records")
      ->capture_default_str();
  app.add_option("--retrain-epochs", options.retrain_epochs,
                 "Full mode and --drift-action retrain: epochs per retraining")
      ->capture_default_str();
  app.add_flag("--retrain-blocking", options.retrain_blocking,
               "Full mode and --drift-action retrain: pause the stream while retraining (the "
               "idealised baseline; reproducible runs)");
  app.add_option("--swap-deploy", swap_deploy,
                 "Full mode: how a retrained model replaces the served one: full (a snapshot) "
                 "| partial (the k coordinates with the largest DPU contribution, fine-tuned, "
                 "sent as deltas)")
      ->capture_default_str();
  app.add_option("--swap-ratio", options.swap.ratio,
                 "Partial swaps: fraction k/N of the coordinates that change, in (0, 1]")
      ->capture_default_str();
  app.add_option("--swap-finetune-steps", options.swap.finetune_steps,
                 "Partial swaps: Q fine-tuning steps of b store records on the chosen "
                 "coordinates only")
      ->capture_default_str();
  app.add_option("--swap-retrain-from", swap_retrain_from,
                 "Full mode: where each retraining starts: deployed (the served model's "
                 "weights; the DPU setting) | scratch (fresh weights, the thesis' full "
                 "retraining). Default: deployed with --swap-deploy partial, scratch with full. "
                 "--drift-action retrain: deployed (the live model's weights, the default) | "
                 "scratch");
  app.add_option("--performance-trigger-margin", options.drift.performance_margin,
                 "Fire the drift action when the windowed prequential accuracy falls more than "
                 "this below its value one window earlier, e.g. 0.05 (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--performance-trigger-floor", options.drift.performance_floor,
                 "Fire the drift action when the windowed prequential accuracy falls below "
                 "this, e.g. 0.8 (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--drift-detector", drift_detector,
                 "off | adwin | page-hinkley | ddm: a drift detector on the prequential 0/1 "
                 "error of every scored record; a detection fires the drift action")
      ->capture_default_str();
  app.add_flag("--drift-on-features", options.drift.on_features,
               "A second detector, of --drift-detector's kind and options (adwin or "
               "page-hinkley), on each scored record's mean feature as the model sees it "
               "(after --feature-scale/--feature-shift, squashed into (0, 1)); a detection "
               "fires the drift action");
  app.add_option("--adwin-delta", detector.adwin_delta,
                 "ADWIN's confidence delta (smaller: fewer false alarms, later detections)")
      ->capture_default_str();
  app.add_option("--ph-delta", detector.ph_delta,
                 "Page-Hinkley: tolerated increase of the error rate per record")
      ->capture_default_str();
  app.add_option("--ph-threshold", detector.ph_threshold,
                 "Page-Hinkley: lambda, the rise of the statistic that is a drift")
      ->capture_default_str();
  app.add_option("--ddm-warning", detector.ddm_warning_threshold,
                 "DDM: warning level, standard deviations above the best error rate")
      ->capture_default_str();
  app.add_option("--ddm-drift", detector.ddm_drift_threshold,
                 "DDM: drift level, standard deviations above the best error rate")
      ->capture_default_str();
  app.add_option("--drift-action", drift_action,
                 "What a performance or drift trigger does: alert (log and count) | adapt "
                 "(sample history from the last --adapt-window records for the next "
                 "--adapt-records new records) | hold (stop publishing until the windowed "
                 "accuracy is back within --hold-margin of its level before the trigger) | "
                 "retrain (retrain from the live model on the records since the change point "
                 "in the background; swap it in if it beats the live model on the newest "
                 "records)")
      ->capture_default_str();
  app.add_option("--adapt-records", options.drift.adapt_records,
                 "adapt: new records trained with recent history after a trigger")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--adapt-window", options.drift.adapt_window,
                 "adapt: history is drawn from this many most recent records")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--adapt-extra-steps", options.drift.adapt_extra_steps,
                 "adapt: extra optimizer steps per iteration on the newest b records")
      ->capture_default_str();
  app.add_option("--forget-before-drift", forget_before_drift,
                 "on | off: adapt and retrain: from a trigger on, history is drawn only from "
                 "records at or after the detected change point, so the old concept stops "
                 "pulling the model back once adapt's period ends")
      ->capture_default_str();
  app.add_option("--hold-margin", options.drift.hold_margin,
                 "hold: publishing resumes when the windowed accuracy is back within this of "
                 "its level before the trigger")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--hold-max-records", options.drift.hold_max_records,
                 "hold: publishing resumes after this many scored records even if the "
                 "accuracy has not come back")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--retrain-min-records", options.drift.retrain_min_records,
                 "retrain: the retraining waits until this many records arrived since the "
                 "change point, and trains on all records since it")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--retrain-eval-records", options.drift.retrain_eval_records,
                 "retrain: the candidate is swapped in only if it beats the live model on this "
                 "many records scored after the retraining started")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--prequential-window", options.prequential_window,
                 "Sliding window of the prequential accuracy, records")
      ->capture_default_str();
  app.add_option("--checkpoint-every", options.checkpoint_every, "Checkpoint every K iterations")
      ->capture_default_str();
  app.add_option("--stop-after-records", stop_after,
                 "Stop gracefully after N streamed records were trained on");
  // Deployment (deltas and snapshots for the replicas).
  app.add_option("--deploy", deploy,
                 "off | sparse | dense (a full snapshot every iteration, the baseline). "
                 "Default: sparse with --brokers, off without");
  app.add_option("--model-id", deployment.model_id, "Model id on the deltas/snapshots topics")
      ->capture_default_str();
  app.add_option("--deltas-topic", deployment.deltas_topic, "Topic of the deltas")
      ->capture_default_str();
  app.add_option("--snapshots-topic", deployment.snapshots_topic, "Topic of the snapshots")
      ->capture_default_str();
  app.add_option("--snapshot-every", deployment.snapshot_every,
                 "A snapshot every S iterations (0: only at start and on request)")
      ->capture_default_str();
  app.add_option("--sparsifier", sparsifier, "topk | threshold | randomk | dpu | none")
      ->capture_default_str();
  app.add_option("--ratio", ratio, "Fraction k/N of coordinates per delta, e.g. 0.001")
      ->capture_default_str();
  app.add_option("--scope", scope, "tensor (k per tensor, at least 1) | global")
      ->capture_default_str();
  app.add_option("--feedback", feedback,
                 "train (the model changes only where the delta does; the rest waits in an "
                 "error-feedback residual) | shadow (train densely, send the largest "
                 "differences). Default: shadow (the better served accuracy at 1% and 0.1% in "
                 "bench/results/deploy_thesis.md), and a checkpoint written in train mode "
                 "continues in it; given, a checkpoint in the other mode is an error");
  app.add_option("--warmup-iterations", deployment.sparsifier.warmup_iterations,
                 "Iterations sent dense or with a ramped ratio first")
      ->capture_default_str();
  app.add_option("--warmup", warmup, "dense | ramp")->capture_default_str();
  app.add_option("--delta-values", delta_values,
                 "f32 (new values) | f16 | bf16 (increments, applied identically on both sides)")
      ->capture_default_str();
  app.add_option("--hmac-key-file", hmac_key_file,
                 "Sign deltas and snapshots with HMAC-SHA256 using the key in this file "
                 "(wins over STREAMTRAIN_HMAC_KEY, which holds the key itself)")
      ->check(CLI::ExistingFile);
  app.add_option("--publish-gate-margin", deployment.publish_gate_margin,
                 "Hold deployment while the windowed prequential accuracy is more than this "
                 "below its value when the last version went out, e.g. 0.02 (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--max-backlog", options.max_backlog,
                 "When more stored records than this wait to be processed, skip ahead to the "
                 "newest half of them; skipped records stay in the store as history (0: "
                 "unbounded)")
      ->capture_default_str();
  app.add_option("--metrics-port", options.http.port,
                 "Port for /metrics and /healthz (0: any free port, -1: disabled)")
      ->capture_default_str();
  trainer::DistributedFlags distributed_flags;
  trainer::AddDistributedOptions(app, options.distributed, distributed_flags);
  cli::BindEnvironment(app);
  try {
    app.parse(argc, argv);
    cli::ApplyLogLevel(log_level);
    cli::ApplyKafkaProperties(options.kafka, kafka_properties);
    auto parsed_mode = trainer::ParseTrainingMode(mode);
    if (!parsed_mode.ok()) throw CLI::ValidationError("--mode", parsed_mode.status().message());
    options.mode = *parsed_mode;
    auto parsed_sampler = training::ParseSamplerKind(sampler);
    if (!parsed_sampler.ok()) {
      throw CLI::ValidationError("--sampler", parsed_sampler.status().message());
    }
    options.sampler.kind = *parsed_sampler;
    options.sampler.seed = options.model.seed;
    auto parsed_optimizer = model::ParseOptimizerKind(optimizer);
    if (!parsed_optimizer.ok()) {
      throw CLI::ValidationError("--optimizer", parsed_optimizer.status().message());
    }
    options.model.optimizer.kind = *parsed_optimizer;
    if (Status device = model::ValidateDevice(options.model.device); !device.ok()) {
      throw CLI::ValidationError("--device", device.message());
    }
    options.stop_after_records = stop_after;
    auto check = [](std::string_view flag, const auto& parsed) {
      if (!parsed.ok()) throw CLI::ValidationError(std::string(flag), parsed.status().message());
      return *parsed;
    };
    deployment.mode = deploy.empty()
                          ? (options.kafka.brokers.empty() ? trainer::DeployMode::kOff
                                                           : trainer::DeployMode::kSparse)
                          : check("--deploy", trainer::ParseDeployMode(deploy));
    deployment.sparsifier.kind = check("--sparsifier", sparse::ParseSparsifierKind(sparsifier));
    deployment.sparsifier.ratio = check("--ratio", sparse::ParseRatio(ratio));
    deployment.sparsifier.scope = check("--scope", sparse::ParseSparsifierScope(scope));
    deployment.sparsifier.feedback =
        check("--feedback", sparse::ParseFeedbackMode(feedback.empty() ? "shadow" : feedback));
    deployment.feedback_follows_checkpoint = feedback.empty();
    deployment.sparsifier.warmup = check("--warmup", sparse::ParseWarmupMode(warmup));
    deployment.sparsifier.seed = options.model.seed;
    deployment.values = check("--delta-values", trainer::ParseValueEncoding(delta_values));
    deployment.hmac_key = cli::ResolveHmacKey("--hmac-key-file", hmac_key_file);
    options.swap.deploy = check("--swap-deploy", trainer::ParseSwapDeploy(swap_deploy));
    if (!swap_retrain_from.empty()) {
      options.swap.retrain_from =
          check("--swap-retrain-from", trainer::ParseSwapRetrainFrom(swap_retrain_from));
    }
    options.triggers.adaptive =
        check("--adaptive-trigger", trainer::ParseOnOff("--adaptive-trigger", adaptive_trigger));
    options.triggers.max_wait = check("--max-wait", trainer::ParseDuration("--max-wait", max_wait));
    options.drift.forget_before_change = check(
        "--forget-before-drift", trainer::ParseOnOff("--forget-before-drift", forget_before_drift));
    if (drift_detector != "off") {
      detector.kind = check("--drift-detector", drift::ParseDetectorKind(drift_detector));
      if (Status valid = drift::ValidateDetectorOptions(detector); !valid.ok()) {
        throw CLI::ValidationError("--drift-detector", valid.message());
      }
      options.drift.detector = detector;
    }
    options.drift.action = check("--drift-action", trainer::ParseDriftAction(drift_action));
    if (Status swap = trainer::ValidateSwapOptions(options.swap); !swap.ok()) {
      throw CLI::ValidationError("--swap", swap.message());
    }
    if (Status group = trainer::ApplyDistributedFlags(distributed_flags, options.distributed);
        !group.ok()) {
      throw CLI::ValidationError("--world-size", group.message());
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  return cli::RunService("trainer", [&] { return trainer::TrainerApp::Create(options); });
}

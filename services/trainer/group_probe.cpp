#include "group_probe.h"

namespace streamtrain::trainer {
namespace {

const prometheus::Histogram::BucketBoundaries& WaitBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5};
  return buckets;
}

}  // namespace

GroupProbe::GroupProbe(prometheus::Registry& registry, int rank, int world_size)
    : rank_(std::to_string(rank)),
      wait_(prometheus::BuildHistogram()
                .Name("streamtrain_trainer_group_collective_seconds")
                .Help("Time in each collective of the training group, waiting for the other "
                      "ranks included (op: agree, scores, gradient, topk, digest, inject, "
                      "checkpoint)")
                .Register(registry)),
      bytes_(prometheus::BuildCounter()
                 .Name("streamtrain_trainer_group_bytes_total")
                 .Help("Bytes this rank sent in collectives (ring algorithms' traffic), by op")
                 .Register(registry)),
      iterations_(prometheus::BuildCounter()
                      .Name("streamtrain_trainer_group_iterations_total")
                      .Help("Global iterations by gradient exchange: dense (allreduce) or topk "
                            "(adaptive top-k, compressed)")
                      .Register(registry)),
      contributed_(prometheus::BuildCounter()
                       .Name("streamtrain_trainer_group_records_contributed_total")
                       .Help("New records this rank contributed to global iterations (S_i)")
                       .Register(registry)
                       .Add({{"rank", rank_}})),
      idle_(prometheus::BuildCounter()
                .Name("streamtrain_trainer_group_idle_rounds_total")
                .Help("Agreement rounds that waited: the group had fewer than t new records")
                .Register(registry)
                .Add({{"rank", rank_}})),
      buffer_(prometheus::BuildGauge()
                  .Name("streamtrain_trainer_group_buffer_records")
                  .Help("New records waiting in this rank's stream buffer")
                  .Register(registry)
                  .Add({{"rank", rank_}})),
      dropped_(prometheus::BuildCounter()
                   .Name("streamtrain_trainer_group_buffer_dropped_records_total")
                   .Help("Records stream truncation dropped before training on them as new "
                         "(they stay in the store as history)")
                   .Register(registry)
                   .Add({{"rank", rank_}})),
      injected_sent_(prometheus::BuildCounter()
                         .Name("streamtrain_trainer_group_injected_records_total")
                         .Help("Records shared by randomized data injection, by direction")
                         .Register(registry)
                         .Add({{"rank", rank_}, {"direction", "sent"}})),
      injected_received_(prometheus::BuildCounter()
                             .Name("streamtrain_trainer_group_injected_records_total")
                             .Help("Records shared by randomized data injection, by direction")
                             .Register(registry)
                             .Add({{"rank", rank_}, {"direction", "received"}})),
      digest_agree_(prometheus::BuildCounter()
                        .Name("streamtrain_trainer_group_digest_checks_total")
                        .Help("Parameter digest comparisons across the ranks, by result")
                        .Register(registry)
                        .Add({{"rank", rank_}, {"result", "agree"}})),
      digest_mismatch_(prometheus::BuildCounter()
                           .Name("streamtrain_trainer_group_digest_checks_total")
                           .Help("Parameter digest comparisons across the ranks, by result")
                           .Register(registry)
                           .Add({{"rank", rank_}, {"result", "mismatch"}})),
      digest_ok_(prometheus::BuildGauge()
                     .Name("streamtrain_trainer_group_digest_agreement")
                     .Help("1 when the last digest comparison found every rank identical")
                     .Register(registry)
                     .Add({{"rank", rank_}})),
      accuracy_(prometheus::BuildGauge()
                    .Name("streamtrain_trainer_group_prequential_accuracy")
                    .Help("Prequential accuracy of the whole group (counts summed over the "
                          "ranks), by scope")
                    .Register(registry)
                    .Add({{"rank", rank_}, {"scope", "cumulative"}})),
      window_accuracy_(prometheus::BuildGauge()
                           .Name("streamtrain_trainer_group_prequential_accuracy")
                           .Help("Prequential accuracy of the whole group (counts summed over "
                                 "the ranks), by scope")
                           .Register(registry)
                           .Add({{"rank", rank_}, {"scope", "window"}})) {
  prometheus::BuildGauge()
      .Name("streamtrain_trainer_group_info")
      .Help("This trainer's place in its training group")
      .Register(registry)
      .Add({{"rank", rank_}, {"world_size", std::to_string(world_size)}})
      .Set(1);
  for (const char* exchange : {"dense", "topk"}) {
    iterations_.Add({{"rank", rank_}, {"exchange", exchange}});
  }
}

void GroupProbe::Iteration(uint64_t records, const std::string& exchange) {
  contributed_.Increment(static_cast<double>(records));
  iterations_.Add({{"rank", rank_}, {"exchange", exchange}}).Increment();
}

void GroupProbe::Collective(const std::string& op, double seconds, double bytes) {
  wait_.Add({{"rank", rank_}, {"op", op}}, WaitBuckets()).Observe(seconds);
  bytes_.Add({{"rank", rank_}, {"op", op}}).Increment(bytes);
}

void GroupProbe::Injected(uint64_t sent, uint64_t received) {
  injected_sent_.Increment(static_cast<double>(sent));
  injected_received_.Increment(static_cast<double>(received));
}

void GroupProbe::Digest(bool agree) {
  (agree ? digest_agree_ : digest_mismatch_).Increment();
  digest_ok_.Set(agree ? 1 : 0);
}

void GroupProbe::Accuracy(double cumulative, double window) {
  accuracy_.Set(cumulative);
  window_accuracy_.Set(window);
}

}  // namespace streamtrain::trainer

// Histogram bucket layouts shared by every Probe, so dashboards can compare services.
#pragma once

#include <prometheus/histogram.h>

namespace streamtrain::metrics {

// Latency in seconds, 50 us to 30 s, roughly x2.5 per bucket.
prometheus::Histogram::BucketBoundaries LatencyBuckets();

}  // namespace streamtrain::metrics

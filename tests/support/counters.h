// Reading counters back from a prometheus-cpp registry in tests: what a scrape would show.
#pragma once

#include <prometheus/registry.h>

#include <algorithm>
#include <map>
#include <string>

namespace streamtrain::testing {

// Sum of the series of counter family `name` that carry every label=value in `labels`.
inline double CounterSum(prometheus::Registry& registry, const std::string& name,
                         const std::map<std::string, std::string>& labels) {
  double sum = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      const bool match = std::all_of(labels.begin(), labels.end(), [&](const auto& want) {
        return std::any_of(m.label.begin(), m.label.end(), [&](const auto& l) {
          return l.name == want.first && l.value == want.second;
        });
      });
      if (match) sum += m.counter.value;
    }
  }
  return sum;
}

// CounterSum with one label.
inline double CounterValue(prometheus::Registry& registry, const std::string& name,
                           const std::string& label, const std::string& value) {
  return CounterSum(registry, name, {{label, value}});
}

}  // namespace streamtrain::testing

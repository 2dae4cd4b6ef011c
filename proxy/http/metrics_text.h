// The Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). Families are declared
// once and samples are added in any order; render() writes each family as one block,
// `# HELP` and `# TYPE` followed by all its samples, because the parser rejects a
// family's HELP or TYPE seen twice and promtool wants a family's samples together. So a
// scrape can walk the pools once, adding each pool's samples to every family.
#pragma once

#include "proxy/http/layer.h"

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/core/histogram.h"

namespace pgsidecar::http {

using proxy::HistogramSnapshot;
using proxy::kLatencyBoundsNs;
using proxy::kLatencyBuckets;

// A label pair, copied (and escaped) when its sample is added.
struct Label {
  std::string_view name;   // [a-zA-Z_][a-zA-Z0-9_]*; "le" belongs to histogram buckets
  std::string_view value;  // any UTF-8
};

// Handles to declared families; a sample of the wrong type does not compile.
struct CounterFamily { std::size_t index; };
struct GaugeFamily { std::size_t index; };
struct HistogramFamily { std::size_t index; };

class MetricsText {
 public:
  // Metric names match [a-zA-Z_:][a-zA-Z0-9_:]*. A counter's samples get the `_total`
  // suffix when the name lacks it. Declaring a name again with the same type returns
  // the same family; with another type it is a bug (assert), and the redeclared
  // family's samples are dropped so the output stays parseable.
  CounterFamily counter(std::string_view name, std::string_view help);
  GaugeFamily gauge(std::string_view name, std::string_view help);
  // Buckets are kLatencyBoundsNs, written in seconds; name it `..._seconds`.
  HistogramFamily histogram(std::string_view name, std::string_view help);

  void add(CounterFamily f, std::span<const Label> labels, uint64_t value);
  void add(GaugeFamily f, std::span<const Label> labels, double value);
  // Writes `_bucket{...,le="..."}` cumulatively up to `le="+Inf"`, then `_sum` (seconds)
  // and `_count`.
  void add(HistogramFamily f, std::span<const Label> labels, const HistogramSnapshot& h);

  void add(CounterFamily f, std::initializer_list<Label> labels, uint64_t value) {
    add(f, std::span(labels.begin(), labels.size()), value);
  }
  void add(GaugeFamily f, std::initializer_list<Label> labels, double value) {
    add(f, std::span(labels.begin(), labels.size()), value);
  }
  void add(HistogramFamily f, std::initializer_list<Label> labels, const HistogramSnapshot& h) {
    add(f, std::span(labels.begin(), labels.size()), h);
  }

  // Every family in declaration order, a family without samples as HELP and TYPE only.
  std::string render() const;

 private:
  enum class Type { Counter, Gauge, Histogram, Rejected };
  struct Family {
    std::string name;  // as written in TYPE and on the samples (counters with _total)
    std::string help;  // escaped
    Type type;
    std::string samples;  // rendered sample lines
  };
  std::size_t declare(std::string_view name, std::string_view help, Type type);
  Family* family(std::size_t index, Type type);

  std::vector<Family> families_;
};

// Escaping as the format specifies. Label values: backslash, double quote and line feed
// become \\, \" and \n. HELP text: backslash and line feed only.
void append_escaped_label_value(std::string& out, std::string_view value);
void append_escaped_help(std::string& out, std::string_view help);
// A number as Prometheus's Go client writes it: shortest round-trip digits, exponent
// form below 1e-4 and from 1e6 on ("5e-05", "0.0001", "30", "1.5e+06"), and NaN,
// +Inf, -Inf. Counters, being integers, are written exactly instead.
void append_sample_value(std::string& out, double value);

bool is_metric_name(std::string_view name);
bool is_label_name(std::string_view name);

}  // namespace pgsidecar::http

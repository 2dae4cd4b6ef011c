#include "proxy/http/metrics_text.h"

#include <doctest/doctest.h>

#include <chrono>
#include <limits>
#include <string>
#include <vector>

#include "unit/http/promtool.h"

using namespace std::chrono_literals;
using pgsidecar::http::append_escaped_help;
using pgsidecar::http::append_escaped_label_value;
using pgsidecar::http::append_sample_value;
using pgsidecar::http::HistogramSnapshot;
using pgsidecar::http::Label;
using pgsidecar::proxy::LatencyHistogram;
using pgsidecar::http::MetricsText;
using pgsidecar::test::promtool_check_metrics;

namespace {

std::string escaped_label(std::string_view v) {
  std::string out;
  append_escaped_label_value(out, v);
  return out;
}

std::string value_text(double v) {
  std::string out;
  append_sample_value(out, v);
  return out;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// What a scrape of two pools on two workers might produce: every family, labels whose
// values need escaping, histograms with observations in several buckets and above 30 s.
std::string sample_exposition() {
  MetricsText text;
  const auto queries = text.counter("pgsidecar_queries", "Queries forwarded to a server.");
  const auto errors = text.counter("pgsidecar_errors_total", "Errors sent to clients, by SQLSTATE.");
  const auto servers = text.gauge("pgsidecar_pool_servers", "Server connections by state.");
  const auto up = text.gauge("pgsidecar_up", "1 while the process serves.");
  const auto wait = text.histogram("pgsidecar_pool_wait_seconds", "Time a client waited for a server.\nPer pool.");
  const auto duration = text.histogram("pgsidecar_query_duration_seconds", "Query latency through the proxy.");

  LatencyHistogram worker0;
  LatencyHistogram worker1;
  for (int i = 0; i < 200; ++i) {
    worker0.record(std::chrono::microseconds(30 + 7 * i));
    worker1.record(std::chrono::milliseconds(i % 40));
  }
  worker1.record(45s);

  text.add(up, {}, 1);
  for (const std::string_view db : {"app", "odd \"db\"\\name\nline2"}) {
    text.add(queries, {{"database", db}, {"user", "app"}}, 1234);
    text.add(errors, {{"database", db}, {"sqlstate", "08006"}}, 3);
    text.add(servers, {{"database", db}, {"state", "idle"}}, 4);
    text.add(servers, {{"database", db}, {"state", "active"}}, 2);
    text.add(wait, {{"database", db}}, worker0.snapshot() + worker1.snapshot());
    text.add(duration, {{"database", db}, {"role", "primary"}}, worker0.snapshot());
    text.add(duration, {{"database", db}, {"role", "replica"}}, HistogramSnapshot{});
  }
  return text.render();
}

}  // namespace

TEST_CASE("label values escape backslash, double quote and line feed, and nothing else") {
  CHECK(escaped_label("plain") == "plain");
  CHECK(escaped_label("a\\b") == "a\\\\b");
  CHECK(escaped_label("say \"hi\"") == "say \\\"hi\\\"");
  CHECK(escaped_label("one\ntwo") == "one\\ntwo");
  CHECK(escaped_label("tab\there, café, {x=1}") == "tab\there, café, {x=1}");
  CHECK(escaped_label("") == "");
}

TEST_CASE("HELP text escapes backslash and line feed but leaves quotes") {
  std::string out;
  append_escaped_help(out, "a \"quoted\" path C:\\x\nnext");
  CHECK(out == "a \"quoted\" path C:\\\\x\\nnext");
}

TEST_CASE("sample values are written as Prometheus's Go client writes them") {
  CHECK(value_text(0) == "0");
  CHECK(value_text(3) == "3");
  CHECK(value_text(0.5) == "0.5");
  CHECK(value_text(5e-05) == "5e-05");
  CHECK(value_text(0.0001) == "0.0001");
  CHECK(value_text(0.00025) == "0.00025");
  CHECK(value_text(40.00305) == "40.00305");
  CHECK(value_text(123456) == "123456");
  CHECK(value_text(1234567) == "1.234567e+06");
  CHECK(value_text(1e15) == "1e+15");
  CHECK(value_text(-2.5) == "-2.5");
  CHECK(value_text(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  CHECK(value_text(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(value_text(-std::numeric_limits<double>::infinity()) == "-Inf");
}

TEST_CASE("a counter, a gauge and a histogram render exactly") {
  MetricsText text;
  const auto c = text.counter("pgsidecar_queries", "Queries forwarded.");
  const auto g = text.gauge("pgsidecar_clients", "Connected clients.");
  const auto h = text.histogram("pgsidecar_query_duration_seconds", "Latency.");
  text.add(c, {{"database", "app"}, {"user", "u\"1"}}, 42);
  text.add(g, {}, 7);
  LatencyHistogram lh;
  lh.record(50us);   // le 5e-05
  lh.record(3ms);    // le 0.005
  lh.record(40s);    // +Inf only
  text.add(h, {{"database", "app"}}, lh.snapshot());

  const std::string expected =
      "# HELP pgsidecar_queries_total Queries forwarded.\n"
      "# TYPE pgsidecar_queries_total counter\n"
      "pgsidecar_queries_total{database=\"app\",user=\"u\\\"1\"} 42\n"
      "# HELP pgsidecar_clients Connected clients.\n"
      "# TYPE pgsidecar_clients gauge\n"
      "pgsidecar_clients 7\n"
      "# HELP pgsidecar_query_duration_seconds Latency.\n"
      "# TYPE pgsidecar_query_duration_seconds histogram\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"5e-05\"} 1\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"0.0001\"} 1\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"0.00025\"} 1\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"0.0005\"} 1\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"0.001\"} 1\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"0.0025\"} 1\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"0.005\"} 2\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"0.01\"} 2\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"0.025\"} 2\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"0.05\"} 2\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"0.1\"} 2\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"0.25\"} 2\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"0.5\"} 2\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"1\"} 2\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"2.5\"} 2\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"5\"} 2\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"10\"} 2\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"30\"} 2\n"
      "pgsidecar_query_duration_seconds_bucket{database=\"app\",le=\"+Inf\"} 3\n"
      "pgsidecar_query_duration_seconds_sum{database=\"app\"} 40.00305\n"
      "pgsidecar_query_duration_seconds_count{database=\"app\"} 3\n";
  CHECK(text.render() == expected);
}

TEST_CASE("a histogram without labels puts le alone in braces") {
  MetricsText text;
  const auto h = text.histogram("x_seconds", "X.");
  text.add(h, {}, HistogramSnapshot{});
  const std::string out = text.render();
  CHECK(out.find("x_seconds_bucket{le=\"5e-05\"} 0\n") != std::string::npos);
  CHECK(out.find("x_seconds_bucket{le=\"+Inf\"} 0\n") != std::string::npos);
  CHECK(out.find("x_seconds_sum 0\n") != std::string::npos);
  CHECK(out.find("x_seconds_count 0\n") != std::string::npos);
}

TEST_CASE("samples added to families in turn come out one block per family") {
  MetricsText text;
  const auto a = text.counter("a", "A.");
  const auto b = text.gauge("b", "B.");
  text.add(a, {{"pool", "1"}}, 1);
  text.add(b, {{"pool", "1"}}, 10);
  text.add(a, {{"pool", "2"}}, 2);
  text.add(b, {{"pool", "2"}}, 20);
  CHECK(text.render() ==
        "# HELP a_total A.\n# TYPE a_total counter\na_total{pool=\"1\"} 1\na_total{pool=\"2\"} 2\n"
        "# HELP b B.\n# TYPE b gauge\nb{pool=\"1\"} 10\nb{pool=\"2\"} 20\n");
}

TEST_CASE("declaring a family again with the same type adds to the first; _total is not doubled") {
  MetricsText text;
  const auto first = text.counter("hits_total", "Hits.");
  const auto again = text.counter("hits", "Hits, again.");
  CHECK(first.index == again.index);
  text.add(first, {}, 1);
  text.add(again, {{"k", "v"}}, 2);
  const std::string out = text.render();
  CHECK(occurrences(out, "# HELP") == 1);
  CHECK(occurrences(out, "# TYPE hits_total counter\n") == 1);
  CHECK(out.find("hits_total_total") == std::string::npos);
  CHECK(out.find("hits_total 1\n") != std::string::npos);
  CHECK(out.find("hits_total{k=\"v\"} 2\n") != std::string::npos);
}

TEST_CASE("a declared family without samples is HELP and TYPE alone") {
  MetricsText text;
  text.gauge("idle", "Nothing yet.");
  CHECK(text.render() == "# HELP idle Nothing yet.\n# TYPE idle gauge\n");
}

TEST_CASE("names: metric names may hold colons, label names may not") {
  using pgsidecar::http::is_label_name;
  using pgsidecar::http::is_metric_name;
  CHECK(is_metric_name("pgsidecar_pool_wait_seconds"));
  CHECK(is_metric_name("job:rate5m"));
  CHECK_FALSE(is_metric_name(""));
  CHECK_FALSE(is_metric_name("9lives"));
  CHECK_FALSE(is_metric_name("with-dash"));
  CHECK(is_label_name("sqlstate"));
  CHECK_FALSE(is_label_name("a:b"));
  CHECK_FALSE(is_label_name("1a"));
}

TEST_CASE("promtool accepts a full exposition with counters, gauges and labelled histograms") {
  const std::string exposition = sample_exposition();
  // Each family once, whatever order the samples were added in.
  CHECK(occurrences(exposition, "# TYPE pgsidecar_pool_servers gauge") == 1);
  CHECK(occurrences(exposition, "# TYPE pgsidecar_query_duration_seconds histogram") == 1);
  CHECK(exposition.find("database=\"odd \\\"db\\\"\\\\name\\nline2\"") != std::string::npos);

  const auto r = promtool_check_metrics(exposition);
  INFO("promtool said: " << r.output);
  INFO("exposition:\n" << exposition);
  CHECK(r.exit_code == 0);
}

TEST_CASE("promtool rejects an unescaped label value and a family written twice, so the check can fail") {
  const auto unescaped = promtool_check_metrics(
      "# HELP q_total Q.\n# TYPE q_total counter\nq_total{database=\"one\ntwo\"} 1\n");
  INFO("promtool said: " << unescaped.output);
  CHECK(unescaped.exit_code > 0);

  const auto twice = promtool_check_metrics(
      "# HELP g G.\n# TYPE g gauge\ng{a=\"1\"} 1\n# HELP g G.\n# TYPE g gauge\ng{a=\"2\"} 2\n");
  INFO("promtool said: " << twice.output);
  CHECK(twice.exit_code > 0);

  const auto counter_without_total = promtool_check_metrics("# HELP c C.\n# TYPE c counter\nc 1\n");
  INFO("promtool said: " << counter_without_total.output);
  CHECK(counter_without_total.exit_code > 0);
}

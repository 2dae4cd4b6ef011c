#include "proxy/http/metrics_text.h"

#include <cassert>
#include <charconv>
#include <cmath>

namespace pgsidecar::http {
namespace {

bool name_char(char c, bool first, bool colon) {
  const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return letter || (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

bool valid_name(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!name_char(name[i], i == 0, colon)) return false;
  }
  return true;
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// `{a="x",b="y"` without the closing brace, so a histogram can append `le`; nothing
// when there are no labels.
void append_label_pairs(std::string& out, std::span<const Label> labels) {
  char sep = '{';
  for (const Label& l : labels) {
    assert(is_label_name(l.name));
    out += sep;
    out.append(l.name);
    out += "=\"";
    append_escaped_label_value(out, l.value);
    out += '"';
    sep = ',';
  }
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix,
                   std::span<const Label> labels, std::string_view extra_label) {
  out.append(name);
  out.append(suffix);
  append_label_pairs(out, labels);
  if (!extra_label.empty()) {
    out += labels.empty() ? '{' : ',';
    out.append(extra_label);
  }
  if (!labels.empty() || !extra_label.empty()) out += '}';
  out += ' ';
}

}  // namespace

bool is_metric_name(std::string_view name) { return valid_name(name, true); }
bool is_label_name(std::string_view name) { return valid_name(name, false); }

void append_escaped_label_value(std::string& out, std::string_view value) {
  for (const char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void append_escaped_help(std::string& out, std::string_view help) {
  for (const char c : help) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void append_sample_value(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    // Shortest round-trip digits, laid out as Go's strconv 'g' with precision -1 (what
    // Prometheus's client library writes): exponent form below 1e-4 and from 1e6 on,
    // plain decimals between. So `le` reads "0.0001" and "5e-05", as in other exporters.
    char buf[40];
    const auto sci = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
    const std::string_view text(buf, static_cast<std::size_t>(sci.ptr - buf));
    int exponent = 0;
    const std::string_view digits = text.substr(text.find('e') + 1);
    std::from_chars(digits.data() + (digits.front() == '+' ? 1 : 0), digits.data() + digits.size(), exponent);
    if (exponent < -4 || exponent >= 6) {
      out.append(text);
    } else {
      const auto fixed = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
      out.append(buf, fixed.ptr);
    }
  }
}

std::size_t MetricsText::declare(std::string_view name, std::string_view help, Type type) {
  assert(is_metric_name(name));
  std::string full(name);
  if (type == Type::Counter && !full.ends_with("_total")) full += "_total";
  for (std::size_t i = 0; i < families_.size(); ++i) {
    if (families_[i].name != full || families_[i].type == Type::Rejected) continue;
    if (families_[i].type == type) return i;
    assert(!"a metric family declared twice with different types");
    type = Type::Rejected;
    break;
  }
  Family f{std::move(full), {}, type, {}};
  append_escaped_help(f.help, help);
  families_.push_back(std::move(f));
  return families_.size() - 1;
}

CounterFamily MetricsText::counter(std::string_view name, std::string_view help) {
  return {declare(name, help, Type::Counter)};
}
GaugeFamily MetricsText::gauge(std::string_view name, std::string_view help) {
  return {declare(name, help, Type::Gauge)};
}
HistogramFamily MetricsText::histogram(std::string_view name, std::string_view help) {
  return {declare(name, help, Type::Histogram)};
}

MetricsText::Family* MetricsText::family(std::size_t index, Type type) {
  assert(index < families_.size());
  if (index >= families_.size() || families_[index].type != type) return nullptr;
  return &families_[index];
}

void MetricsText::add(CounterFamily f, std::span<const Label> labels, uint64_t value) {
  Family* fam = family(f.index, Type::Counter);
  if (fam == nullptr) return;
  append_sample(fam->samples, fam->name, {}, labels, {});
  append_uint(fam->samples, value);
  fam->samples += '\n';
}

void MetricsText::add(GaugeFamily f, std::span<const Label> labels, double value) {
  Family* fam = family(f.index, Type::Gauge);
  if (fam == nullptr) return;
  append_sample(fam->samples, fam->name, {}, labels, {});
  append_sample_value(fam->samples, value);
  fam->samples += '\n';
}

void MetricsText::add(HistogramFamily f, std::span<const Label> labels, const HistogramSnapshot& h) {
  Family* fam = family(f.index, Type::Histogram);
  if (fam == nullptr) return;
  for ([[maybe_unused]] const Label& l : labels) assert(l.name != "le");
  std::string& out = fam->samples;
  uint64_t cumulative = 0;
  std::string le;
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) {
    cumulative += h.buckets[i];
    le = "le=\"";
    if (i < kLatencyBoundsNs.size()) {
      append_sample_value(le, static_cast<double>(kLatencyBoundsNs[i]) / 1e9);
    } else {
      le += "+Inf";
    }
    le += '"';
    append_sample(out, fam->name, "_bucket", labels, le);
    append_uint(out, cumulative);
    out += '\n';
  }
  append_sample(out, fam->name, "_sum", labels, {});
  append_sample_value(out, h.sum_seconds());
  out += '\n';
  append_sample(out, fam->name, "_count", labels, {});
  append_uint(out, cumulative);
  out += '\n';
}

std::string MetricsText::render() const {
  std::string out;
  for (const Family& f : families_) {
    if (f.type == Type::Rejected) continue;
    out += "# HELP ";
    out += f.name;
    out += ' ';
    out += f.help;
    out += "\n# TYPE ";
    out += f.name;
    out += f.type == Type::Counter ? " counter\n" : f.type == Type::Gauge ? " gauge\n" : " histogram\n";
    out += f.samples;
  }
  return out;
}

}  // namespace pgsidecar::http

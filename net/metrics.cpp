#include "net/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace p2p::metrics {

namespace {

std::string_view type_name(Type t) {
  switch (t) {
    case Type::kCounter: return "counter";
    case Type::kGauge: return "gauge";
    case Type::kHistogram: return "histogram";
    case Type::kUntyped: return "untyped";
  }
  return "untyped";
}

std::string escape(std::string_view s, bool quotes) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

void Histogram::observe(double value) {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  if (it != bounds_.end()) ++counts_[static_cast<std::size_t>(it - bounds_.begin())];
  ++count_;
  sum_ += value;
}

std::string escape_label_value(std::string_view value) {
  return escape(value, true);
}
std::string escape_help(std::string_view help) {
  return escape(help, false);
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, r.ptr);
}

void Writer::begin(std::string_view name, Type type, std::string_view help) {
  name_ = name;
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escape_help(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type_name(type);
  out_ += '\n';
}

void Writer::series(std::string_view suffix, std::initializer_list<Label> labels,
                    std::pair<std::string_view, std::string_view> extra) {
  out_ += name_;
  out_ += suffix;
  if (labels.size() == 0 && extra.first.empty()) {
    out_ += ' ';
    return;
  }
  char sep = '{';
  auto add = [&](std::string_view name, std::string_view value) {
    out_ += sep;
    out_ += name;
    out_ += "=\"";
    out_ += escape_label_value(value);
    out_ += '"';
    sep = ',';
  };
  for (const Label& l : labels) add(l.name, l.value);
  if (!extra.first.empty()) add(extra.first, extra.second);
  out_ += "} ";
}

void Writer::sample(std::initializer_list<Label> labels, std::uint64_t value) {
  series("", labels);
  out_ += std::to_string(value);
  out_ += '\n';
}

void Writer::sample(std::initializer_list<Label> labels, double value) {
  series("", labels);
  out_ += format_value(value);
  out_ += '\n';
}

void Writer::histogram(std::initializer_list<Label> labels, const Histogram& h) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.bounds().size(); ++i) {
    cumulative += h.counts()[i];
    series("_bucket", labels, {"le", format_value(h.bounds()[i])});
    out_ += std::to_string(cumulative);
    out_ += '\n';
  }
  series("_bucket", labels, {"le", "+Inf"});
  out_ += std::to_string(h.count());
  out_ += '\n';
  series("_sum", labels);
  out_ += format_value(h.sum());
  out_ += '\n';
  series("_count", labels);
  out_ += std::to_string(h.count());
  out_ += '\n';
}

void Writer::counter(std::string_view name, std::string_view help, std::uint64_t value) {
  begin(name, Type::kCounter, help);
  sample({}, value);
}

void Writer::gauge(std::string_view name, std::string_view help, double value) {
  begin(name, Type::kGauge, help);
  sample({}, value);
}

}  // namespace p2p::metrics

// Prometheus text exposition format 0.0.4, rendered without I/O: a Writer collects metric
// families (HELP and TYPE lines, then their samples) into one text; the shells serve it at
// /metrics (net/asio/metrics_server.hpp). What each program exports is its own renderer
// (daemon/status/node_metrics.hpp, coordinator/shell/coordinator_metrics.hpp).
//
// Contract: names are metric names as Prometheus defines them ([a-zA-Z_:][a-zA-Z0-9_:]*) and
// label names ([a-zA-Z_][a-zA-Z0-9_]*); the Writer checks neither, callers pass constants.
// Label values and HELP texts may hold anything: they are escaped (\\, \" in values, \n).
// Each family is begun once, before its samples; a family without samples is still valid.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace p2p::metrics {

enum class Type { kCounter, kGauge, kHistogram, kUntyped };

struct Label {
  std::string_view name;
  std::string_view value;
};

// A histogram with fixed upper bounds (seconds, ascending); +Inf is implied.
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds) : bounds_(bounds), counts_(bounds.size()) {}
  void observe(double value);
  std::span<const double> bounds() const { return bounds_; }
  // Non-cumulative: counts()[i] observations fell in (bounds[i-1], bounds[i]].
  std::span<const std::uint64_t> counts() const { return counts_; }
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::span<const double> bounds_;  // static storage, owned by the caller
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

class Writer {
 public:
  // "# HELP name help" and "# TYPE name type".
  void begin(std::string_view name, Type type, std::string_view help);
  // One sample of the family last begun: name{labels} value.
  void sample(std::initializer_list<Label> labels, std::uint64_t value);
  void sample(std::initializer_list<Label> labels, double value);
  // The _bucket (cumulative, le="..."), _sum and _count samples of the family last begun.
  void histogram(std::initializer_list<Label> labels, const Histogram& h);
  // Shorthands for a family of one unlabelled sample.
  void counter(std::string_view name, std::string_view help, std::uint64_t value);
  void gauge(std::string_view name, std::string_view help, double value);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void series(std::string_view suffix, std::initializer_list<Label> labels,
              std::pair<std::string_view, std::string_view> extra = {});
  std::string name_;
  std::string out_;
};

// A label value with \, " and newline escaped.
std::string escape_label_value(std::string_view value);
// A HELP text with \ and newline escaped.
std::string escape_help(std::string_view help);
// A sample value: integers exactly, others shortest round-trip, +Inf, -Inf, NaN.
std::string format_value(double value);

// The Content-Type of this format.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace p2p::metrics

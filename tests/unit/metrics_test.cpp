// Prometheus exposition (net/metrics.hpp), the /metrics request parser and responses
// (net/http_request.hpp), both programs' renderers, the log format choice, and the Asio
// MetricsServer on loopback with its limits.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "config/startup.hpp"
#include "coordinator/shell/coordinator_metrics.hpp"
#include "daemon/status/node_metrics.hpp"
#include "net/asio/metrics_server.hpp"
#include "net/http_request.hpp"
#include "net/metrics.hpp"

namespace p2p {
namespace {

using namespace std::chrono_literals;
using http::Verdict;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// --- the exposition format ---------------------------------------------------------------------

TEST(MetricsWriter, HelpTypeAndSamples) {
  metrics::Writer w;
  w.begin("p2pvpn_x_total", metrics::Type::kCounter, "Things.\nMore \\ things.");
  w.sample({}, std::uint64_t{18446744073709551615u});
  w.sample({{"peer", "a\"b\\c\nd"}, {"vip", "10.0.0.2"}}, std::uint64_t{3});
  w.gauge("p2pvpn_g", "A gauge.", 0.25);
  EXPECT_EQ(w.text(),
            "# HELP p2pvpn_x_total Things.\\nMore \\\\ things.\n"
            "# TYPE p2pvpn_x_total counter\n"
            "p2pvpn_x_total 18446744073709551615\n"
            "p2pvpn_x_total{peer=\"a\\\"b\\\\c\\nd\",vip=\"10.0.0.2\"} 3\n"
            "# HELP p2pvpn_g A gauge.\n"
            "# TYPE p2pvpn_g gauge\n"
            "p2pvpn_g 0.25\n");
}

TEST(MetricsWriter, Values) {
  EXPECT_EQ(metrics::format_value(1), "1");
  EXPECT_EQ(metrics::format_value(0.1), "0.1");
  EXPECT_EQ(metrics::format_value(1e300 * 1e300), "+Inf");
  EXPECT_EQ(metrics::format_value(-1e300 * 1e300), "-Inf");
  EXPECT_EQ(metrics::format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(metrics::escape_help("a\"b"), "a\"b");  // quotes stay in HELP
  EXPECT_EQ(metrics::escape_label_value("ü\t"), "ü\t");
}

TEST(MetricsWriter, HistogramIsCumulativeWithInf) {
  static constexpr double kBounds[] = {0.5, 1, 5};
  metrics::Histogram h(kBounds);
  for (double v : {0.1, 0.5, 0.7, 3.0, 100.0}) h.observe(v);
  metrics::Writer w;
  w.begin("t_seconds", metrics::Type::kHistogram, "T.");
  w.histogram({{"k", "v"}}, h);
  EXPECT_EQ(w.text(),
            "# HELP t_seconds T.\n# TYPE t_seconds histogram\n"
            "t_seconds_bucket{k=\"v\",le=\"0.5\"} 2\n"
            "t_seconds_bucket{k=\"v\",le=\"1\"} 3\n"
            "t_seconds_bucket{k=\"v\",le=\"5\"} 4\n"
            "t_seconds_bucket{k=\"v\",le=\"+Inf\"} 5\n"
            "t_seconds_sum{k=\"v\"} 104.3\n"
            "t_seconds_count{k=\"v\"} 5\n");
}

// --- the request parser ------------------------------------------------------------------------

TEST(HttpRequest, Verdicts) {
  constexpr std::size_t kMax = 4096;
  EXPECT_EQ(http::parse_request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", kMax),
            Verdict::kMetrics);
  EXPECT_EQ(http::parse_request("GET /metrics?x=1 HTTP/1.0\n\n", kMax), Verdict::kMetrics);
  EXPECT_EQ(http::parse_request("GET /metrics HTTP/1.1\r\nHost: x\r\n", kMax),
            Verdict::kIncomplete);
  EXPECT_EQ(http::parse_request("GET /metr", kMax), Verdict::kIncomplete);
  EXPECT_EQ(http::parse_request("GET / HTTP/1.1\r\n\r\n", kMax), Verdict::kNotFound);
  EXPECT_EQ(http::parse_request("GET /metricsx HTTP/1.1\r\n\r\n", kMax), Verdict::kNotFound);
  EXPECT_EQ(http::parse_request("POST /metrics HTTP/1.1\r\n\r\n", kMax),
            Verdict::kMethodNotAllowed);
  // Malformed at once, without waiting for the end of the headers.
  EXPECT_EQ(http::parse_request("GET /metrics HTTP/2\r\n", kMax), Verdict::kBadRequest);
  EXPECT_EQ(http::parse_request("GET  /metrics HTTP/1.1\r\n", kMax), Verdict::kBadRequest);
  EXPECT_EQ(http::parse_request("GET metrics HTTP/1.1\r\n", kMax), Verdict::kBadRequest);
  EXPECT_EQ(http::parse_request("G(T /metrics HTTP/1.1\r\n", kMax), Verdict::kBadRequest);
  EXPECT_EQ(http::parse_request(std::string("GET /m\0 HTTP/1.1\r\n", 18), kMax),
            Verdict::kBadRequest);
  EXPECT_EQ(http::parse_request("GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", kMax),
            Verdict::kBadRequest);
  EXPECT_EQ(http::parse_request("GET /metrics HTTP/1.1\r\nBad Name: v\r\n\r\n", kMax),
            Verdict::kBadRequest);
}

TEST(HttpRequest, SizeCap) {
  std::string big = "GET /metrics HTTP/1.1\r\nX: " + std::string(100, 'a');
  EXPECT_EQ(http::parse_request(big, 64), Verdict::kTooLarge);
  EXPECT_EQ(http::parse_request(std::string(64, 'G'), 64), Verdict::kTooLarge);
  EXPECT_EQ(http::parse_request(std::string(63, 'G'), 64), Verdict::kIncomplete);
  // The end of headers beyond the cap does not count.
  EXPECT_EQ(http::parse_request(big + "\r\n\r\n", 64), Verdict::kTooLarge);
}

TEST(HttpRequest, Responses) {
  auto ok = http::response(Verdict::kMetrics, "a 1\n", metrics::kContentType);
  EXPECT_EQ(ok,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: 4\r\nConnection: close\r\n\r\na 1\n");
  auto refused = http::response(Verdict::kMethodNotAllowed, "secret", metrics::kContentType);
  EXPECT_TRUE(contains(refused, "405 Method Not Allowed"));
  EXPECT_TRUE(contains(refused, "Allow: GET"));
  EXPECT_FALSE(contains(refused, "secret"));
  EXPECT_TRUE(contains(http::response(Verdict::kNotFound, "", ""), "HTTP/1.1 404 Not Found\r\n"));
  EXPECT_TRUE(contains(http::response(Verdict::kBadRequest, "", ""), "HTTP/1.1 400 "));
  EXPECT_TRUE(contains(http::response(Verdict::kTooLarge, "", ""), "HTTP/1.1 431 "));
}

// --- the renderers -----------------------------------------------------------------------------

TEST(NodeMetrics, RendersStatusAndCounters) {
  core::NodeStatus s;
  s.name = "home-pc";
  s.vip = *Ipv4Prefix::parse("10.77.0.2/24");
  s.nat.type = wire::NatType::kFullCone;
  s.coordinator_state = "registered";
  core::PeerStatus p;
  p.name = "lap\"top";
  p.vip = *Ipv4::parse("10.77.0.3");
  p.state = "connected";
  p.path = "direct";
  p.bytes_in = 1000;
  p.packets_out = 7;
  p.rtt = 12ms;
  s.peers.push_back(p);
  s.drops.decrypt_failed = 4;
  s.drops.handshake_bad_mac1 = 6;
  s.counters.handshakes_started = 2;
  s.counters.punch_successes = 1;
  s.counters.time_to_direct.observe(0.3);
  auto text = daemon::render_node_metrics(s, 9);
  EXPECT_TRUE(contains(text, "p2pvpn_node_info{node=\"home-pc\",vip=\"10.77.0.2/24\"} 1\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_coordinator_registered 1\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_peers{path=\"direct\",transport=\"udp\"} 1\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_peers{path=\"relay\",transport=\"udp\"} 0\n"));
  EXPECT_TRUE(contains(
      text, "p2pvpn_peer_receive_bytes_total{peer=\"lap\\\"top\",vip=\"10.77.0.3\"} 1000\n"));
  EXPECT_TRUE(contains(
      text, "p2pvpn_peer_transmit_packets_total{peer=\"lap\\\"top\",vip=\"10.77.0.3\"} 7\n"));
  EXPECT_TRUE(
      contains(text, "p2pvpn_peer_rtt_seconds{peer=\"lap\\\"top\",vip=\"10.77.0.3\"} 0.012\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_drops_total{reason=\"decrypt_failed\"} 4\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_drops_total{reason=\"tun_write\"} 9\n"));
  // Every reason status --json has (one list: DropCounters::for_each).
  EXPECT_TRUE(contains(text, "p2pvpn_drops_total{reason=\"handshake_bad_mac1\"} 6\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_drops_total{reason=\"unknown_address\"} 0\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_handshakes_started_total 2\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_punch_successes_total 1\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_time_to_direct_seconds_bucket{le=\"0.5\"} 1\n"));
  EXPECT_TRUE(contains(text, "# TYPE p2pvpn_time_to_direct_seconds histogram\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_nat_info{type=\"full cone\""));
  // Every family has HELP and TYPE, and every name follows the conventions.
  std::size_t helps = 0, types = 0;
  for (std::size_t at = 0; (at = text.find("# HELP p2pvpn_", at)) != std::string::npos; ++at)
    ++helps;
  for (std::size_t at = 0; (at = text.find("# TYPE p2pvpn_", at)) != std::string::npos; ++at)
    ++types;
  EXPECT_EQ(helps, types);
  EXPECT_EQ(helps, 20u);  // the families listed in node_metrics.hpp
}

TEST(CoordinatorMetrics, RendersStatus) {
  coord::CoordinatorStatus s;
  s.nodes.push_back(
      coord::NodeEntryStatus{"a", *Ipv4Prefix::parse("10.77.0.2/24"), {}, {}, {}, {}, 500, 0});
  s.pending_handshakes = 3;
  s.relayed_bytes = 900;
  s.relayed_packets = 2;
  s.stun_answered = 5;
  auto text = coord::render_coordinator_metrics(s);
  EXPECT_TRUE(contains(text, "p2pvpn_coordinator_registered_nodes 1\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_coordinator_pending_handshakes 3\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_coordinator_relay_bytes_total 900\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_coordinator_relay_packets_total 2\n"));
  EXPECT_TRUE(contains(
      text, "p2pvpn_coordinator_node_relay_bytes_total{node=\"a\",vip=\"10.77.0.2/24\"} 500\n"));
  EXPECT_TRUE(contains(text, "p2pvpn_coordinator_stun_answered_total 5\n"));
  EXPECT_TRUE(contains(text, "# TYPE p2pvpn_coordinator_malformed_total counter\n"));
}

// --- the log format ----------------------------------------------------------------------------

TEST(LogFormat, JournalOnlyWhenStderrIsTheJournalStream) {
  using config::LogFormat;
  int fd = ::dup(STDERR_FILENO);
  ASSERT_GE(fd, 0);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  std::string other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  EXPECT_EQ(config::resolve_log_format(LogFormat::kAuto, mine.c_str(), fd), LogFormat::kJournal);
  EXPECT_EQ(config::resolve_log_format(LogFormat::kAuto, other.c_str(), fd), LogFormat::kText);
  EXPECT_EQ(config::resolve_log_format(LogFormat::kAuto, nullptr, fd), LogFormat::kText);
  EXPECT_EQ(config::resolve_log_format(LogFormat::kAuto, "junk", fd), LogFormat::kText);
  EXPECT_EQ(config::resolve_log_format(LogFormat::kText, mine.c_str(), fd), LogFormat::kText);
  EXPECT_EQ(config::resolve_log_format(LogFormat::kJournal, nullptr, fd), LogFormat::kJournal);
  ::close(fd);
  EXPECT_EQ(config::parse_log_format("journal"), LogFormat::kJournal);
  EXPECT_EQ(config::parse_log_format("text"), LogFormat::kText);
  EXPECT_EQ(config::parse_log_format("auto"), LogFormat::kAuto);
  EXPECT_EQ(config::parse_log_format("syslog"), std::nullopt);
  EXPECT_EQ(config::syslog_priority(spdlog::level::err), 3);
  EXPECT_EQ(config::syslog_priority(spdlog::level::warn), 4);
  EXPECT_EQ(config::syslog_priority(spdlog::level::info), 6);
  EXPECT_EQ(config::syslog_priority(spdlog::level::debug), 7);
}

TEST(LogFormat, JournalLinesHavePriorityAndNoTimestamp) {
  testing::internal::CaptureStderr();
  auto log = config::make_logger("node", config::LogLevel::info, config::LogFormat::kJournal);
  log->warn("peer={} gone", "laptop");
  log->debug("not shown");
  log->flush();
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "<4>node: peer=laptop gone\n");
}

// --- the server --------------------------------------------------------------------------------

namespace asio = boost::asio;
using asio::ip::tcp;

// A metrics server on 127.0.0.1 (any port) run by a thread; clients talk to it with blocking
// sockets. Every exchange is bounded by the server's own timeout.
class MetricsServerTest : public ::testing::Test {
 protected:
  void start(io::MetricsLimits limits) {
    auto s = io::MetricsServer::open(
        io_, *Endpoint::parse("127.0.0.1:0"),
        [this] { return "up " + std::to_string(++renders_) + "\n"; }, limits);
    ASSERT_TRUE(s) << s.error().message;
    server_.emplace(std::move(*s));
    port_ = server_->endpoint().port;
    guard_.emplace(io_.get_executor());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    asio::post(io_, [this] {
      server_.reset();
      guard_.reset();
    });
    if (thread_.joinable()) thread_.join();
  }
  tcp::socket connect() {
    tcp::socket s(client_io_);
    s.connect({asio::ip::address_v4::loopback(), port_});
    return s;
  }
  // Sends `request` and reads until the server closes.
  std::string exchange(const std::string& request) {
    auto s = connect();
    asio::write(s, asio::buffer(request));
    return read_all(s);
  }
  static std::string read_all(tcp::socket& s) {
    std::string out;
    boost::system::error_code ec;
    asio::read(s, asio::dynamic_buffer(out), ec);
    return out;
  }

  asio::io_context io_, client_io_;
  std::optional<io::MetricsServer> server_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
  std::thread thread_;
  std::uint16_t port_ = 0;
  std::atomic<int> renders_ = 0;  // written by the server thread
};

TEST_F(MetricsServerTest, AnswersGetMetricsAndRefusesTheRest) {
  start({});
  auto ok = exchange("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_TRUE(ok.starts_with("HTTP/1.1 200 OK\r\n")) << ok;
  EXPECT_TRUE(ok.ends_with("\r\n\r\nup 1\n")) << ok;
  EXPECT_TRUE(exchange("GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
  EXPECT_TRUE(exchange("DELETE /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
  EXPECT_TRUE(exchange("hello\r\n").starts_with("HTTP/1.1 400"));
  // The request arriving in pieces is still one request.
  auto s = connect();
  asio::write(s, asio::buffer(std::string("GET /met")));
  std::this_thread::sleep_for(20ms);
  asio::write(s, asio::buffer(std::string("rics HTTP/1.1\r\n\r\n")));
  EXPECT_TRUE(read_all(s).ends_with("up 2\n"));
}

TEST_F(MetricsServerTest, CapsTheRequestSize) {
  start({.max_request = 256});
  auto answer = exchange("GET /metrics HTTP/1.1\r\nX: " + std::string(1000, 'a') + "\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 431")) << answer;
  EXPECT_EQ(renders_, 0);
}

TEST_F(MetricsServerTest, DropsASilentClientAfterTheTimeout) {
  start({.timeout = 200ms});
  auto s = connect();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(read_all(s), "");  // closed without an answer
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 5s);
}

TEST_F(MetricsServerTest, LimitsConcurrentClients) {
  start({.max_clients = 2, .timeout = 2s});
  auto a = connect();
  auto b = connect();
  auto c = connect();  // one too many: closed at once, unanswered
  EXPECT_EQ(read_all(c), "");
  asio::write(a, asio::buffer(std::string("GET /metrics HTTP/1.1\r\n\r\n")));
  EXPECT_TRUE(read_all(a).starts_with("HTTP/1.1 200"));
}

}  // namespace
}  // namespace p2p

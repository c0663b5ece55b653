// p2p_flood: the attacker of the flood tests (tests/e2e/test_flood_*.sh). It sends what anyone
// on the internet can send without a key, at a bounded rate, for a bounded count and time, and
// counts what comes back, so that the amplification factor is measured, not assumed.
//
//   p2p_flood send --to IP:PORT --kind KIND[,KIND...] --rate PPS --count N --seconds S
//                  [--spoof A.B.C.D/LEN] [--replay FILE] [--response-port PORT]
//                  [--min-size N] [--max-size N] [--linger S]
//   p2p_flood listen --seconds S [--port PORT]
//   p2p_flood capture --out FILE --prefix HEX --seconds S [--port PORT]
//
// send, KIND (several alternate, one datagram each):
//   xx, ik    a garbage handshake initiation: 0x81, the pattern byte (2 = XX, 1 = IK), random
//             rest; every other one is --min-size bytes long (default 38: the shortest
//             well-formed XX initiation, an index and an ephemeral key), the others of a size
//             uniform in [--min-size, --max-size] (default 300)
//   replay    the datagram in --replay FILE, byte for byte (a captured genuine one)
//   stun      an RFC 8489 Binding request; stun-rp with RESPONSE-PORT = --response-port;
//             stun-cr with CHANGE-REQUEST (change IP and port); stun-rpcr with both
// Every datagram leaves through a raw socket (IP_HDRINCL): with --spoof from a random address
// of that prefix and a random port each, without it from this host's own address and one
// port. Replies are counted by a raw UDP socket, i.e. every UDP datagram this namespace
// receives until --linger (default 1) seconds after the last send: run it in a namespace that
// carries nothing else, where the test routes the spoofed prefix (ip route add local ...).
// The last line is the measurement:
//   p2p_flood: ... sent=N sent_bytes=B seconds=S replies=N reply_bytes=B amplification=X
//              answered_sources=N max_source_amplification=X send_errors=N
// Sizes are UDP payload bytes, on both sides. amplification is reply_bytes / sent_bytes;
// max_source_amplification the worst, over the source addresses that got any reply, of the
// bytes sent back to that address (to any port) over the bytes sent from it: with sources
// spoofed one datagram each, the factor one reflected datagram gets.
//
// listen counts every UDP datagram that reaches this namespace (to --port only, if given):
// a victim of reflected traffic. Prints "p2p_flood: listening" once its socket is open, then,
// when --seconds elapse or on SIGTERM/SIGINT,
//   p2p_flood: listen packets=N bytes=B seconds=S
// capture prints "p2p_flood: capturing" once its socket is open, waits up to --seconds for a
// UDP datagram to this namespace (to --port, if given) whose payload starts with the bytes
// HEX and writes that payload to FILE; exit status 1 if none came.
//
// Exit status 2 on a usage error. Needs CAP_NET_RAW.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<std::uint8_t>;

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "p2p_flood: %s\n"
               "usage: p2p_flood send --to IP:PORT --kind KIND[,KIND...] --rate PPS --count N "
               "--seconds S [--spoof A.B.C.D/LEN] [--replay FILE] [--response-port PORT] "
               "[--min-size N] [--max-size N] [--linger S]\n"
               "       p2p_flood listen --seconds S [--port PORT]\n"
               "       p2p_flood capture --out FILE --prefix HEX --seconds S [--port PORT]\n",
               why.c_str());
  std::exit(2);
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "p2p_flood: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

// --- arguments -------------------------------------------------------------------------------

// "--key value" pairs after the mode; every key must be one the mode knows.
std::map<std::string, std::string> parse_options(int argc, char** argv,
                                                 const std::vector<std::string>& known) {
  std::map<std::string, std::string> opts;
  for (int i = 2; i < argc; i += 2) {
    std::string key = argv[i];
    if (key.rfind("--", 0) != 0 || i + 1 >= argc) usage("expected --option VALUE at " + key);
    key = key.substr(2);
    if (std::find(known.begin(), known.end(), key) == known.end()) usage("unknown option --" + key);
    opts[key] = argv[i + 1];
  }
  return opts;
}

double number(const std::map<std::string, std::string>& o, const std::string& key,
              std::optional<double> fallback, double min, double max) {
  auto it = o.find(key);
  if (it == o.end()) {
    if (!fallback) usage("--" + key + " is required");
    return *fallback;
  }
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (end == it->second.c_str() || *end != '\0' || v < min || v > max)
    usage("--" + key + " " + it->second + ": expected a number in [" + std::to_string(min) + ", " +
          std::to_string(max) + "]");
  return v;
}

std::uint32_t parse_ipv4(const std::string& s, const std::string& what) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) usage(what + ": not an IPv4 address: " + s);
  return ntohl(a.s_addr);
}

struct Endpoint {
  std::uint32_t addr = 0;  // host order
  std::uint16_t port = 0;
};

Endpoint parse_endpoint(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) usage("--to " + s + ": expected IP:PORT");
  long port = std::strtol(s.c_str() + colon + 1, nullptr, 10);
  if (port <= 0 || port > 65535) usage("--to " + s + ": bad port");
  return {parse_ipv4(s.substr(0, colon), "--to"), static_cast<std::uint16_t>(port)};
}

std::string to_string(std::uint32_t addr) {
  in_addr a{htonl(addr)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

struct Prefix {
  std::uint32_t base = 0;  // host order, host bits cleared
  int len = 32;
};

Prefix parse_prefix(const std::string& s) {
  auto slash = s.find('/');
  if (slash == std::string::npos) usage("--spoof " + s + ": expected A.B.C.D/LEN");
  long len = std::strtol(s.c_str() + slash + 1, nullptr, 10);
  if (len < 8 || len > 32) usage("--spoof " + s + ": LEN must be 8..32");
  std::uint32_t mask = len == 32 ? ~0u : ~((1u << (32 - len)) - 1);
  return {parse_ipv4(s.substr(0, slash), "--spoof") & mask, static_cast<int>(len)};
}

Bytes parse_hex(const std::string& s) {
  if (s.empty() || s.size() % 2 != 0)
    usage("--prefix " + s + ": expected an even number of hex digits");
  Bytes out;
  for (std::size_t i = 0; i < s.size(); i += 2) {
    char* end = nullptr;
    std::string byte = s.substr(i, 2);
    long v = std::strtol(byte.c_str(), &end, 16);
    if (*end != '\0') usage("--prefix " + s + ": not hex");
    out.push_back(static_cast<std::uint8_t>(v));
  }
  return out;
}

// --- sockets ---------------------------------------------------------------------------------

// Every socket lives as long as the process (a few seconds): the kernel closes them at exit.

// A raw IPv4 UDP socket: receives a copy of every UDP datagram delivered in this namespace.
int raw_receiver() {
  int fd = ::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) die("raw socket (needs CAP_NET_RAW)");
  int size = 8 << 20;
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  return fd;
}

struct Received {
  Endpoint from;
  std::uint32_t to_addr = 0;  // host order
  std::uint16_t to_port = 0;
  const std::uint8_t* payload = nullptr;
  std::size_t size = 0;
};

// One datagram from a raw_receiver(), its IP and UDP headers taken apart; nullopt when none
// is waiting (or it is not a whole UDP datagram).
std::optional<Received> receive(int fd, Bytes& buf) {
  for (;;) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
      die("recv");
    }
    auto len = static_cast<std::size_t>(n);
    if (len < sizeof(iphdr)) continue;
    iphdr ip{};
    std::memcpy(&ip, buf.data(), sizeof ip);
    std::size_t ihl = ip.ihl * 4u;
    if (ihl < sizeof(iphdr) || len < ihl + sizeof(udphdr)) continue;
    udphdr udp{};
    std::memcpy(&udp, buf.data() + ihl, sizeof udp);
    std::size_t udp_len = ntohs(udp.len);
    if (udp_len < sizeof(udphdr) || ihl + udp_len > len) continue;
    return Received{{ntohl(ip.saddr), ntohs(udp.source)},
                    ntohl(ip.daddr),
                    ntohs(udp.dest),
                    buf.data() + ihl + sizeof(udphdr),
                    udp_len - sizeof(udphdr)};
  }
}

// Waits up to `ms` for the socket to become readable (or a signal).
void wait_readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  ::poll(&p, 1, ms);
}

// Tells a waiting script that the socket is open: "p2p_flood: WHAT", flushed at once.
void ready(const char* what) {
  std::printf("p2p_flood: %s\n", what);
  std::fflush(stdout);
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// --- what an attacker sends ------------------------------------------------------------------

std::uint32_t checksum_add(std::uint32_t sum, const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i + 1 < n; i += 2)
    sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2) sum += static_cast<std::uint32_t>(p[n - 1] << 8);
  return sum;
}

std::uint16_t checksum_fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// An IPv4 header, a UDP header (with its checksum) and `payload`, ready for IP_HDRINCL.
void build_ip_udp(Bytes& out, Endpoint from, Endpoint to, const Bytes& payload) {
  const std::size_t udp_len = sizeof(udphdr) + payload.size();
  out.assign(sizeof(iphdr) + udp_len, 0);
  iphdr ip{};
  ip.version = 4;
  ip.ihl = 5;
  ip.tot_len = htons(static_cast<std::uint16_t>(out.size()));
  ip.ttl = 64;
  ip.protocol = IPPROTO_UDP;
  ip.saddr = htonl(from.addr);
  ip.daddr = htonl(to.addr);
  ip.check = 0;  // the kernel fills in the checksum (and the id, left 0)
  std::memcpy(out.data(), &ip, sizeof ip);

  udphdr udp{};
  udp.source = htons(from.port);
  udp.dest = htons(to.port);
  udp.len = htons(static_cast<std::uint16_t>(udp_len));
  std::memcpy(out.data() + sizeof ip, &udp, sizeof udp);
  std::memcpy(out.data() + sizeof ip + sizeof udp, payload.data(), payload.size());

  std::uint8_t pseudo[12];
  std::memcpy(pseudo, &ip.saddr, 4);
  std::memcpy(pseudo + 4, &ip.daddr, 4);
  pseudo[8] = 0;
  pseudo[9] = IPPROTO_UDP;
  pseudo[10] = static_cast<std::uint8_t>(udp_len >> 8);
  pseudo[11] = static_cast<std::uint8_t>(udp_len);
  std::uint32_t sum = checksum_add(0, pseudo, sizeof pseudo);
  sum = checksum_add(sum, out.data() + sizeof ip, udp_len);
  std::uint16_t check = checksum_fold(sum);
  if (check == 0) check = 0xffff;
  udp.check = htons(check);
  std::memcpy(out.data() + sizeof ip, &udp, sizeof udp);
}

enum class Kind { kXX, kIK, kReplay, kStun, kStunRp, kStunCr, kStunRpCr };

Kind parse_kind(const std::string& s) {
  if (s == "xx") return Kind::kXX;
  if (s == "ik") return Kind::kIK;
  if (s == "replay") return Kind::kReplay;
  if (s == "stun") return Kind::kStun;
  if (s == "stun-rp") return Kind::kStunRp;
  if (s == "stun-cr") return Kind::kStunCr;
  if (s == "stun-rpcr") return Kind::kStunRpCr;
  usage("--kind " + s + ": expected xx, ik, replay, stun, stun-rp, stun-cr or stun-rpcr");
}

struct Payloads {
  explicit Payloads(std::mt19937_64& r) : rng(r) {}

  std::mt19937_64& rng;
  Bytes replay;
  std::uint16_t response_port = 0;
  std::size_t min_size = 38, max_size = 300;
  bool shortest = true;  // the next garbage initiation is min_size long

  void random_bytes(std::uint8_t* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(rng());
  }

  void make(Kind kind, Bytes& out) {
    switch (kind) {
      case Kind::kXX:
      case Kind::kIK: {
        std::uniform_int_distribution<std::size_t> size(min_size, max_size);
        out.resize(shortest ? min_size : size(rng));
        shortest = !shortest;
        random_bytes(out.data(), out.size());
        out[0] = 0x81;
        out[1] = kind == Kind::kXX ? 2 : 1;
        return;
      }
      case Kind::kReplay: out = replay; return;
      case Kind::kStun:
      case Kind::kStunRp:
      case Kind::kStunCr:
      case Kind::kStunRpCr: stun(kind, out); return;
    }
  }

  // RFC 8489 Binding request; RESPONSE-PORT and CHANGE-REQUEST are RFC 5780's.
  void stun(Kind kind, Bytes& out) {
    const bool rp = kind == Kind::kStunRp || kind == Kind::kStunRpCr;
    const bool cr = kind == Kind::kStunCr || kind == Kind::kStunRpCr;
    const std::uint16_t attrs = static_cast<std::uint16_t>((rp ? 8 : 0) + (cr ? 8 : 0));
    out.assign(20, 0);
    out[1] = 0x01;  // Binding request
    out[2] = static_cast<std::uint8_t>(attrs >> 8);
    out[3] = static_cast<std::uint8_t>(attrs);
    const std::uint8_t cookie[4] = {0x21, 0x12, 0xa4, 0x42};
    std::copy(std::begin(cookie), std::end(cookie), out.begin() + 4);
    random_bytes(out.data() + 8, 12);  // transaction id
    if (cr) out.insert(out.end(), {0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x06});
    if (rp) {
      out.insert(out.end(), {0x00, 0x27, 0x00, 0x02});
      out.push_back(static_cast<std::uint8_t>(response_port >> 8));
      out.push_back(static_cast<std::uint8_t>(response_port));
      out.insert(out.end(), {0x00, 0x00});
    }
  }
};

// This host's address towards `to` and a UDP socket bound to a port of it (held so that
// replies to that port are not answered with ICMP).
struct OwnSource {
  Endpoint endpoint;
  int socket;
};

OwnSource own_source(Endpoint to) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("udp socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(to.addr);
  sa.sin_port = htons(to.port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) die("connect");
  socklen_t len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) die("getsockname");
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  ::connect(fd, &unspec, sizeof unspec);  // keeps the port, accepts every sender
  return OwnSource{{ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port)}, fd};
}

void drain(int fd) {
  std::uint8_t buf[2048];
  while (::recv(fd, buf, sizeof buf, 0) >= 0) {
  }
}

int run_send(int argc, char** argv) {
  auto o = parse_options(argc, argv,
                         {"to", "kind", "rate", "count", "seconds", "spoof", "replay",
                          "response-port", "min-size", "max-size", "linger"});
  if (!o.count("to")) usage("--to is required");
  if (!o.count("kind")) usage("--kind is required");
  const Endpoint to = parse_endpoint(o["to"]);
  const double rate = number(o, "rate", std::nullopt, 1, 1e6);
  const auto count = static_cast<std::uint64_t>(number(o, "count", std::nullopt, 1, 1e8));
  const double seconds = number(o, "seconds", std::nullopt, 0.001, 600);
  const double linger = number(o, "linger", 1.0, 0, 60);

  std::mt19937_64 rng(std::random_device{}());
  Payloads make{rng};
  make.min_size = static_cast<std::size_t>(number(o, "min-size", 38, 2, 1400));
  make.max_size = static_cast<std::size_t>(number(o, "max-size", 300, 2, 1400));
  if (make.max_size < make.min_size) usage("--max-size is below --min-size");
  make.response_port = static_cast<std::uint16_t>(number(o, "response-port", 0, 0, 65535));

  std::vector<Kind> kinds;
  std::string list = o["kind"];
  for (std::size_t start = 0; start <= list.size();) {
    auto comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    kinds.push_back(parse_kind(list.substr(start, comma - start)));
    start = comma + 1;
  }
  for (Kind k : kinds) {
    if (k == Kind::kReplay) {
      if (!o.count("replay")) usage("--kind replay needs --replay FILE");
      std::ifstream in(o["replay"], std::ios::binary);
      make.replay.assign(std::istreambuf_iterator<char>(in), {});
      if (make.replay.empty()) usage("--replay " + o["replay"] + ": empty or unreadable");
    }
    if ((k == Kind::kStunRp || k == Kind::kStunRpCr) && make.response_port == 0)
      usage("--kind stun-rp needs --response-port PORT");
  }

  std::optional<Prefix> spoof;
  if (o.count("spoof")) spoof = parse_prefix(o["spoof"]);
  std::optional<int> own_socket;
  Endpoint own;
  if (!spoof) {
    auto source = own_source(to);
    own = source.endpoint;
    own_socket = source.socket;
  }

  const int raw = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (raw < 0) die("raw send socket (needs CAP_NET_RAW)");
  int on = 1;
  if (::setsockopt(raw, IPPROTO_IP, IP_HDRINCL, &on, sizeof on) != 0) die("IP_HDRINCL");
  const int rx = raw_receiver();

  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_addr.s_addr = htonl(to.addr);

  std::uniform_int_distribution<std::uint32_t> host_bits(
      0, spoof && spoof->len < 32 ? (1u << (32 - spoof->len)) - 1 : 0);
  std::uniform_int_distribution<std::uint32_t> port(1024, 65535);

  std::uint64_t sent = 0, sent_bytes = 0, send_errors = 0, replies = 0, reply_bytes = 0;
  Bytes payload, packet, rx_buf(65536);
  // Per source address: bytes sent from it, bytes sent back to it (any port: RESPONSE-PORT).
  std::unordered_map<std::uint32_t, std::pair<std::uint64_t, std::uint64_t>> per_source;
  auto collect = [&] {
    while (auto r = receive(rx, rx_buf)) {
      ++replies;
      reply_bytes += r->size;
      per_source[r->to_addr].second += r->size;
    }
    if (own_socket) drain(*own_socket);
  };

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const auto start = Clock::now();
  double elapsed = 0;
  while (sent < count && !g_stop) {
    elapsed = seconds_since(start);
    if (elapsed >= seconds) break;
    const auto due = std::min<std::uint64_t>(count, static_cast<std::uint64_t>(rate * elapsed) + 1);
    while (sent + send_errors < due && sent < count) {
      make.make(kinds[(sent + send_errors) % kinds.size()], payload);
      Endpoint from = own;
      if (spoof) {
        // Neither the network nor the broadcast address of the prefix.
        std::uint32_t host = host_bits(rng);
        if (spoof->len < 31) host = std::clamp<std::uint32_t>(host, 1, host_bits.max() - 1);
        from = {spoof->base | host, static_cast<std::uint16_t>(port(rng))};
      }
      build_ip_udp(packet, from, to, payload);
      if (::sendto(raw, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&dst),
                   sizeof dst) < 0) {
        ++send_errors;  // ENOBUFS and the like: the datagram did not leave; not counted as sent
      } else {
        ++sent;
        sent_bytes += payload.size();
        per_source[from.addr].first += payload.size();
      }
    }
    collect();
    wait_readable(rx, 1);
  }
  const double send_seconds = seconds_since(start);
  const auto linger_end = Clock::now() + std::chrono::duration<double>(linger);
  while (Clock::now() < linger_end && !g_stop) {
    collect();
    wait_readable(rx, 10);
  }
  collect();

  // The worst amplification any one source saw: what a reflection off this target yields.
  double worst = 0;
  std::uint64_t answered_sources = 0;
  for (const auto& [addr, bytes] : per_source) {
    if (bytes.second == 0) continue;
    ++answered_sources;
    worst = std::max(
        worst, bytes.first ? static_cast<double>(bytes.second) / static_cast<double>(bytes.first)
                           : static_cast<double>(bytes.second));
  }
  const std::string from = spoof ? to_string(spoof->base) + "/" + std::to_string(spoof->len)
                                 : to_string(own.addr) + ":" + std::to_string(own.port);
  std::printf(
      "p2p_flood: to=%s:%u kind=%s from=%s sent=%llu sent_bytes=%llu seconds=%.2f replies=%llu "
      "reply_bytes=%llu amplification=%.3f answered_sources=%llu "
      "max_source_amplification=%.3f send_errors=%llu\n",
      to_string(to.addr).c_str(), to.port, list.c_str(), from.c_str(),
      static_cast<unsigned long long>(sent), static_cast<unsigned long long>(sent_bytes),
      send_seconds, static_cast<unsigned long long>(replies),
      static_cast<unsigned long long>(reply_bytes),
      sent_bytes ? static_cast<double>(reply_bytes) / static_cast<double>(sent_bytes) : 0.0,
      static_cast<unsigned long long>(answered_sources), worst,
      static_cast<unsigned long long>(send_errors));
  return 0;
}

// Opens a raw receiver, says `what` (see ready()), then hands every UDP datagram that reaches
// this namespace (addressed to `port`, unless 0) to `on` until `on` returns false, `seconds`
// elapse or SIGTERM/SIGINT comes. Returns false only when `on` did.
template <typename OnDatagram>
bool receive_for(double seconds, std::uint16_t port, const char* what, OnDatagram on) {
  const int rx = raw_receiver();
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  ready(what);
  Bytes buf(65536);
  const auto start = Clock::now();
  while (!g_stop && seconds_since(start) < seconds) {
    while (auto r = receive(rx, buf)) {
      if (port && r->to_port != port) continue;
      if (!on(*r)) return false;
    }
    wait_readable(rx, 50);
  }
  return true;
}

int run_listen(int argc, char** argv) {
  auto o = parse_options(argc, argv, {"seconds", "port"});
  const double seconds = number(o, "seconds", std::nullopt, 0.001, 600);
  const auto port = static_cast<std::uint16_t>(number(o, "port", 0, 0, 65535));
  std::uint64_t packets = 0, bytes = 0;
  const auto start = Clock::now();
  receive_for(seconds, port, "listening", [&](const Received& r) {
    ++packets;
    bytes += r.size;
    return true;
  });
  std::printf("p2p_flood: listen packets=%llu bytes=%llu seconds=%.2f\n",
              static_cast<unsigned long long>(packets), static_cast<unsigned long long>(bytes),
              seconds_since(start));
  return 0;
}

int run_capture(int argc, char** argv) {
  auto o = parse_options(argc, argv, {"out", "prefix", "seconds", "port"});
  if (!o.count("out")) usage("--out is required");
  if (!o.count("prefix")) usage("--prefix is required");
  const Bytes prefix = parse_hex(o["prefix"]);
  const double seconds = number(o, "seconds", std::nullopt, 0.001, 600);
  const auto port = static_cast<std::uint16_t>(number(o, "port", 0, 0, 65535));
  const auto start = Clock::now();
  const bool none = receive_for(seconds, port, "capturing", [&](const Received& r) {
    if (r.size < prefix.size() || !std::equal(prefix.begin(), prefix.end(), r.payload)) return true;
    std::ofstream out(o["out"], std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(r.payload), static_cast<std::streamsize>(r.size));
    if (!out.flush()) die("writing " + o["out"]);
    std::printf("p2p_flood: captured %zu bytes from %s:%u to port %u\n", r.size,
                to_string(r.from.addr).c_str(), r.from.port, r.to_port);
    return false;
  });
  if (!none) return 0;
  std::printf("p2p_flood: nothing captured in %.2f s\n", seconds_since(start));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("expected a mode: send, listen or capture");
  const std::string mode = argv[1];
  if (mode == "send") return run_send(argc, argv);
  if (mode == "listen") return run_listen(argc, argv);
  if (mode == "capture") return run_capture(argc, argv);
  usage("unknown mode " + mode);
}

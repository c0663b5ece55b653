#include "daemon/ctl/coordinator_view.hpp"

#include <fmt/format.h>

#include <vector>

#include "daemon/status/status_json.hpp"

namespace p2p::ctl {

using nlohmann::json;

bool is_coordinator_status(const json& answer) {
  const auto kind = answer.find("kind");
  return kind != answer.end() && *kind == "coordinator";
}

Expected<std::string, std::string> render_coordinator_status(const json& status) {
  try {
    std::string listen;
    for (const auto& e : status.at("listen")) {
      listen += (listen.empty() ? "" : ", ") + e.get<std::string>();
    }
    const auto& nodes = status.at("nodes");
    std::string out = fmt::format("coordinator {}, listening on udp {}; {} node{} registered\n",
                                  status.at("name").get<std::string>(), listen, nodes.size(),
                                  nodes.size() == 1 ? "" : "s");
    if (!nodes.empty()) {
      std::vector<std::vector<std::string>> rows{
          {"NODE", "VIP", "OBSERVED", "NAT", "SEEN", "RELAYED", "RELAY DROPS"}};
      for (const auto& n : nodes) {
        rows.push_back({n.at("name").get<std::string>(), n.at("vip").get<std::string>(),
                        n.at("observed").get<std::string>(),
                        n.at("nat").at("type").get<std::string>(),
                        daemon::format_age(n.at("seconds_since_seen").get<double>()),
                        daemon::format_bytes(n.at("relayed_bytes").get<std::uint64_t>()),
                        std::to_string(n.at("relay_dropped").get<std::uint64_t>())});
      }
      out += "\n" + daemon::format_table(rows);
    }
    const auto& c = status.at("counters");
    out += fmt::format("\nhandshakes refused: {}, malformed datagrams: {}, STUN answered: {}\n",
                       c.at("handshakes_refused").get<std::uint64_t>(),
                       c.at("malformed").get<std::uint64_t>(),
                       c.at("stun_answered").get<std::uint64_t>());
    if (auto seq = status.find("revocation_sequence");
        seq != status.end() && seq->get<std::uint64_t>() > 0)
      out += fmt::format("revocation list {} in force\n", seq->get<std::uint64_t>());
    // The primary socket's offloads (coordinator.yaml performance); an older coordinator has none.
    if (auto perf = status.find("performance"); perf != status.end())
      out += fmt::format("udp offloads: gso {}, gro {}\n", perf->value("udp_gso", "?"),
                         perf->value("udp_gro", "?"));
    return out;
  } catch (const json::exception& e) {
    return fail(std::string("malformed coordinator status: ") + e.what());
  }
}

}  // namespace p2p::ctl

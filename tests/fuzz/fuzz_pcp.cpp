// Fuzz target for the PCP MAP response decoder and the answer's checks (a gateway's bytes are
// hostile): never a crash; a decoded response re-checked by pcp_answer/check_mapping never
// yields a mapping for another port, an unusable address or an out-of-range lifetime.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "daemon/nat/port_mapping.hpp"
#include "net/pcp.hpp"

using namespace p2p;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  auto m = wire::decode_pcp_map_response(in);
  if (m && (size < wire::kPcpMapMessageSize || size > wire::kPcpMaxMessage)) std::abort();
  wire::PcpNonce nonce{};
  if (m) nonce = m->nonce;  // let the checks past the nonce
  auto a = nat::pcp_answer(in, nonce);
  if (!a) return 0;
  auto mapping = nat::check_mapping(Time{}, *a, 7400, std::nullopt);
  if (mapping) {
    if (mapping->internal_port != 7400 || mapping->external.port == 0 ||
        nat::is_unusable_external(mapping->external.address) ||
        mapping->lifetime < std::chrono::seconds(nat::kMinLifetime) ||
        mapping->lifetime > std::chrono::seconds(nat::kMaxLifetime))
      std::abort();
  }
  return 0;
}

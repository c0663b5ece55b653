// Schema pieces that mesh.yaml and coordinator.yaml share (internal to config/).
#pragma once

#include <string>
#include <vector>

#include "config/common.hpp"
#include "config/schema.hpp"

namespace p2p::config {

const Schema<LogConfig>& log_schema();
const Schema<MetricsConfig>& metrics_schema();

// revoked: [fingerprint, ...], each at most once, as lowercase hex.
std::vector<std::string> read_revoked(const Value& v);

// A node name as certificates carry it (crypto::valid_name).
std::string read_node_name(const Value& v);

}  // namespace p2p::config

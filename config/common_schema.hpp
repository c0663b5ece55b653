// Schema pieces that mesh.yaml and coordinator.yaml share (internal to config/).
#pragma once

#include <vector>

#include "config/common.hpp"
#include "config/schema.hpp"

namespace p2p::config {

const Schema<LogConfig>& log_schema();

// revoked: [fingerprint, ...], each at most once.
std::vector<Fingerprint> read_revoked(const Value& v);

// A node name as certificates carry it: 1..63 of letters, digits, '.', '_', '-', starting
// with a letter or digit.
std::string read_node_name(const Value& v);

}  // namespace p2p::config

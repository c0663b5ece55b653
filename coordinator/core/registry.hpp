// Registry: the coordinator's nodes, found in O(1) by static key, session index, virtual IP
// and name, with their deadlines in a timer heap so that a tick does work in proportion to
// what expired, never a walk over every node.
//
// A NodeEntry exists from the moment a node completes its handshake; it is `registered` (and
// only then found by virtual IP and name) once its Register was accepted. Its deadlines:
// last_seen + node_timeout (then it is forgotten) and each session's kRejectAfterTime (then
// that session is dropped).
//
// The heap is intrusive and lazy: each node sits in it once, under a time that is never later
// than its real next deadline. Traffic only moves last_seen, which only pushes the real
// deadline later, so the hot path never touches the heap; expire() recomputes a node's real
// deadline when its heap time comes and moves it down if there is nothing to do yet.
//
// Names: one registered node per name is found by it, the last one to register under it
// (two certificates may carry the same name; virtual IPs, by contrast, are exclusive and
// the coordinator refuses a second holder).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/session.hpp"
#include "net/control.hpp"
#include "net/rate_limit.hpp"
#include "net/time.hpp"

namespace p2p::coord {

struct NodeEntry {
  NodeEntry(const crypto::Certificate& c, const Endpoint& from, Time now, TokenBucket relay,
            TokenBucket lookups, TokenBucket introductions)
      : cert(c),
        observed(from),
        last_seen(now),
        relay_bucket(relay),
        lookup_bucket(lookups),
        introduction_bucket(introductions) {}

  crypto::Certificate cert;
  Endpoint observed;
  std::vector<Endpoint> local_endpoints;
  wire::NatSummary nat;
  std::optional<Endpoint> mapped;  // its router's port mapping, passed on in Introduce
  bool registered = false;
  Time last_seen{};
  std::optional<crypto::Session> current, previous;
  TokenBucket relay_bucket;         // bytes this node may have relayed
  TokenBucket lookup_bucket;        // PeerRequests this node may make
  TokenBucket introduction_bucket;  // Introduces others may have us send to this node
  std::uint64_t relayed_bytes = 0, relay_dropped = 0;
  std::uint64_t lookups_refused = 0, introductions_refused = 0;
  std::uint64_t tcp =
      0;  // the main-port connection carrying this node (coord::ConnectionId), 0: UDP

 private:
  friend class Registry;
  Time due_{};                // heap key: never later than the real next deadline
  std::size_t heap_pos_ = 0;  // index in Registry::heap_
};

class Registry {
 public:
  Registry(Duration node_timeout, std::size_t max_nodes)
      : node_timeout_(node_timeout), max_nodes_(max_nodes) {}
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  NodeEntry* by_key(const crypto::PublicKey& key);
  const NodeEntry* by_key(const crypto::PublicKey& key) const;
  NodeEntry* by_index(std::uint32_t local_index);
  NodeEntry* by_vip(Ipv4 vip);                // registered nodes only
  NodeEntry* by_name(std::string_view name);  // registered nodes only
  bool index_in_use(std::uint32_t local_index) const { return by_index_.contains(local_index); }
  std::size_t size() const { return nodes_.size(); }
  bool full() const { return nodes_.size() >= max_nodes_; }

  // A node that just completed its first handshake (not yet registered; no session yet), or
  // nullptr when the registry holds max_nodes already or the key is known.
  NodeEntry* add(const crypto::Certificate& cert, const Endpoint& from, Time now, TokenBucket relay,
                 TokenBucket lookups, TokenBucket introductions);
  // A re-issued certificate for the same key replaces the old one (and its name and virtual
  // IP: the node must register again to be found under them).
  void replace_certificate(NodeEntry& n, const crypto::Certificate& cert);
  // A new session becomes current; the current one becomes previous; the previous one goes.
  void add_session(NodeEntry& n, crypto::Session s);
  // Marks n registered and findable by virtual IP and name. If another registered node holds
  // n's virtual IP, nothing changes and that node is returned.
  NodeEntry* register_node(NodeEntry& n);
  void remove(NodeEntry& n);

  // Drops expired sessions, and hands each node silent for node_timeout to `silent` (which
  // must remove() it). Work in proportion to the nodes whose heap time has come: returns how
  // many it looked at.
  std::size_t expire(Time now, const std::function<void(NodeEntry&)>& silent);
  Time next_deadline() const { return heap_.empty() ? Time::max() : heap_.front()->due_; }

  template <class F>
  void for_each(F&& f) const {
    for (const auto& [key, n] : nodes_) f(n);
  }
  template <class F>
  void for_each(F&& f) {
    for (auto& [key, n] : nodes_) f(n);
  }
  // `f` may change a node's buckets and counters, not its indexes (and may not remove it).
  template <class F>
  void for_each_mutable(F&& f) {
    for (auto& [key, n] : nodes_) f(n);
  }
  // A reload: a registry over the new bound keeps its nodes and takes no more.
  void set_max_nodes(std::size_t max_nodes) { max_nodes_ = max_nodes; }

 private:
  struct KeyHash {
    std::size_t operator()(const crypto::PublicKey& k) const;
  };
  Time real_deadline(const NodeEntry& n) const;
  void unindex(NodeEntry& n);
  // The heap: a binary min-heap of nodes by due_, each knowing its position.
  void heap_push(NodeEntry& n);
  void heap_erase(NodeEntry& n);
  void heap_sift_down(std::size_t i);
  void heap_sift_up(std::size_t i);
  void heap_set(std::size_t i, NodeEntry* n);

  Duration node_timeout_;
  std::size_t max_nodes_;
  std::unordered_map<crypto::PublicKey, NodeEntry, KeyHash> nodes_;
  std::unordered_map<std::uint32_t, NodeEntry*> by_index_;
  std::unordered_map<std::uint32_t, NodeEntry*> by_vip_;
  std::unordered_map<std::string_view, NodeEntry*> by_name_;  // views of cert.name
  std::vector<NodeEntry*> heap_;
};

}  // namespace p2p::coord

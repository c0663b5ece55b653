// The node's bounded peer state. PeerTable owns every Peer, found in O(1) by virtual IP, by
// the id of the coordinator lookup (PeerRequest) in flight for it and by certificate name, and
// keeps them in least-recently-used order for eviction. UnknownAddresses is the negative cache
// of addresses the coordinator said it does not know: no new lookup for them until their TTL
// passes, at most `capacity` of them (the least recently refused goes first). A TokenBucket
// (net/rate_limit.hpp) limits the node's lookups, so a sweep of the mesh prefix cannot flood the
// coordinator.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "daemon/core/peer.hpp"
#include "net/ip.hpp"
#include "net/rate_limit.hpp"
#include "net/time.hpp"

namespace p2p::core {

class PeerTable {
 public:
  Peer* find(Ipv4 vip);
  const Peer* find(Ipv4 vip) const;
  // The peer whose current lookup has this id (an older lookup's id finds nothing).
  Peer* by_request(std::uint32_t request_id);
  Peer* by_name(const std::string& name);

  Peer& insert(std::unique_ptr<Peer> peer);
  void erase(Ipv4 vip);
  // A new lookup is in flight for `p` under `request_id`.
  void set_request(Peer& p, std::uint32_t request_id);
  // `p` has (new) certificate: index it under its name.
  void named(Peer& p);
  // `p` was used now (traffic): it is the most recently used.
  void touch(Peer& p);
  // The least recently used peer for which `evictable` holds, among the `window` least
  // recently used ones; nullptr when none is.
  template <class Pred>
  Peer* least_recent(Pred evictable, std::size_t window) {
    for (auto it = lru_.rbegin(); it != lru_.rend() && window > 0; ++it, --window) {
      Peer* p = find(Ipv4{*it});
      if (p && evictable(*p)) return p;
    }
    return nullptr;
  }
  // Every peer (timers, status, network changes). Each call is counted in walks(): lookups
  // never walk the table, and the tests hold it to that.
  template <class F>
  void for_each(F f) {
    ++walks_;
    for (auto& [vip, slot] : peers_) f(*slot.peer);
  }
  template <class F>
  void for_each(F f) const {
    ++walks_;
    for (const auto& [vip, slot] : peers_) f(static_cast<const Peer&>(*slot.peer));
  }
  std::size_t size() const { return peers_.size(); }
  std::uint64_t walks() const { return walks_; }
  // Hash lookups by virtual IP made by find() and touch() (tests: a run of one peer's packets
  // costs one).
  std::uint64_t hashed() const { return hashed_; }

 private:
  struct Slot {
    std::unique_ptr<Peer> peer;
    std::list<std::uint32_t>::iterator lru;
  };
  // The slot of `vip`: the one last found when it is that one, else by hash. A run of one
  // peer's packets (a split TCP super-segment, a batch of its datagrams) hashes once; the
  // element pointers of an unordered_map survive rehashing, and erase() forgets it.
  Slot* slot(std::uint32_t vip) const;
  std::unordered_map<std::uint32_t, Slot> peers_;                // by virtual IP
  std::unordered_map<std::uint32_t, std::uint32_t> by_request_;  // request id -> vip
  std::unordered_map<std::string, std::uint32_t> by_name_;       // certificate name -> vip
  std::list<std::uint32_t> lru_;                                 // most recent first
  mutable std::uint64_t walks_ = 0;
  mutable Slot* last_ = nullptr;
  mutable std::uint32_t last_vip_ = 0;
  mutable std::uint64_t hashed_ = 0;
};

class UnknownAddresses {
 public:
  UnknownAddresses(Duration ttl, std::size_t capacity) : ttl_(ttl), capacity_(capacity) {}
  // The coordinator does not know `vip` (as of `now`).
  void add(Time now, Ipv4 vip);
  // Whether `vip` is known to be unknown; an expired entry is forgotten.
  bool contains(Time now, Ipv4 vip);
  void forget(Ipv4 vip);
  std::size_t size() const { return entries_.size(); }
  std::uint64_t evicted() const { return evicted_; }

 private:
  struct Entry {
    Time expires;
    std::list<std::uint32_t>::iterator order;
  };
  Duration ttl_;
  std::size_t capacity_;
  std::unordered_map<std::uint32_t, Entry> entries_;
  std::list<std::uint32_t> order_;  // most recently added first
  std::uint64_t evicted_ = 0;
};

using p2p::TokenBucket;

}  // namespace p2p::core

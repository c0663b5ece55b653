#include "daemon/core/peer_table.hpp"

#include <algorithm>

namespace p2p::core {

PeerTable::Slot* PeerTable::slot(std::uint32_t vip) const {
  if (last_ && last_vip_ == vip) return last_;
  ++hashed_;
  auto it = peers_.find(vip);
  if (it == peers_.end()) return nullptr;
  last_ = const_cast<Slot*>(&it->second);
  last_vip_ = vip;
  return last_;
}

Peer* PeerTable::find(Ipv4 vip) {
  Slot* s = slot(vip.value);
  return s ? s->peer.get() : nullptr;
}

const Peer* PeerTable::find(Ipv4 vip) const {
  const Slot* s = slot(vip.value);
  return s ? s->peer.get() : nullptr;
}

Peer* PeerTable::by_request(std::uint32_t request_id) {
  auto it = by_request_.find(request_id);
  if (it == by_request_.end()) return nullptr;
  Peer* p = find(Ipv4{it->second});
  return p && p->request_id == request_id ? p : nullptr;
}

Peer* PeerTable::by_name(const std::string& name) {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return nullptr;
  Peer* p = find(Ipv4{it->second});
  return p && p->cert && p->cert->name == name ? p : nullptr;
}

Peer& PeerTable::insert(std::unique_ptr<Peer> peer) {
  const std::uint32_t vip = peer->vip.value;
  lru_.push_front(vip);
  auto [it, fresh] = peers_.try_emplace(vip, Slot{std::move(peer), lru_.begin()});
  if (!fresh) lru_.pop_front();  // already there: the caller keeps the one it has
  return *it->second.peer;
}

void PeerTable::erase(Ipv4 vip) {
  auto it = peers_.find(vip.value);
  if (it == peers_.end()) return;
  const Peer& p = *it->second.peer;
  if (auto r = by_request_.find(p.request_id); r != by_request_.end() && r->second == vip.value)
    by_request_.erase(r);
  if (p.cert) {
    if (auto n = by_name_.find(p.cert->name); n != by_name_.end() && n->second == vip.value)
      by_name_.erase(n);
  }
  lru_.erase(it->second.lru);
  peers_.erase(it);
  last_ = nullptr;
}

void PeerTable::set_request(Peer& p, std::uint32_t request_id) {
  if (auto r = by_request_.find(p.request_id); r != by_request_.end() && r->second == p.vip.value)
    by_request_.erase(r);
  p.request_id = request_id;
  by_request_[request_id] = p.vip.value;
}

void PeerTable::named(Peer& p) {
  if (p.cert) by_name_[p.cert->name] = p.vip.value;
}

void PeerTable::touch(Peer& p) {
  Slot* s = slot(p.vip.value);
  if (!s || s->lru == lru_.begin()) return;
  lru_.splice(lru_.begin(), lru_, s->lru);
}

void UnknownAddresses::add(Time now, Ipv4 vip) {
  if (capacity_ == 0) return;
  if (auto it = entries_.find(vip.value); it != entries_.end()) {
    it->second.expires = now + ttl_;
    order_.splice(order_.begin(), order_, it->second.order);
    return;
  }
  if (entries_.size() >= capacity_) {
    entries_.erase(order_.back());
    order_.pop_back();
    ++evicted_;
  }
  order_.push_front(vip.value);
  entries_.emplace(vip.value, Entry{now + ttl_, order_.begin()});
}

bool UnknownAddresses::contains(Time now, Ipv4 vip) {
  auto it = entries_.find(vip.value);
  if (it == entries_.end()) return false;
  if (now < it->second.expires) return true;
  order_.erase(it->second.order);
  entries_.erase(it);
  return false;
}

void UnknownAddresses::forget(Ipv4 vip) {
  auto it = entries_.find(vip.value);
  if (it == entries_.end()) return;
  order_.erase(it->second.order);
  entries_.erase(it);
}

}  // namespace p2p::core

#include "coordinator/core/registry.hpp"

#include <cstring>

namespace p2p::coord {

std::size_t Registry::KeyHash::operator()(const crypto::PublicKey& k) const {
  // Keys are X25519 public keys a CA certified: uniformly spread, not chosen to collide.
  std::size_t h = 0;
  std::memcpy(&h, k.data(), sizeof h);
  return h;
}

NodeEntry* Registry::by_key(const crypto::PublicKey& key) {
  auto it = nodes_.find(key);
  return it == nodes_.end() ? nullptr : &it->second;
}

const NodeEntry* Registry::by_key(const crypto::PublicKey& key) const {
  auto it = nodes_.find(key);
  return it == nodes_.end() ? nullptr : &it->second;
}

NodeEntry* Registry::by_index(std::uint32_t local_index) {
  auto it = by_index_.find(local_index);
  return it == by_index_.end() ? nullptr : it->second;
}

NodeEntry* Registry::by_vip(Ipv4 vip) {
  auto it = by_vip_.find(vip.value);
  return it == by_vip_.end() ? nullptr : it->second;
}

NodeEntry* Registry::by_name(std::string_view name) {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

NodeEntry* Registry::add(const crypto::Certificate& cert, const Endpoint& from, Time now,
                         TokenBucket relay, TokenBucket lookups, TokenBucket introductions) {
  if (full()) return nullptr;
  auto [it, added] =
      nodes_.try_emplace(cert.public_key, cert, from, now, relay, lookups, introductions);
  if (!added) return nullptr;
  NodeEntry& n = it->second;
  n.due_ = now + node_timeout_;
  heap_push(n);
  return &n;
}

void Registry::replace_certificate(NodeEntry& n, const crypto::Certificate& cert) {
  if (n.cert == cert) return;
  unindex(n);
  n.registered = false;
  n.cert = cert;
}

void Registry::add_session(NodeEntry& n, crypto::Session s) {
  if (n.previous) by_index_.erase(n.previous->local_index);
  n.previous = std::move(n.current);
  by_index_[s.local_index] = &n;
  n.current.emplace(std::move(s));
  // The one deadline that can come earlier than the heap time (node_timeout > the lifetime).
  const Time expires = n.current->transport.created() + crypto::kRejectAfterTime;
  if (expires < n.due_) {
    n.due_ = expires;
    heap_sift_up(n.heap_pos_);
  }
}

NodeEntry* Registry::register_node(NodeEntry& n) {
  auto [vip, free] = by_vip_.try_emplace(n.cert.vip.address.value, &n);
  if (!free && vip->second != &n) return vip->second;
  n.registered = true;
  by_name_[n.cert.name] = &n;
  return nullptr;
}

void Registry::unindex(NodeEntry& n) {
  if (!n.registered) return;
  if (auto it = by_vip_.find(n.cert.vip.address.value); it != by_vip_.end() && it->second == &n)
    by_vip_.erase(it);
  if (auto it = by_name_.find(n.cert.name); it != by_name_.end() && it->second == &n)
    by_name_.erase(it);
}

void Registry::remove(NodeEntry& n) {
  unindex(n);
  if (n.current) by_index_.erase(n.current->local_index);
  if (n.previous) by_index_.erase(n.previous->local_index);
  heap_erase(n);
  const crypto::PublicKey key = n.cert.public_key;  // not a reference into what erase() frees
  nodes_.erase(key);
}

Time Registry::real_deadline(const NodeEntry& n) const {
  Time t = n.last_seen + node_timeout_;
  for (const auto* s : {&n.current, &n.previous}) {
    if (*s) t = std::min(t, (*s)->transport.created() + crypto::kRejectAfterTime);
  }
  return t;
}

std::size_t Registry::expire(Time now, const std::function<void(NodeEntry&)>& silent) {
  std::size_t looked_at = 0;
  while (!heap_.empty() && heap_.front()->due_ <= now) {
    ++looked_at;
    NodeEntry& n = *heap_.front();
    if (now - n.last_seen >= node_timeout_) {
      silent(n);  // removes n, and with it its heap slot
      continue;
    }
    for (auto* s : {&n.previous, &n.current}) {
      if (*s && (*s)->transport.is_expired(now)) {
        by_index_.erase((*s)->local_index);
        s->reset();
      }
    }
    n.due_ = real_deadline(n);
    heap_sift_down(0);
  }
  return looked_at;
}

void Registry::heap_set(std::size_t i, NodeEntry* n) {
  heap_[i] = n;
  n->heap_pos_ = i;
}

void Registry::heap_push(NodeEntry& n) {
  heap_.push_back(&n);
  n.heap_pos_ = heap_.size() - 1;
  heap_sift_up(n.heap_pos_);
}

void Registry::heap_erase(NodeEntry& n) {
  const std::size_t i = n.heap_pos_;
  NodeEntry* last = heap_.back();
  heap_.pop_back();
  if (last == &n) return;
  heap_set(i, last);
  heap_sift_up(i);
  heap_sift_down(last->heap_pos_);
}

void Registry::heap_sift_up(std::size_t i) {
  NodeEntry* n = heap_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (heap_[parent]->due_ <= n->due_) break;
    heap_set(i, heap_[parent]);
    i = parent;
  }
  heap_set(i, n);
}

void Registry::heap_sift_down(std::size_t i) {
  NodeEntry* n = heap_[i];
  const std::size_t size = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= size) break;
    if (child + 1 < size && heap_[child + 1]->due_ < heap_[child]->due_) ++child;
    if (n->due_ <= heap_[child]->due_) break;
    heap_set(i, heap_[child]);
    i = child;
  }
  heap_set(i, n);
}

}  // namespace p2p::coord

// NodeShell, part three: the data path. UDP batches in (recvmmsg) to node.on_udp(); TUN reads
// (frames with offloads, split into wire-sized packets; or plain packets) to node.on_tun(); the
// send queue's flush and the TUN's back-pressure while it holds what the kernel did not take.
#include <boost/asio/post.hpp>
#include <utility>

#include "daemon/shell/node_shell.hpp"
#include "net/offload.hpp"

namespace p2p::daemon {

namespace asio = boost::asio;

void NodeShell::write_tun(std::span<const std::uint8_t> packet) {
  // Decrypted in place in the UDP batch's pool, it stays there until the batch's end.
  if (batch_pool_ == &udp_pool_ && tun_.offloads().tso && udp_pool_.contains(packet)) {
    if (tun_gro_.add(packet)) return;
    flush_tun();
    if (tun_gro_.add(packet)) return;
  }
  flush_tun();  // what was gathered goes first
  if (auto ok = tun_.write_packet(packet); !ok) {
    ++tun_write_drops_;
    warn_limited("TUN write failed", ok.error().message);
  }
}

void NodeShell::flush_tun() {
  for (std::size_t g = 0; g < tun_gro_.groups(); ++g) {
    const std::size_t segments = tun_gro_.segments(g);
    if (auto ok = tun_.write_frame(tun_gro_.frame(g)); !ok) {
      tun_write_drops_ += segments;
      warn_limited("TUN write failed", ok.error().message);
    } else if (segments > 1) {
      ++tun_gro_frames_;
    }
  }
  tun_gro_.clear();
}

void NodeShell::wait_udp() {
  udp_.async_wait_readable([this](const boost::system::error_code& ec) {
    if (!ec && !stopped_) on_udp_readable();
  });
}

void NodeShell::wait_tun() {
  tun_watch_.async_wait_readable([this](const boost::system::error_code& ec) {
    if (!ec && !stopped_) on_tun_readable();
  });
}

void NodeShell::on_udp_readable() {
  Time now{};
  for (int round = 0; round < kRoundsPerWake; ++round) {
    auto n = udp_.receive_batch(udp_pool_, received_);
    if (!n) {
      warn_limited("UDP receive failed", n.error().message);
      break;
    }
    if (*n == 0) break;
    now = Clock::now();
    begin_batch(udp_pool_);
    if (workers_) {
      // Open the batch's Data on the workers first; the Node then takes it in order.
      for (std::size_t i = 0; i < *n; ++i)
        opened_[i] = node_->prepare_open(now, udp_pool_.view(i, received_[i].length), crypto_jobs_);
      run_crypto();
      for (std::size_t i = 0; i < *n; ++i) {
        node_->on_udp(now, received_[i].from, udp_pool_.view(i, received_[i].length),
                      opened_[i] ? &crypto_jobs_[*opened_[i]] : nullptr);
      }
    } else {
      for (std::size_t i = 0; i < *n; ++i) {
        node_->on_udp(now, received_[i].from, udp_pool_.view(i, received_[i].length));
      }
    }
    end_batch();
    flush_tun();
    flush_udp();
    if (*n < kBatch && !udp_.has_pending()) break;
  }
  after_event(now == Time{} ? Clock::now() : now);
  if (stopped_) return;
  if (udp_.has_pending()) {
    // Datagrams the kernel already handed over (coalesced) wait in the UdpSocket, no longer
    // in the kernel: readability would not tell about them.
    asio::post(io_, [this] {
      if (!stopped_) on_udp_readable();
    });
  } else {
    wait_udp();
  }
}

void NodeShell::on_tun_readable() {
  // While the UDP queue holds what the kernel would not take, the TUN is not read: the
  // kernel queues (and, when full, drops) there, which is what slows the sending TCP down.
  Time now = tun_.offloads().vnet_hdr ? read_tun_frames() : read_tun_packets();
  after_event(now == Time{} ? Clock::now() : now);
  if (stopped_) return;
  if (udp_.queued() > 0) {
    tun_paused_ = true;  // on_udp_sendable() resumes
  } else {
    wait_tun();
  }
}

Time NodeShell::read_tun_frames() {
  Time now{};
  std::size_t used = 0, handed = 0;
  auto hand_over = [&] {
    begin_batch(tun_pool_);
    for (std::size_t i = 0; i < used; ++i) {
      node_->on_tun(now, tun_pool_.view(i, tun_slots_[i].length));
    }
    end_batch();
    handed += used;
    used = 0;
    flush_udp();
  };
  tun::PacketSlot slot{tun_frame_.data(), tun_frame_.size(), 0};
  while (handed + used < kRoundsPerWake * kBatch && udp_.queued() == 0) {
    auto n = tun_.read_batch({&slot, 1});
    if (!n) {
      if (n.error().code != tun::TunErrc::kWouldBlock) {
        warn_limited("TUN read failed", n.error().message);
      }
      break;
    }
    if (*n == 0) break;
    if (now == Time{}) now = Clock::now();
    auto frame = offload::parse({tun_frame_.data(), slot.length});
    if (!frame) {
      ++tun_offload_drops_;
      warn_limited("TUN frame dropped", offload::to_string(frame.error()));
      continue;
    }
    // Split where the packets are encrypted: each segment to a pool buffer with headroom.
    for (std::size_t i = 0; i < frame->segments; ++i) {
      if (used == kBatch) hand_over();
      tun_slots_[used].length = offload::write_segment(
          *frame, i, {tun_pool_.packet(used), io::PacketPool::kPacketCapacity});
      ++used;
    }
  }
  if (used > 0) hand_over();
  return now;
}

Time NodeShell::read_tun_packets() {
  Time now{};
  for (int round = 0; round < kRoundsPerWake && udp_.queued() == 0; ++round) {
    auto n = tun_.read_batch(tun_slots_);
    if (!n) {
      if (n.error().code != tun::TunErrc::kWouldBlock) {
        warn_limited("TUN read failed", n.error().message);
      }
      break;
    }
    if (*n == 0) break;
    now = Clock::now();
    begin_batch(tun_pool_);
    for (std::size_t i = 0; i < *n; ++i) {
      node_->on_tun(now, tun_pool_.view(i, tun_slots_[i].length));
    }
    end_batch();
    flush_udp();
    if (*n < kBatch) break;
  }
  return now;
}

void NodeShell::flush_udp() {
  udp_.flush();
  if (udp_.queued() == 0 || waiting_sendable_ || stopped_) return;
  waiting_sendable_ = true;
  udp_.async_wait_sendable([this](const boost::system::error_code& ec) {
    waiting_sendable_ = false;
    if (!ec && !stopped_) on_udp_sendable();
  });
}

void NodeShell::on_udp_sendable() {
  flush_udp();
  if (udp_.queued() > 0 || !tun_paused_) return;
  tun_paused_ = false;
  wait_tun();
}

}  // namespace p2p::daemon

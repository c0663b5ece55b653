// TunDevice: a Linux TUN interface (IFF_TUN | IFF_NO_PI: every read and write is exactly one
// raw IPv4 or IPv6 packet) configured through rtnetlink, never by running `ip`.
//
// Lifetime: the device is not persistent, so the kernel deletes the interface when the fd is
// closed: by the destructor, by close(), or by process exit, whatever the signal. Move-only.
//
// Errors: open() returns Expected (no exceptions); the daemon's main turns a failure into its
// exit message. The data path (read_batch, write_*) neither throws nor allocates on success.
//
// Threading: one reader and one writer may use the device concurrently (they are separate
// system calls on one fd); open/close/move must not race with them.
//
// Async use: the fd is non-blocking. The daemon may wrap native_handle() in a Boost.Asio
// posix::stream_descriptor to async_wait() for readability, then call read_batch(); it must
// release() that descriptor rather than let it close the fd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "net/expected.hpp"
#include "net/ip.hpp"
#include "tun/tun_error.hpp"

namespace p2p::tun {

// One packet's place in a caller-owned buffer (the daemon's pool leaves headroom before
// `data` for the transport header and tailroom after it for the tag; the device never touches
// either). read_batch fills data[0..length) and sets `length`; write_batch sends
// data[0..length). `capacity` must be at least the device MTU for reads.
struct PacketSlot {
  std::uint8_t* data = nullptr;
  std::size_t capacity = 0;
  std::size_t length = 0;
};

// Outcome of write_batch: `written + rejected` packets were consumed in order. When
// `would_block` is set the rest were not attempted; retry them once the fd is writable.
struct WriteResult {
  std::size_t written = 0;
  std::size_t rejected = 0;
  bool would_block = false;
};

// What open(..., offload = true) could switch on. With vnet_hdr every read and write starts
// with a virtio-net header (net/offload.hpp); with tso a read may be a TCP super-segment of up
// to 64 KiB (TUNSETOFFLOAD TSO4/TSO6), with uso a UDP one (USO4/USO6, Linux 6.2+). Without
// them reads are single packets that may still need their checksum completed (TUN_F_CSUM).
struct TunOffloads {
  bool vnet_hdr = false;
  bool tso = false;
  bool uso = false;
};

class TunDevice {
 public:
  static constexpr std::uint32_t kMinMtu = 68;  // IPv4's minimum
  static constexpr std::uint32_t kMinMtuIpv6 = 1280;
  static constexpr std::uint32_t kMaxMtu = 65535;

  // Creates interface `name` (1..15 characters, none of '/', ':', '%' or whitespace, not
  // "." or ".."), sets its MTU, adds `v4` (and `v6` if given) and brings it up. Fails with
  // kNameInUse if an interface of that name exists (never attaches to it), kNotPermitted
  // without root/CAP_NET_ADMIN, kNoDriver without /dev/net/tun. On failure nothing is left
  // behind: the half-configured device goes away with its fd.
  // With `offload`, asks for IFF_VNET_HDR and the offloads above, each as far as the kernel
  // has it (offloads() says what was granted).
  static Expected<TunDevice, TunError> open(std::string_view name, std::uint32_t mtu,
                                            const Ipv4Prefix& v4,
                                            const std::optional<Ipv6Prefix>& v6 = std::nullopt,
                                            bool offload = false);

  TunDevice() = default;  // closed; only for moving into
  ~TunDevice();
  TunDevice(TunDevice&& o) noexcept;
  TunDevice& operator=(TunDevice&& o) noexcept;
  TunDevice(const TunDevice&) = delete;
  TunDevice& operator=(const TunDevice&) = delete;

  // Reads up to slots.size() packets without blocking, filling slots[0..n) in order; returns
  // n, 0 when nothing is queued. A packet longer than its slot's capacity is dropped and
  // counted (oversize_drops()). An error is returned only when no packet was read first.
  Expected<std::size_t, TunError> read_batch(std::span<PacketSlot> slots);

  // Hands one IPv4/IPv6 packet to the kernel (behind a plain virtio-net header when
  // offloads().vnet_hdr). kWouldBlock if it cannot take it now,
  // kRejectedPacket if it refuses this packet (e.g. the version nibble is neither 4 nor 6).
  Expected<void, TunError> write_packet(std::span<const std::uint8_t> packet);
  // Writes slots[i].data[0..length) in order; a rejected packet is counted and skipped.
  WriteResult write_batch(std::span<const PacketSlot> slots);
  // Hands one frame, gathered from `parts` (at most kMaxFrameParts), to the kernel in one
  // write: with offloads().vnet_hdr the first part starts with the virtio-net header (e.g.
  // offload::Coalescer::frame()). Errors as write_packet().
  static constexpr std::size_t kMaxFrameParts = 128;
  Expected<void, TunError> write_frame(std::span<const std::span<const std::uint8_t>> parts);

  // Closes the fd now, which deletes the interface. Idempotent.
  void close();

  bool is_open() const { return fd_ >= 0; }
  int native_handle() const { return fd_; }
  const std::string& name() const { return name_; }
  int index() const { return index_; }
  std::uint32_t mtu() const { return mtu_; }
  std::uint64_t oversize_drops() const { return oversize_drops_; }
  const TunOffloads& offloads() const { return offloads_; }

 private:
  TunDevice(int fd, std::string name, std::uint32_t mtu);
  int write_raw(std::span<const std::uint8_t> packet);  // 0 or errno
  Expected<void, TunError> write_error(int err, std::size_t size) const;

  int fd_ = -1;
  std::string name_;
  int index_ = 0;
  std::uint32_t mtu_ = 0;
  std::uint64_t oversize_drops_ = 0;
  TunOffloads offloads_;
};

}  // namespace p2p::tun

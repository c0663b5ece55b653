// ByteWriter / ByteReader: bounds-checked big-endian (network order) serialisation helpers for
// the wire formats. Every codec in the tree (control messages, packet headers, certificates,
// STUN) reads and writes through these two classes.
//
// Both fail the same way: a read or write that does not fit fails the object, which then stays
// failed (ok() == false) and does nothing more, so a codec can run a sequence of operations
// and check once at the end.
//
// ByteReader never reads past its span: every getter returns std::nullopt (or false) once the
// input is short. Lengths read from the wire must be checked against remaining() before
// anything is allocated for them.
//
// ByteWriter appends to a vector, at most `limit` bytes from where it started. A write that
// would cross the limit, or a length-prefixed value longer than its prefix can state, fails
// the writer and removes everything it had appended: it never drops bytes silently, and `out`
// holds either the whole encoding or nothing of it. A caller must check ok() and report an
// error instead of using the output. Without a limit, only str8/blob16 of a value too long for
// its prefix and a patch_u16 outside what was written can fail.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/ip.hpp"

namespace p2p::wire {

class ByteWriter {
 public:
  static constexpr std::size_t kUnlimited = std::numeric_limits<std::size_t>::max();

  // Appends to `out` (not cleared; offsets below count from its size at construction).
  explicit ByteWriter(std::vector<std::uint8_t>& out, std::size_t limit = kUnlimited)
      : out_(out), base_(out.size()), limit_(limit) {}

  void u8(std::uint8_t v) {
    if (room(1)) out_.push_back(v);
  }
  void u16(std::uint16_t v) {
    if (room(2)) put_be(v, 2);
  }
  void u32(std::uint32_t v) {
    if (room(4)) put_be(v, 4);
  }
  void u64(std::uint64_t v) {
    if (room(8)) put_be(v, 8);
  }
  void bytes(std::span<const std::uint8_t> b) {
    if (room(b.size())) out_.insert(out_.end(), b.begin(), b.end());
  }
  // A string or blob prefixed with its length as u8 / u16; a longer one fails the writer.
  void str8(std::string_view s);
  void blob16(std::span<const std::uint8_t> b);
  void endpoint(const Endpoint& e);  // [family 4|6][address][port u16]
  // Zero bytes up to the next multiple of `alignment` (> 0) of size().
  void align(std::size_t alignment);
  // Overwrites the two bytes already written at offset `at` (a length known only later).
  void patch_u16(std::size_t at, std::uint16_t v);

  std::size_t size() const { return ok_ ? out_.size() - base_ : 0; }  // bytes written
  bool ok() const { return ok_; }

 private:
  bool room(std::size_t n);
  void put_be(std::uint64_t v, int n) {
    for (int shift = 8 * (n - 1); shift >= 0; shift -= 8)
      out_.push_back(static_cast<std::uint8_t>(v >> shift));
  }
  void fail();

  std::vector<std::uint8_t>& out_;
  std::size_t base_;
  std::size_t limit_;
  bool ok_ = true;
};

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::uint8_t> in) : in_(in) {}
  std::optional<std::uint8_t> u8();
  std::optional<std::uint16_t> u16();
  std::optional<std::uint32_t> u32();
  std::optional<std::uint64_t> u64();
  // A view of the next n bytes (valid as long as the input), or nullopt if fewer remain.
  std::optional<std::span<const std::uint8_t>> bytes(std::size_t n);
  template <std::size_t N>
  std::optional<std::array<std::uint8_t, N>> array() {
    auto b = bytes(N);
    if (!b) return std::nullopt;
    std::array<std::uint8_t, N> a{};
    std::memcpy(a.data(), b->data(), N);
    return a;
  }
  // Length-prefixed (u8 / u16); a length over max_len fails the reader like a short input.
  std::optional<std::string> str8(std::size_t max_len);
  std::optional<std::span<const std::uint8_t>> blob16(std::size_t max_len);
  std::optional<Endpoint> endpoint();
  std::span<const std::uint8_t> rest();  // everything left; consumes it
  // Skips n bytes / up to the next multiple of `alignment` (> 0) of position(); false if short.
  bool skip(std::size_t n) { return bytes(n).has_value(); }
  bool align(std::size_t alignment) { return skip((alignment - pos_ % alignment) % alignment); }

  // Bytes consumed; after a failure, where the read that failed started.
  std::size_t position() const { return pos_; }
  std::size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == in_.size(); }

 private:
  bool take(std::size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace p2p::wire

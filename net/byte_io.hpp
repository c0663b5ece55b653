// ByteWriter / ByteReader: bounds-checked big-endian (network order) serialisation helpers for
// the wire formats.
//
// ByteReader never reads past its span: every getter returns std::nullopt (or false) once the
// input is short, and the reader stays failed afterwards (ok() == false), so a decoder can run
// a sequence of reads and check once. Lengths read from the wire must be checked against
// remaining() before anything is allocated for them.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/ip.hpp"

namespace p2p::wire {

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<std::uint8_t>& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    u8(static_cast<std::uint8_t>(v >> 8));
    u8(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v));
  }
  void u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v >> 32));
    u32(static_cast<std::uint32_t>(v));
  }
  void bytes(std::span<const std::uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  // A string or blob prefixed with its length as u8 / u16. The caller keeps within the limit.
  void str8(std::string_view s);
  void blob16(std::span<const std::uint8_t> b);
  void endpoint(const Endpoint& e);  // [family 4|6][address][port u16]

 private:
  std::vector<std::uint8_t>& out_;
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
  std::optional<std::string> str8(std::size_t max_len);
  std::optional<std::span<const std::uint8_t>> blob16(std::size_t max_len);
  std::optional<Endpoint> endpoint();
  std::span<const std::uint8_t> rest();  // everything left; consumes it

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

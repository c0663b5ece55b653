// Sealing and opening on worker threads (crypto/crypto_workers.hpp): a batch sealed by workers
// is byte for byte the batch sealed serially with the same keys and counters, and decrypts in
// order; opening with workers accepts and rejects (replays, forgeries, too old) exactly what
// the serial decrypt() does; jobs outside the region are refused; keys are wiped on clear().
#include "crypto/crypto_workers.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <random>
#include <vector>

#include "crypto/session.hpp"
#include "crypto/transport.hpp"
#include "net/packet.hpp"

namespace p2p::crypto {
namespace {

using Bytes = std::vector<std::uint8_t>;
const Time kT0{};

noise::TransportKeys keys(const std::array<std::uint8_t, 32>& send,
                          const std::array<std::uint8_t, 32>& recv) {
  return noise::TransportKeys{Wiped<32>(std::span<const std::uint8_t, 32>(send)),
                              Wiped<32>(std::span<const std::uint8_t, 32>(recv))};
}

struct Keys {
  std::array<std::uint8_t, 32> k1{}, k2{};
  Keys() {
    randombytes_buf(k1.data(), k1.size());
    randombytes_buf(k2.data(), k2.size());
  }
  TransportSession sender() const { return TransportSession(keys(k1, k2), kT0, true); }
  TransportSession receiver() const { return TransportSession(keys(k2, k1), kT0, false); }
};

// A batch of packets in one contiguous pool, each in a slot with headroom and tailroom, as
// the shell's PacketPool lays them out.
struct Pool {
  static constexpr std::size_t kSlot = 2048;
  explicit Pool(std::size_t n) : bytes(n * kSlot) {}
  std::span<std::uint8_t> region() { return bytes; }
  PacketView view(std::size_t i, std::size_t len) {
    return PacketView(bytes.data() + i * kSlot, kSlot, kHeadroom, len);
  }
  Bytes bytes;
};

// Different sizes (one byte to a full packet), different contents.
std::vector<std::size_t> sizes(std::size_t n) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(i == 0 ? 1 : 1 + (i * 97) % 1400);
  return out;
}

void fill(Pool& pool, const std::vector<std::size_t>& len) {
  for (std::size_t i = 0; i < len.size(); ++i) {
    auto v = pool.view(i, len[i]);
    for (std::size_t j = 0; j < len[i]; ++j) v.span()[j] = static_cast<std::uint8_t>(i * 31 + j);
  }
}

// Seals every packet of `pool` in one session: with `workers` (deferred, then run), or
// serially (workers == nullptr). Returns the datagrams.
std::vector<Bytes> seal_batch(TransportSession t, Pool& pool, const std::vector<std::size_t>& len,
                              CryptoWorkers* workers) {
  Session s{std::move(t), 1, 0xabcd};
  CryptoJobs jobs(len.size());
  jobs.set_region(pool.region());
  std::vector<PacketView> views;
  for (std::size_t i = 0; i < len.size(); ++i) {
    views.push_back(pool.view(i, len[i]));
    EXPECT_TRUE(s.seal(kT0, views.back(), workers ? &jobs : nullptr));
  }
  EXPECT_EQ(jobs.size(), workers ? len.size() : 0u);
  if (workers) workers->run(jobs.pending());
  std::vector<Bytes> out;
  for (auto& v : views) out.emplace_back(v.span().begin(), v.span().end());
  jobs.clear();
  return out;
}

TEST(CryptoWorkers, SealedByTwoWorkersIsByteIdenticalToSerialAndDecryptsInOrder) {
  const Keys k;
  const auto len = sizes(64);
  Pool serial_pool(len.size()), worker_pool(len.size());
  fill(serial_pool, len);
  fill(worker_pool, len);
  CryptoWorkers two(2);
  ASSERT_EQ(two.threads(), 2u);
  const auto serial = seal_batch(k.sender(), serial_pool, len, nullptr);
  const auto parallel = seal_batch(k.sender(), worker_pool, len, &two);
  ASSERT_EQ(serial, parallel);

  TransportSession rx = k.receiver();
  for (std::size_t i = 0; i < parallel.size(); ++i) {
    Bytes d = parallel[i];
    auto h = wire::parse_data(d);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->counter, i);  // reserved in order
    auto body = std::span(d).subspan(wire::kDataHeaderSize);
    auto n = rx.decrypt(kT0, h->counter, body);
    ASSERT_TRUE(n) << i;
    ASSERT_EQ(*n, len[i]);
    for (std::size_t j = 0; j < len[i]; ++j)
      ASSERT_EQ(body[j], static_cast<std::uint8_t>(i * 31 + j));
  }
}

TEST(CryptoWorkers, ManyBatchesInARowStayIdentical) {
  // Back-to-back batches of varying size (some under kMinParallel) through one pool: each
  // batch must be done entirely before run() returns.
  const Keys k;
  CryptoWorkers two(2);
  TransportSession serial = k.sender(), parallel = k.sender();
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    const std::size_t n = 1 + rng() % 64;
    auto len = sizes(n);
    std::shuffle(len.begin(), len.end(), rng);
    Pool a(n), b(n);
    fill(a, len);
    fill(b, len);
    Session sa{std::move(serial), 1, 2}, sb{std::move(parallel), 1, 2};
    CryptoJobs jobs(n);
    jobs.set_region(b.region());
    for (std::size_t i = 0; i < n; ++i) {
      auto va = a.view(i, len[i]), vb = b.view(i, len[i]);
      ASSERT_TRUE(sa.seal(kT0, va));
      ASSERT_TRUE(sb.seal(kT0, vb, &jobs));
    }
    two.run(jobs.pending());
    ASSERT_EQ(a.bytes, b.bytes) << "round " << round;
    serial = std::move(sa.transport);
    parallel = std::move(sb.transport);
  }
}

// A received stream with replays, forgeries and packets fallen behind the window: what the
// serial decrypt() accepts, in order, must be exactly what check_open + workers +
// accept_opened accept.
TEST(CryptoWorkers, OpenWithWorkersRejectsReplaysExactlyAsSerial) {
  const Keys k;
  TransportSession tx = k.sender();
  std::vector<Bytes> sent;  // counter || ciphertext (8-byte little-endian counter first)
  for (std::size_t i = 0; i < 3000; ++i) {
    Bytes b(40 + i % 100 + kTransportTagLen, static_cast<std::uint8_t>(i));
    auto c = tx.encrypt(kT0, b, b.size() - kTransportTagLen);
    ASSERT_TRUE(c);
    ASSERT_EQ(*c, i);
    sent.push_back(std::move(b));
  }
  // The arrival order: mostly in order, with duplicates (also within one batch), reordering,
  // a forged copy, and very old counters.
  std::mt19937 rng(11);
  std::vector<std::pair<std::uint64_t, Bytes>> arrivals;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    arrivals.emplace_back(i, sent[i]);
    if (rng() % 7 == 0) arrivals.emplace_back(i, sent[i]);  // immediate replay
    if (rng() % 11 == 0 && i > 10) arrivals.emplace_back(i - rng() % 10, sent[i - rng() % 10]);
    if (rng() % 13 == 0) {
      Bytes forged = sent[i];
      forged[rng() % forged.size()] ^= 0x40;
      arrivals.emplace_back(i, forged);
    }
    if (rng() % 97 == 0 && i > 2500) arrivals.emplace_back(i - 2400, sent[i - 2400]);  // too old
  }
  for (std::size_t i = 0; i + 1 < arrivals.size(); i += 5)
    if (rng() % 3 == 0) std::swap(arrivals[i], arrivals[i + 1]);

  // Serial.
  TransportSession rx_serial = k.receiver();
  std::vector<int> serial;  // per arrival: the error, or -1 when accepted
  for (auto [c, b] : arrivals) {
    auto n = rx_serial.decrypt(kT0, c, b);
    serial.push_back(n ? -1 : static_cast<int>(n.error()));
  }

  // Workers, in batches of 64 as the shell reads them.
  TransportSession rx = k.receiver();
  CryptoWorkers two(2);
  std::vector<int> parallel;
  std::size_t accepted = 0;
  for (std::size_t from = 0; from < arrivals.size(); from += 64) {
    const std::size_t n = std::min<std::size_t>(64, arrivals.size() - from);
    Pool pool(n);
    CryptoJobs jobs(n);
    jobs.set_region(pool.region());
    std::vector<std::optional<std::size_t>> job(n);
    std::vector<std::span<std::uint8_t>> body(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& [c, b] = arrivals[from + i];
      body[i] = pool.view(i, b.size()).span();
      std::copy(b.begin(), b.end(), body[i].begin());
      if (rx.check_open(kT0, c, b.size()))
        job[i] = jobs.add(CryptoJob::Kind::kOpen, rx.recv_key(), c, body[i]);
    }
    two.run(jobs.pending());
    for (std::size_t i = 0; i < n; ++i) {
      const auto c = arrivals[from + i].first;
      if (!job[i]) {
        parallel.push_back(static_cast<int>(rx.check_open(kT0, c, body[i].size()).error()));
      } else if (auto r = rx.accept_opened(kT0, c, jobs[*job[i]].ok); !r) {
        parallel.push_back(static_cast<int>(r.error()));
      } else {
        parallel.push_back(-1);
        ++accepted;
        // The plaintext is the sender's.
        EXPECT_TRUE(std::all_of(body[i].begin(), body[i].end() - kTransportTagLen,
                                [&](std::uint8_t x) { return x == static_cast<std::uint8_t>(c); }));
      }
    }
    jobs.clear();
  }
  EXPECT_EQ(parallel, serial);
  EXPECT_EQ(accepted, sent.size());  // each counter exactly once
}

TEST(CryptoJobs, TakesOnlyInsideTheRegionAndUpToCapacity) {
  Pool pool(2);
  Bytes outside(100);
  CryptoJobs jobs(1);
  const std::array<std::uint8_t, 32> key{};
  EXPECT_FALSE(jobs.takes(pool.view(0, 10).span()));  // no region yet
  jobs.set_region(pool.region());
  EXPECT_FALSE(jobs.add(CryptoJob::Kind::kSeal, key, 0, outside));
  EXPECT_FALSE(jobs.add(CryptoJob::Kind::kSeal, key, 0, pool.view(0, 8).span()));  // < tag
  EXPECT_EQ(jobs.add(CryptoJob::Kind::kSeal, key, 0, pool.view(0, 40).span()), 0u);
  EXPECT_FALSE(jobs.add(CryptoJob::Kind::kSeal, key, 1, pool.view(1, 40).span()));  // full
  jobs.clear();
  EXPECT_EQ(jobs.size(), 0u);
  EXPECT_EQ(jobs.add(CryptoJob::Kind::kSeal, key, 1, pool.view(1, 40).span()), 0u);
}

TEST(CryptoJobs, ClearWipesTheKeys) {
  Pool pool(1);
  CryptoJobs jobs(1);
  jobs.set_region(pool.region());
  std::array<std::uint8_t, 32> key;
  key.fill(0x5a);
  ASSERT_TRUE(jobs.add(CryptoJob::Kind::kSeal, key, 0, pool.view(0, 40).span()));
  const CryptoJob& j = jobs[0];
  EXPECT_EQ(j.key.data()[0], 0x5a);
  jobs.clear();
  EXPECT_TRUE(std::all_of(j.key.data(), j.key.data() + 32, [](std::uint8_t b) { return b == 0; }));
}

TEST(CryptoWorkers, NoThreadsRunsOnTheCallerAndAutomaticLeavesACoreToTheLoop) {
  CryptoWorkers none(0);
  EXPECT_EQ(none.threads(), 0u);
  Pool pool(1);
  CryptoJobs jobs(1);
  jobs.set_region(pool.region());
  const std::array<std::uint8_t, 32> key{};
  ASSERT_TRUE(jobs.add(CryptoJob::Kind::kSeal, key, 0, pool.view(0, 40).span()));
  none.run(jobs.pending());
  EXPECT_TRUE(jobs[0].ok);
  const std::size_t cores = std::thread::hardware_concurrency();
  EXPECT_EQ(CryptoWorkers::automatic(),
            cores <= 1 ? 0 : std::min(cores - 1, CryptoWorkers::kMaxThreads));
  EXPECT_EQ(CryptoWorkers(100).threads(), CryptoWorkers::kMaxThreads);
}

}  // namespace
}  // namespace p2p::crypto

#include "crypto/crypto_workers.hpp"

#include <pthread.h>

#include <algorithm>

namespace p2p::crypto {
namespace {

constexpr std::size_t kChunk = 4;  // jobs taken at a time: ~5 us of work on a 1400-byte packet
constexpr std::uint64_t kClosed = 0xffffffff;  // cursor index while a batch is being published

}  // namespace

void CryptoJob::run() {
  std::span<std::uint8_t> text(data, length);
  std::span<std::uint8_t, noise::kTagLen> tag(data + length, noise::kTagLen);
  if (kind == Kind::kSeal) {
    noise::seal(key.span(), counter, {}, text, tag);
    ok = true;
  } else {
    ok = noise::open(key.span(), counter, {}, text, tag);
  }
}

bool CryptoJobs::takes(std::span<const std::uint8_t> bytes) const {
  return size_ < jobs_.size() && !region_.empty() && bytes.data() >= region_.data() &&
         bytes.data() + bytes.size() <= region_.data() + region_.size();
}

std::optional<std::size_t> CryptoJobs::add(CryptoJob::Kind kind,
                                           std::span<const std::uint8_t, noise::kKeyLen> key,
                                           std::uint64_t counter, std::span<std::uint8_t> bytes) {
  if (bytes.size() < noise::kTagLen || !takes(bytes)) return std::nullopt;
  CryptoJob& j = jobs_[size_];
  std::copy(key.begin(), key.end(), j.key.data());
  j.counter = counter;
  j.data = bytes.data();
  j.length = bytes.size() - noise::kTagLen;
  j.kind = kind;
  j.ok = false;
  return size_++;
}

void CryptoJobs::clear() {
  for (std::size_t i = 0; i < size_; ++i) jobs_[i].key.wipe();
  size_ = run_ = 0;
}

// --- CryptoWorkers ---------------------------------------------------------------------------
//
// One batch at a time. cursor_ holds the batch's generation (high 32 bits) and the index of the
// next job to take; a thread takes a chunk by a compare-exchange on it, so a thread that read
// an older generation takes nothing. While a batch is published the index is kClosed: a thread
// that read the old cursor and then the new batch's pointer or size fails its exchange (all
// operations are sequentially consistent for this argument). run() returns when done_ reaches
// the batch's size; workers sleep on generation_ between batches.

CryptoWorkers::CryptoWorkers(std::size_t threads) {
  threads = std::min(threads, kMaxThreads);
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { work(); });
    pthread_setname_np(threads_.back().native_handle(), "p2p-crypto");
  }
}

CryptoWorkers::~CryptoWorkers() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

std::size_t CryptoWorkers::automatic() {
  const std::size_t cores = std::thread::hardware_concurrency();
  return cores <= 1 ? 0 : std::min(cores - 1, kMaxThreads);
}

void CryptoWorkers::run(std::span<CryptoJob> jobs) {
  if (threads_.empty() || jobs.size() < kMinParallel) {
    for (auto& j : jobs) j.run();
    return;
  }
  const std::uint64_t gen = std::uint64_t{++batches_} << 32;
  cursor_.store(gen | kClosed);
  jobs_.store(jobs.data());
  count_.store(jobs.size());
  done_.store(0);
  cursor_.store(gen);
  generation_.fetch_add(1);
  generation_.notify_all();
  take_share();
  for (std::size_t d = done_.load(); d != jobs.size(); d = done_.load()) done_.wait(d);
}

void CryptoWorkers::work() {
  std::uint32_t seen = 0;
  for (;;) {
    generation_.wait(seen);
    seen = generation_.load();
    if (stop_.load()) return;
    take_share();
  }
}

void CryptoWorkers::take_share() {
  for (;;) {
    std::uint64_t c = cursor_.load();
    const std::uint64_t i = c & kClosed;
    CryptoJob* jobs = jobs_.load();
    const std::size_t n = count_.load();
    if (i >= n) return;  // closed, or all taken
    const std::size_t k = std::min<std::size_t>(kChunk, n - i);
    if (!cursor_.compare_exchange_weak(c, c + k)) continue;
    for (std::size_t j = i; j < i + k; ++j) jobs[j].run();
    if (done_.fetch_add(k) + k == n) done_.notify_all();
  }
}

}  // namespace p2p::crypto

// Sealing and opening a batch of transport packets on more than one core.
//
// The flow (mesh.yaml performance: workers): the node core stays single-threaded and decides
// everything in order; only the ChaCha20-Poly1305 itself moves.
//   seal: the core reserves each packet's counter serially (TransportSession::reserve), writes
//         the Data header and, instead of encrypting, adds a CryptoJob to the batch's
//         CryptoJobs; the shell queues the datagram by reference as usual; before the batch's
//         flush it runs the jobs (CryptoWorkers::run), so the datagrams leave in their
//         original order, each encrypted in place.
//   open: before the batch goes to the core, the core checks each Data datagram
//         (TransportSession::check_open) and adds a CryptoJob; the workers open them in place;
//         then the core takes the batch in order, and for each opened packet only checks and
//         advances the replay window (TransportSession::accept_opened).
// A job holds a copy of its key (wiped when the jobs are cleared), so a session dropped in the
// middle of a batch leaves nothing dangling. Nothing is allocated after construction.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "crypto/noise.hpp"
#include "crypto/wiped.hpp"

namespace p2p::crypto {

struct CryptoJob {
  enum class Kind : std::uint8_t { kSeal, kOpen };
  Wiped<noise::kKeyLen> key;
  std::uint64_t counter = 0;
  std::uint8_t* data = nullptr;  // `length` bytes (plaintext or ciphertext), then the tag
  std::size_t length = 0;
  Kind kind = Kind::kSeal;
  bool ok = false;  // after run(): sealed, or the tag verified and data is the plaintext

  void run();
};

// The jobs of one batch, in the order the core added them. Only spans inside `region` (the
// batch's packet pool, which stays in place until the batch's flush) are taken: the core seals
// anything else itself.
class CryptoJobs {
 public:
  explicit CryptoJobs(std::size_t capacity) : jobs_(capacity) {}

  // Where the batch's packets live; an empty region takes nothing.
  void set_region(std::span<const std::uint8_t> region) { region_ = region; }
  // Whether a job for these bytes (data and tag) would be taken.
  bool takes(std::span<const std::uint8_t> bytes) const;
  // Adds a job for `bytes` = data || tag; returns its index, nullopt when not taken.
  std::optional<std::size_t> add(CryptoJob::Kind kind,
                                 std::span<const std::uint8_t, noise::kKeyLen> key,
                                 std::uint64_t counter, std::span<std::uint8_t> bytes);

  const CryptoJob& operator[](std::size_t i) const { return jobs_[i]; }
  std::size_t size() const { return size_; }
  // The jobs added since the last mark_run(): what CryptoWorkers::run still has to do.
  std::span<CryptoJob> pending() { return std::span(jobs_).subspan(run_, size_ - run_); }
  void mark_run() { run_ = size_; }
  // Wipes every key and empties the list.
  void clear();

 private:
  std::vector<CryptoJob> jobs_;
  std::size_t size_ = 0, run_ = 0;
  std::span<const std::uint8_t> region_;
};

// `threads` worker threads (0: none; run() does everything on the calling thread). run()
// splits the jobs with the calling thread, which takes its share too, and returns when all are
// done. Batches shorter than kMinParallel are run on the calling thread alone (waking a worker
// costs more). run() is called from one thread at a time.
class CryptoWorkers {
 public:
  static constexpr std::size_t kMinParallel = 8;
  static constexpr std::size_t kMaxThreads = 16;

  explicit CryptoWorkers(std::size_t threads);
  ~CryptoWorkers();
  CryptoWorkers(const CryptoWorkers&) = delete;
  CryptoWorkers& operator=(const CryptoWorkers&) = delete;

  std::size_t threads() const { return threads_.size(); }
  void run(std::span<CryptoJob> jobs);

  // `auto` in mesh.yaml: one worker per core but the loop's, at most kMaxThreads; 0 on one core.
  static std::size_t automatic();

 private:
  void work();
  void take_share();

  std::vector<std::thread> threads_;
  std::uint32_t batches_ = 0;                 // run()'s thread only
  std::atomic<std::uint64_t> cursor_{0};      // generation << 32 | next job to take
  std::atomic<CryptoJob*> jobs_{nullptr};     // the batch
  std::atomic<std::size_t> count_{0};         // its size
  std::atomic<std::size_t> done_{0};          // its jobs run so far
  std::atomic<std::uint32_t> generation_{0};  // bumped per batch (and to stop): wakes workers
  std::atomic<bool> stop_{false};
};

}  // namespace p2p::crypto

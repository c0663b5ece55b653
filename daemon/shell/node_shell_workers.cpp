// NodeShell, part four: sealing and opening on worker threads (crypto/crypto_workers.hpp).
// The Node decides everything in order on the loop thread; the workers only run the
// ChaCha20-Poly1305 of a batch's packets in place in the batch's pool, and the loop waits for
// them before the batch's datagrams leave (seal) or before the Node reads them (open).
#include "daemon/shell/node_shell.hpp"

namespace p2p::daemon {

void NodeShell::open_workers(const config::MeshConfig& config) {
  const std::size_t n =
      config.performance.workers ? *config.performance.workers : crypto::CryptoWorkers::automatic();
  if (n > 0) workers_ = std::make_unique<crypto::CryptoWorkers>(n);
  log_.node->info("workers={}", workers_ ? workers_->threads() : 0);
}

crypto::CryptoJobs* NodeShell::crypto_jobs() {
  return workers_ && batch_pool_ ? &crypto_jobs_ : nullptr;
}

void NodeShell::begin_batch(io::PacketPool& pool) {
  batch_pool_ = &pool;
  if (workers_) crypto_jobs_.set_region({pool.buffer(0), pool.size() * io::PacketPool::kStride});
}

void NodeShell::run_crypto() {
  auto pending = crypto_jobs_.pending();
  if (pending.empty()) return;
  workers_->run(pending);
  crypto_jobs_.mark_run();
}

void NodeShell::end_batch() {
  if (workers_) {
    run_crypto();
    crypto_jobs_.clear();
    crypto_jobs_.set_region({});
  }
  batch_pool_ = nullptr;
}

void NodeShell::before_queue(io::UdpSocket::Hold hold) {
  // UdpSocket::queue() flushes when it is full (of messages, or of arena for a copy): the
  // datagrams queued so far must be sealed by then.
  if (!workers_ || crypto_jobs_.pending().empty()) return;
  if (hold == io::UdpSocket::Hold::kCopy || udp_.queued() + 1 >= io::UdpSocket::kQueueMessages)
    run_crypto();
}

}  // namespace p2p::daemon

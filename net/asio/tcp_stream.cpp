#include "net/asio/tcp_stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

namespace p2p::io {

namespace asio = boost::asio;
using asio::ip::tcp;

tcp::endpoint to_tcp(const Endpoint& e) {
  if (const auto* v4 = std::get_if<Ipv4>(&e.address)) {
    return {asio::ip::address_v4(v4->value), e.port};
  }
  asio::ip::address_v6::bytes_type bytes;
  const auto& v6 = std::get<Ipv6>(e.address);
  std::copy(v6.bytes.begin(), v6.bytes.end(), bytes.begin());
  return {asio::ip::address_v6(bytes), e.port};
}

Endpoint from_tcp(const tcp::endpoint& e) {
  auto a = e.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  if (a.is_v4()) return Endpoint{Ipv4{a.to_v4().to_uint()}, e.port()};
  Ipv6 v6;
  const auto bytes = a.to_v6().to_bytes();
  std::copy(bytes.begin(), bytes.end(), v6.bytes.begin());
  return Endpoint{v6, e.port()};
}

namespace {

// Opens `s` for local's family with SO_REUSEADDR and SO_REUSEPORT and binds it.
template <class Socket>
boost::system::error_code open_reusable(Socket& s, const Endpoint& local) {
  boost::system::error_code ec;
  const auto ep = to_tcp(local);
  s.open(ep.protocol(), ec);
  if (!ec) s.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) {
    int one = 1;
    if (::setsockopt(s.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      ec.assign(errno, boost::system::system_category());
    }
  }
  if (!ec) s.bind(ep, ec);
  return ec;
}

IoError io_error(const std::string& what, const boost::system::error_code& ec) {
  return IoError{ec.value(), what + ": " + ec.message()};
}

}  // namespace

Expected<tcp::socket, IoError> bind_tcp(asio::io_context& io, const Endpoint& local) {
  tcp::socket s(io);
  if (auto ec = open_reusable(s, local)) return fail(io_error("tcp bind " + local.to_string(), ec));
  return s;
}

Expected<tcp::acceptor, IoError> listen_tcp(asio::io_context& io, const Endpoint& local,
                                            int backlog) {
  tcp::acceptor a(io);
  auto ec = open_reusable(a, local);
  if (!ec) a.listen(backlog, ec);
  if (ec) return fail(io_error("tcp listen " + local.to_string(), ec));
  return a;
}

void connect_tcp(tcp::socket socket, const Endpoint& remote, std::chrono::milliseconds timeout,
                 ConnectDone done) {
  struct Attempt {
    Attempt(tcp::socket s, ConnectDone d)
        : socket(std::move(s)), timer(socket.get_executor()), done(std::move(d)) {}
    tcp::socket socket;
    asio::steady_timer timer;
    ConnectDone done;
    bool timed_out = false;
  };
  auto a = std::make_shared<Attempt>(std::move(socket), std::move(done));
  const auto where = "tcp connect " + remote.to_string();
  a->timer.expires_after(timeout);
  a->timer.async_wait([a](const boost::system::error_code& ec) {
    if (ec) return;
    a->timed_out = true;
    boost::system::error_code ignored;
    a->socket.close(ignored);  // the connect completes with operation_aborted
  });
  a->socket.async_connect(to_tcp(remote), [a, where](const boost::system::error_code& ec) {
    a->timer.cancel();
    auto done = std::move(a->done);
    if (a->timed_out) {
      done(fail(IoError{ETIMEDOUT, where + ": no answer"}));
    } else if (ec) {
      done(fail(io_error(where, ec)));
    } else {
      done(std::move(a->socket));
    }
  });
}

std::shared_ptr<TcpStream> TcpStream::open(tcp::socket socket, const TcpStreamOptions& options) {
  return std::make_shared<TcpStream>(std::move(socket), options);
}

TcpStream::TcpStream(tcp::socket socket, const TcpStreamOptions& options)
    : socket_(std::move(socket)),
      options_(options),
      decoder_(options.max_frame),
      in_(std::max<std::size_t>(options.read_chunk, 512)) {
  options_.max_queue_frames = std::max<std::size_t>(options_.max_queue_frames, 1);
  options_.max_queue_bytes =
      std::max(options_.max_queue_bytes, decoder_.max_frame() + wire::kFrameHeaderSize);
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  if (options_.notsent_lowat > 0) {
    ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &options_.notsent_lowat,
                 sizeof options_.notsent_lowat);
  }
  local_ = from_tcp(socket_.local_endpoint(ec));
  remote_ = from_tcp(socket_.remote_endpoint(ec));
  gather_.reserve(kWriteBatch * 2);
}

void TcpStream::start(OnFrame on_frame, OnClosed on_closed) {
  on_frame_ = std::move(on_frame);
  on_closed_ = std::move(on_closed);
  if (!closed_) read();
}

bool TcpStream::send(std::span<const std::uint8_t> datagram) {
  if (closed_ || datagram.size() > options_.max_frame) {
    ++stats_.send_refused;
    return false;
  }
  const auto size = datagram.size() + wire::kFrameHeaderSize;
  // Drop the oldest frames not yet being written until this one fits.
  while (queue_.size() > writing_ && (queue_.size() >= options_.max_queue_frames ||
                                      queued_bytes_ + size > options_.max_queue_bytes)) {
    auto oldest = queue_.begin() + static_cast<std::ptrdiff_t>(writing_);
    queued_bytes_ -= oldest->size();
    oldest->clear();
    spare_.push_back(std::move(*oldest));
    queue_.erase(oldest);
    ++stats_.send_dropped;
  }
  std::vector<std::uint8_t> frame;
  if (!spare_.empty()) {
    frame = std::move(spare_.back());
    spare_.pop_back();
  }
  const auto header = wire::frame_header(datagram.size());
  frame.insert(frame.end(), header.begin(), header.end());
  frame.insert(frame.end(), datagram.begin(), datagram.end());
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  if (writing_ == 0) write();
  return true;
}

void TcpStream::write() {
  gather_.clear();
  writing_ = std::min(queue_.size(), kWriteBatch);
  for (std::size_t i = 0; i < writing_; ++i) gather_.push_back(asio::buffer(queue_[i]));
  asio::async_write(
      socket_, gather_,
      [self = shared_from_this(), frames = writing_](
          const boost::system::error_code& ec, std::size_t) { self->on_written(ec, frames); });
}

void TcpStream::on_written(const boost::system::error_code& ec, std::size_t frames) {
  if (closed_) return;
  if (ec) {
    end(io_error("tcp send to " + remote_.to_string(), ec));
    return;
  }
  for (std::size_t i = 0; i < frames; ++i) {
    auto& f = queue_.front();
    queued_bytes_ -= f.size();
    stats_.bytes_sent += f.size();
    f.clear();
    if (spare_.size() < options_.max_queue_frames) spare_.push_back(std::move(f));
    queue_.pop_front();
  }
  stats_.frames_sent += frames;
  writing_ = 0;
  if (!queue_.empty()) write();
}

void TcpStream::read() {
  reading_ = true;
  socket_.async_read_some(asio::buffer(in_),
                          [self = shared_from_this()](const boost::system::error_code& ec,
                                                      std::size_t n) { self->on_read(ec, n); });
}

// reading_ stays true until the loop ends here, so that a close() from inside on_frame_ leaves
// the callbacks to be released once it has returned.
void TcpStream::on_read(const boost::system::error_code& ec, std::size_t n) {
  if (!closed_ && ec) {
    end(ec == asio::error::eof ? IoError{0, "tcp connection closed by " + remote_.to_string()}
                               : io_error("tcp receive from " + remote_.to_string(), ec));
  }
  if (!closed_) {
    stats_.bytes_received += n;
    std::span<const std::uint8_t> in(in_.data(), n);
    while (!in.empty() && !closed_) {
      in = in.subspan(decoder_.consume(in));
      if (decoder_.failed()) {
        end(IoError{EPROTO, "tcp stream from " + remote_.to_string() + ": frame over " +
                                std::to_string(decoder_.max_frame()) + " bytes"});
      } else if (decoder_.has_frame()) {
        ++stats_.frames_received;
        on_frame_(decoder_.frame());
      }
    }
  }
  if (closed_) {
    reading_ = false;
    release_callbacks();
    return;
  }
  read();
}

void TcpStream::end(const IoError& why) {
  auto on_closed = std::move(on_closed_);
  close();
  if (on_closed) on_closed(why);
}

void TcpStream::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  if (!reading_) release_callbacks();
}

void TcpStream::release_callbacks() {
  on_frame_ = nullptr;
  on_closed_ = nullptr;
}

}  // namespace p2p::io

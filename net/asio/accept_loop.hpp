// The accept loop both socket servers share (the control socket, the metrics responder).
#pragma once

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <boost/asio/error.hpp>
#include <memory>

namespace p2p::io {

// Accepts on state->acceptor until the state is gone or closed (state->closed): each accepted
// socket goes to state->on_accepted(socket), which keeps or refuses it; an accept error other
// than cancellation is skipped. The loop holds only a weak reference to the state.
template <class State>
void accept_loop(const std::weak_ptr<State>& weak) {
  auto state = weak.lock();
  if (!state) return;
  state->acceptor.async_accept([weak](const boost::system::error_code& ec, auto socket) {
    auto self = weak.lock();
    if (!self || self->closed || ec == boost::asio::error::operation_aborted) return;
    if (!ec) self->on_accepted(std::move(socket));
    accept_loop(weak);
  });
}

// Stops accepting and closes every connection in state.connections (each close() erases
// itself, hence the move); false when the state was closed already.
template <class State>
bool close_server(State& state) {
  if (state.closed) return false;
  state.closed = true;
  boost::system::error_code ignored;
  state.acceptor.close(ignored);
  auto all = std::move(state.connections);
  state.connections.clear();
  for (const auto& c : all) c->close();
  return true;
}

}  // namespace p2p::io

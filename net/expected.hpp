// Expected<T, E>: a value or an error, for data paths that must not throw (C++20 has no
// std::expected, and GCC 12 only offers it under C++23). Deliberately small: construct from a
// T or from p2p::fail(E), test with has_value()/operator bool, read with value()/error().
// Reading the wrong alternative is a programming error and aborts through std::get.
#pragma once

#include <type_traits>
#include <utility>
#include <variant>

namespace p2p {

template <class E>
struct Failure {
  E error;
};

template <class E>
Failure<std::decay_t<E>> fail(E&& e) {
  return {std::forward<E>(e)};
}

template <class T, class E>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  template <class G>
    requires std::is_constructible_v<E, G>
  Expected(Failure<G> f) : v_(std::in_place_index<1>, E(std::move(f.error))) {}

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const E& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

// Expected<void, E>: success or an error.
template <class E>
class [[nodiscard]] Expected<void, E> {
 public:
  Expected() = default;
  template <class G>
    requires std::is_constructible_v<E, G>
  Expected(Failure<G> f) : err_(E(std::move(f.error))), ok_(false) {}

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const E& error() const { return err_; }

 private:
  E err_{};
  bool ok_ = true;
};

}  // namespace p2p

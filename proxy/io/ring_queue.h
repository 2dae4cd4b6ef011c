// A FIFO queue on one growable array. std::deque allocates and frees a block every few
// hundred bytes of push/pop traffic; this keeps its capacity, so a queue filled and
// drained for every message (a server's expected replies, a pool's waiters) allocates
// nothing once warm.
#pragma once

#include "proxy/io/layer.h"

#include <cstddef>
#include <utility>
#include <vector>

namespace pgsidecar::proxy {

template <typename T>
class RingQueue {
 public:
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  T& front() { return slots_[head_]; }
  const T& front() const { return slots_[head_]; }

  void push_back(T value) {
    if (size_ == slots_.size()) grow();
    slots_[index(size_)] = std::move(value);
    ++size_;
  }
  void pop_front() {
    slots_[head_] = T{};  // let go of what the entry owns now, not when the slot is reused
    head_ = index(1);
    --size_;
  }
  void clear() {
    while (!empty()) pop_front();
  }
  // Removes the first element for which pred is true, keeping the others' order.
  template <typename Pred>
  bool erase_first(Pred pred) {
    for (std::size_t i = 0; i < size_; ++i) {
      if (!pred(slots_[index(i)])) continue;
      for (std::size_t j = i; j + 1 < size_; ++j) slots_[index(j)] = std::move(slots_[index(j + 1)]);
      slots_[index(size_ - 1)] = T{};
      --size_;
      return true;
    }
    return false;
  }

 private:
  std::size_t index(std::size_t i) const { return (head_ + i) & (slots_.size() - 1); }
  void grow() {
    std::vector<T> bigger(slots_.empty() ? 8 : slots_.size() * 2);  // a power of two
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move(slots_[index(i)]);
    slots_ = std::move(bigger);
    head_ = 0;
  }

  std::vector<T> slots_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace pgsidecar::proxy

// What a server still owes, in order: one ParseComplete per Parse, one CloseComplete per
// Close, one ReadyForQuery per Sync/Query/FunctionCall. Entries for messages pgsidecar
// injected are marked `swallow`, so the client never sees replies to what it did not send.
// After an ErrorResponse in an extended-protocol exchange the server skips to the next
// Sync, so the Parse/Close entries before the next ReadyForQuery are dropped, and their
// statements reported: the books must not believe a skipped Parse or Close happened.
#pragma once

#include "proxy/pooling/layer.h"

#include <cstddef>
#include <string>

#include "proxy/io/ring_queue.h"

namespace pgsidecar::proxy {

class ResponseExpectations {
 public:
  struct Entry {
    char reply;       // '1' ParseComplete, '3' CloseComplete, 'Z' ReadyForQuery
    bool swallow;     // injected by pgsidecar: drop the reply (for 'Z': everything up to it)
    std::string statement;  // the statement a Parse ('1') makes or a Close ('3') frees; "" for
                            // the unnamed one and for portals
  };

  void expect(char reply, bool swallow, std::string statement = {});
  // The oldest entry, or nullptr.
  const Entry* front() const { return entries_.empty() ? nullptr : &entries_.front(); }
  Entry pop();
  // An ErrorResponse arrived: drops '1'/'3' entries up to the next 'Z' (the server skips
  // those messages) and calls on_skipped(entry) for each: a Parse whose statement will not
  // exist, a Close whose statement still does.
  template <typename F>
  void on_error(F&& on_skipped) {
    while (!entries_.empty() && entries_.front().reply != 'Z') {
      on_skipped(entries_.front());
      pop();
    }
  }
  // A ReadyForQuery arrived: pops its 'Z' entry. Parse/Close entries still ahead of it
  // were skipped by the server (they followed an error before the Sync) and are dropped
  // too, with on_skipped(entry) as for on_error. Returns the popped 'Z' entry's swallow
  // flag (false when none was expected).
  template <typename F>
  bool on_ready(F&& on_skipped) {
    on_error(on_skipped);
    if (entries_.empty()) return false;
    return pop().swallow;
  }
  // True while the oldest outstanding reply belongs to injected SQL.
  bool swallowing() const { return !entries_.empty() && entries_.front().reply == 'Z' && entries_.front().swallow; }
  std::size_t pending_ready() const { return pending_ready_; }
  bool empty() const { return entries_.empty(); }
  void clear() {
    entries_.clear();
    pending_ready_ = 0;
  }

 private:
  RingQueue<Entry> entries_;
  std::size_t pending_ready_ = 0;
};

}  // namespace pgsidecar::proxy

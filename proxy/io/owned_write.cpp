#include "proxy/io/owned_write.h"

#include <memory>

namespace pgsidecar::proxy {
namespace {

struct OwnedWrite {
  uv_write_t req{};
  std::vector<std::byte> bytes;
  std::function<void(int)> done;
};

void on_written(uv_write_t* req, int status) {
  std::unique_ptr<OwnedWrite> w(static_cast<OwnedWrite*>(req->data));
  if (w->done) w->done(status);
}

}  // namespace

void write_owned(io::Sink dest, std::vector<std::byte> bytes, std::function<void(int)> done) {
  if (dest.tls != nullptr) {
    dest.tls->write_owned(std::move(bytes), std::move(done));
    return;
  }
  auto w = std::make_unique<OwnedWrite>();
  w->bytes = std::move(bytes);
  w->done = std::move(done);
  w->req.data = w.get();
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->bytes.data()), static_cast<unsigned>(w->bytes.size()));
  const int rc = uv_write(&w->req, dest.stream, &buf, 1, &on_written);
  if (rc != 0) {
    if (w->done) w->done(rc);
    return;
  }
  w.release();  // freed in on_written
}

}  // namespace pgsidecar::proxy

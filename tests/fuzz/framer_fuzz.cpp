// Frames arbitrary bytes as a connection would, checks the framer's invariants
// (whole and chunked delivery agree, frames stay inside the input, peek_header agrees
// with next_frame), and runs every frontend and backend parser on each frame. A
// parser that accepts a body must describe it exactly: rebuilding the message from
// what it returned gives back the same bytes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/backend.h"
#include "protocol/frontend.h"
#include "protocol/framer.h"
#include "protocol/messages.h"
#include "protocol/wire.h"

using namespace pgsidecar::protocol;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

struct Framed {
  char tag;
  std::vector<std::byte> body;
  bool operator==(const Framed&) const = default;
};

// The typed message these bytes were framed from: Byte1(tag) Int32(len) body.
std::vector<std::byte> wire_of(char t, std::span<const std::byte> body) {
  std::vector<std::byte> out;
  const std::size_t at = begin_message(out, t);
  put_bytes(out, body);
  end_message(out, at);
  return out;
}

void check_rebuild(const std::vector<std::byte>& rebuilt, char t, std::span<const std::byte> body) {
  check(rebuilt == wire_of(t, body));
}

void fuzz_frontend(char t, std::span<const std::byte> body) {
  std::vector<std::byte> out;
  ParseMessage p;
  if (parse_parse(body, p)) {
    std::vector<int32_t> oids;
    Reader r(p.param_types_raw);
    for (int32_t oid = 0; r.read_i32(oid);) oids.push_back(oid);
    check(oids.size() == static_cast<std::size_t>(p.param_count));
    append_parse(out, p.name, p.query, oids);
    check_rebuild(out, 'P', body);
    out.clear();
  }
  std::string_view a, b;
  if (peek_bind_names(body, body.size(), a, b) == PeekStatus::Ok) {
    // Every prefix must agree: the proxy calls this on partial bodies.
    for (std::size_t n = 0; n <= body.size(); n += 1 + n / 4) {
      std::string_view pa, pb;
      const PeekStatus s = peek_bind_names(body.first(n), body.size(), pa, pb);
      check(s != PeekStatus::Invalid);
      if (s == PeekStatus::Ok) check(pa == a && pb == b);
    }
  } else {
    check(peek_bind_names(body, body.size(), a, b) == PeekStatus::Invalid);
  }
  char kind = 0;
  if (parse_describe(body, kind, a)) {
    append_describe(out, kind, a);
    check_rebuild(out, 'D', body);
    out.clear();
  }
  if (parse_close(body, kind, a)) {
    append_close(out, kind, a);
    check_rebuild(out, 'C', body);
    out.clear();
  }
  int32_t rows = 0;
  if (parse_execute(body, a, rows)) {
    append_execute(out, a, rows);
    check_rebuild(out, 'E', body);
    out.clear();
  }
  if (parse_query(body, a)) {
    append_query(out, a);
    check_rebuild(out, 'Q', body);
    out.clear();
  }
  if (parse_password_message(body, a)) {
    append_password_message(out, a);
    check_rebuild(out, 'p', body);
    out.clear();
  }
  std::span<const std::byte> data;
  if (parse_sasl_initial_response(body, a, data)) {
    check(data.size() + a.size() + 5 == body.size());
  }
  check(parse_sasl_response(body, data) && data.size() == body.size());
  (void)t;
}

void fuzz_backend(char t, std::span<const std::byte> body) {
  std::vector<std::byte> out;
  ErrorFields e;
  (void)parse_error_response(body, e);
  std::string_view a, b;
  if (parse_parameter_status(body, a, b)) {
    append_parameter_status(out, a, b);
    check_rebuild(out, 'S', body);
    out.clear();
  }
  int32_t x = 0, y = 0;
  if (parse_backend_key_data(body, x, y)) {
    append_backend_key_data(out, x, y);
    check_rebuild(out, 'K', body);
    out.clear();
  }
  char status = 0;
  if (parse_ready_for_query(body, status)) {
    check(status == 'I' || status == 'T' || status == 'E');
    append_ready_for_query(out, status);
    check_rebuild(out, 'Z', body);
    out.clear();
  }
  if (parse_command_complete(body, a)) {
    append_command_complete(out, a);
    check_rebuild(out, 'C', body);
    out.clear();
  }
  AuthenticationRequest auth;
  if (parse_authentication(body, auth)) {
    check(auth.data.size() + 4 == body.size());
    std::vector<std::string_view> mechanisms;
    if (auth.code == kAuthSasl && parse_sasl_mechanisms(auth.data, mechanisms)) {
      append_authentication_sasl(out, mechanisms);
      check_rebuild(out, 'R', body);
      out.clear();
    }
  }
  std::vector<std::string_view> options;
  if (parse_negotiate_protocol_version(body, x, options)) {
    append_negotiate_protocol_version(out, x, options);
    check_rebuild(out, 'v', body);
    out.clear();
  }
  std::vector<std::string_view> names;
  (void)parse_row_description(body, names);
  std::vector<std::optional<std::string_view>> values;
  if (parse_data_row(body, values)) {
    append_data_row(out, values);
    check_rebuild(out, 'D', body);
    out.clear();
  }
  (void)t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // The first two bytes choose the maximum length and how input is chunked, so the
  // fuzzer explores both without a separate harness.
  const uint32_t max_length = 4 + static_cast<uint32_t>(data[0]) * 64;
  const std::size_t chunk = 1 + data[1] % 16;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data + 2), size - 2);

  // Whole delivery.
  std::vector<Framed> whole;
  std::size_t offset = 0;
  FrameStatus whole_status = FrameStatus::NeedMore;
  for (;;) {
    const auto rest = in.subspan(offset);
    Frame f;
    std::size_t used = 0;
    std::string error;
    FrameHeader h;
    const FrameStatus peeked = peek_header(rest, h, max_length);
    whole_status = next_frame(rest, f, used, max_length, &error);
    if (whole_status == FrameStatus::Invalid) {
      check(peeked == FrameStatus::Invalid && !error.empty() && used == 0);
      break;
    }
    if (whole_status == FrameStatus::NeedMore) {
      check(used == 0);
      check(peeked == FrameStatus::NeedMore || (peeked == FrameStatus::Ready && h.total_size() > rest.size()));
      break;
    }
    check(peeked == FrameStatus::Ready && used == h.total_size() && used <= rest.size() && used >= 5);
    check(f.body.data() == rest.data() + 5 && f.body.size() == h.body_size() && f.tag == h.tag);
    whole.push_back({f.tag, {f.body.begin(), f.body.end()}});
    fuzz_frontend(f.tag, f.body);
    fuzz_backend(f.tag, f.body);
    offset += used;
  }

  // Chunked delivery into a connection-style buffer must give the same frames.
  std::vector<Framed> chunked;
  std::vector<std::byte> buffer;
  FrameStatus chunked_status = FrameStatus::NeedMore;
  for (std::size_t pos = 0; pos < in.size() && chunked_status != FrameStatus::Invalid; pos += chunk) {
    const auto piece = in.subspan(pos, std::min(chunk, in.size() - pos));
    buffer.insert(buffer.end(), piece.begin(), piece.end());
    for (;;) {
      Frame f;
      std::size_t used = 0;
      chunked_status = next_frame(buffer, f, used, max_length);
      if (chunked_status != FrameStatus::Ready) break;
      chunked.push_back({f.tag, {f.body.begin(), f.body.end()}});
      buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(used));
    }
  }
  check(chunked == whole);
  check(chunked_status == whole_status);
  return 0;
}

// ClientSession, part four: a client logged into the admin console (database
// `pgsidecar`) sends simple queries that admin_console.cpp answers.
#include "protocol/framer.h"
#include "protocol/frontend.h"
#include "protocol/messages.h"
#include "protocol/sqlstate.h"
#include "protocol/tags.h"
#include "proxy/admin_console.h"
#include "proxy/client_session.h"
#include "proxy/worker.h"

namespace pgsidecar::proxy {

using protocol::FrontendTag;
using protocol::tag;
namespace sqlstate = protocol::sqlstate;

namespace {
constexpr uint32_t kMaxAdminMessage = 1u << 20;
}  // namespace

bool ClientSession::process_admin_messages() {
  while (!closing_ && !admin_busy_) {
    protocol::Frame frame;
    std::size_t used = 0;
    std::string error;
    const auto status = protocol::next_frame(input_.unread(), frame, used, kMaxAdminMessage, &error);
    if (status == protocol::FrameStatus::NeedMore) {
      reserve_whole_message(kMaxAdminMessage);
      return true;
    }
    if (status == protocol::FrameStatus::Invalid) {
      protocol_error(error);
      return false;
    }
    input_.consume(used);
    if (frame.tag == tag(FrontendTag::Terminate)) {
      close("client sent Terminate");
      return false;
    }
    std::string_view sql;
    if (frame.tag != tag(FrontendTag::Query) || !protocol::parse_query(frame.body, sql)) {
      send_error(protocol::make_fatal(sqlstate::kFeatureNotSupported,
                                      "the admin console accepts only simple queries"),
                 false);
      return false;
    }
    std::vector<std::byte> out;
    const SessionId id = id_;
    Worker* worker = &worker_;
    const bool done = run_admin_command(worker_, sql, out, [worker, id](std::vector<std::byte> reply) {
      ClientSession* self = worker->find_session(id);
      if (self == nullptr || self->closing_) return;
      protocol::append_ready_for_query(reply, 'I');
      self->send_own(std::move(reply));
      self->admin_busy_ = false;
      self->process_input();
    });
    if (!done) {
      admin_busy_ = true;  // the reply comes later; further commands wait
      return true;
    }
    protocol::append_ready_for_query(out, 'I');
    send_own(std::move(out));
  }
  return !closing_;
}

}  // namespace pgsidecar::proxy

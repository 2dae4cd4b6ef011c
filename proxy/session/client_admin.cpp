// ClientSession, part four: a client logged into the admin console (database
// `pgsidecar`) sends simple queries that admin_console.cpp answers.
#include "protocol/framer.h"
#include "protocol/frontend.h"
#include "protocol/messages.h"
#include "protocol/tags.h"
#include "proxy/admin/admin_console.h"
#include "proxy/session/client_session.h"

namespace pgsidecar::proxy {

using protocol::FrontendTag;
using protocol::tag;

namespace {
constexpr uint32_t kMaxAdminMessage = 1u << 20;
}  // namespace

ClientSession::Pass ClientSession::process_admin_messages() {
  while (phase_ == ClientPhase::Admin) {
    protocol::Frame frame;
    std::size_t used = 0;
    std::string error;
    const auto status = protocol::next_frame(input_.unread(), frame, used, kMaxAdminMessage, &error);
    if (status == protocol::FrameStatus::NeedMore) {
      reserve_whole_message(kMaxAdminMessage);
      return Pass::Stop;
    }
    if (status == protocol::FrameStatus::Invalid) {
      protocol_error(error);
      return Pass::Stop;
    }
    input_.consume(used);
    if (frame.tag == tag(FrontendTag::Terminate)) {
      close("client sent Terminate");
      return Pass::Stop;
    }
    std::string_view sql;
    if (frame.tag != tag(FrontendTag::Query) || !protocol::parse_query(frame.body, sql)) {
      send_error(make_error(ProxyErrc::AdminSimpleQueriesOnly), false);
      return Pass::Stop;
    }
    std::vector<std::byte> out;
    const SessionId id = id_;
    SessionHost* host = &host_;
    AdminContext context{host_.runtime(), host_.admin(), *config_, host_.topology(), host_.loop()};
    const bool done = run_admin_command(context, sql, out, [host, id](std::vector<std::byte> reply) {
      ClientSession* self = host->find_session(id);
      if (self == nullptr || self->phase_ != ClientPhase::AdminBusy) return;
      protocol::append_ready_for_query(reply, 'I');
      self->send_own(std::move(reply));
      self->set_phase(ClientPhase::Admin, "admin reply sent");
      if (self->draining_) {
        self->close_for_shutdown();
        return;
      }
      self->process_input();
    });
    if (!done) {
      set_phase(ClientPhase::AdminBusy, "admin command running");
      return Pass::Stop;
    }
    protocol::append_ready_for_query(out, 'I');
    send_own(std::move(out));
  }
  return Pass::Stop;
}

}  // namespace pgsidecar::proxy

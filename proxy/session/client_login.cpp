// ClientSession, part one: startup packets and client authentication, up to the first
// ReadyForQuery. An unknown user goes through the same exchange as a known one and gets
// the same error, so neither the messages nor their timing tell which users exist.
#include "config/schema.h"
#include "protocol/framer.h"
#include "protocol/frontend.h"
#include "protocol/md5.h"
#include "protocol/messages.h"
#include "protocol/password.h"
#include "protocol/startup.h"
#include "protocol/tags.h"
#include "protocol/wire.h"
#include "proxy/admin/admin_console.h"
#include "proxy/core/log.h"
#include "proxy/session/client_session.h"
#include "proxy/session/settings_sync.h"

namespace pgsidecar::proxy {

namespace {

constexpr uint32_t kMaxStartupPacket = 10000;  // PostgreSQL's MAX_STARTUP_PACKET_LENGTH
constexpr uint32_t kMaxAuthMessage = 8192;
// The virtual database that is the admin console.
constexpr std::string_view kAdminDatabase = "pgsidecar";

config::AuthMethod method_for(const config::Config& cfg, const config::User* user) {
  if (user != nullptr && user->auth_method) return *user->auth_method;
  return cfg.auth.method;
}

}  // namespace

bool ClientSession::process_startup() {
  while (phase_ == ClientPhase::Startup || phase_ == ClientPhase::Authenticating) {
    protocol::Frame frame;
    std::size_t used = 0;
    std::string error;
    protocol::FrameStatus status;
    if (phase_ == ClientPhase::Startup) {
      status = protocol::next_startup_packet(input_.unread(), frame, used, kMaxStartupPacket, &error);
    } else {
      status = protocol::next_frame(input_.unread(), frame, used, kMaxAuthMessage, &error);
    }
    if (status == protocol::FrameStatus::NeedMore) {
      reserve_for_login_message();
      return true;
    }
    if (status == protocol::FrameStatus::Invalid) {
      fail_login(make_error(ProxyErrc::ProtocolViolation,
                            {(phase_ == ClientPhase::Startup ? "invalid startup packet: " : "invalid message: ") + error}));
      return false;
    }
    input_.consume(used);  // frame.body stays valid: nothing compacts during this pass
    const bool ok = phase_ == ClientPhase::Startup ? handle_startup_packet(frame.body)
                                                   : handle_auth_message(frame.tag, frame.body);
    if (!ok) return false;
  }
  return !closed() && phase_ != ClientPhase::Failing;
}

void ClientSession::reserve_for_login_message() {
  if (phase_ != ClientPhase::Startup) {
    reserve_whole_message(kMaxAuthMessage);
    return;
  }
  // Room for the whole packet once its length is known (the framer checked it against the
  // limit), or a full buffer would stop reading short of it.
  const std::span<const std::byte> in = input_.unread();
  if (in.size() >= 4) input_.reserve_unread(protocol::load_be32(in.data()), kMaxStartupPacket);
}

bool ClientSession::handle_startup_packet(std::span<const std::byte> body) {
  protocol::StartupPacket packet;
  std::string error;
  if (!protocol::parse_startup_packet(body, packet, error)) {
    fail_login(make_error(ProxyErrc::ProtocolViolation, {error}));
    return false;
  }
  switch (packet.kind) {
    case protocol::StartupKind::SSLRequest:
    case protocol::StartupKind::GSSENCRequest: {
      const bool ssl = packet.kind == protocol::StartupKind::SSLRequest;
      bool& asked = ssl ? login_->ssl_requested : login_->gss_requested;
      if (asked) {
        fail_login(make_error(ProxyErrc::ProtocolViolation,
                              {ssl ? "SSLRequest sent twice: SSL negotiation was already done on this connection"
                                   : "GSSENCRequest sent twice: GSSAPI encryption negotiation was already done "
                                     "on this connection"}));
        return false;
      }
      asked = true;
      if (ssl) return answer_ssl_request();
      // No GSS encryption: 'N' tells the client to go on in plain text.
      send_own({std::byte{'N'}});
      return true;
    }
    case protocol::StartupKind::CancelRequest: {
      // The connection stays open (reading nothing more) until the server has taken the
      // cancel, so that the client's PQcancel returns only then, as it does without us.
      if (reading_) uv_read_stop(stream_.stream);
      reading_ = false;
      set_phase(ClientPhase::Failing, "cancel request");
      io::Loop* loop = &host_.loop();
      SessionHost* host = &host_;
      const SessionId id = id_;
      host_.runtime().route_cancel(packet.cancel.process_id, packet.cancel.secret_key, [loop, host, id] {
        loop->post([host, id] {
          if (ClientSession* self = host->find_session(id)) self->close("cancel request done");
        });
      });
      return false;
    }
    case protocol::StartupKind::StartupMessage:
      break;
  }
  login_->startup = std::move(packet.startup);
  user_name_ = std::move(login_->startup.user);
  database_name_ = std::move(login_->startup.database);
  if (tls_refused_plain()) return false;
  if (login_->admin_only_limit > 0 && !(database_name_ == kAdminDatabase && config_->is_admin(user_name_))) {
    reject_too_many(login_->admin_only_limit);
    return false;
  }
  if (login_->startup.minor() > 0) {
    // We speak 3.0: say so, and name the protocol options (_pq_.*) we ignore.
    std::vector<std::string_view> unknown;
    for (const auto& [k, v] : login_->startup.parameters)
      if (k.rfind("_pq_.", 0) == 0) unknown.push_back(k);
    std::vector<std::byte> out;
    protocol::append_negotiate_protocol_version(out, 0, unknown);
    send_own(std::move(out));
  }
  begin_authentication();
  return phase_ == ClientPhase::Authenticating || phase_ == ClientPhase::Ready || phase_ == ClientPhase::Admin ||
         phase_ == ClientPhase::LoggingIn;
}

void ClientSession::begin_authentication() {
  user_ = config_->find_user(user_name_);
  login_->user_known = user_ != nullptr;
  config::AuthMethod method = method_for(*config_, user_);
  const protocol::PasswordKind stored =
      user_ != nullptr ? protocol::password_kind(user_->password) : protocol::PasswordKind::Plain;
  // md5 needs the password or its md5 hash; a SCRAM verifier answers only SCRAM (as in PostgreSQL).
  if (method == config::AuthMethod::Md5 && stored == protocol::PasswordKind::ScramVerifier)
    method = config::AuthMethod::ScramSha256;
  if (method == config::AuthMethod::ScramSha256 && stored == protocol::PasswordKind::Md5Hash)
    method = config::AuthMethod::Md5;
  set_phase(ClientPhase::Authenticating, "startup received");
  std::vector<std::byte> out;
  switch (method) {
    case config::AuthMethod::Cert:
      if (!check_client_certificate()) return;
      authentication_succeeded();
      return;
    case config::AuthMethod::Trust:
      if (!login_->user_known) {
        fail_login(make_error(ProxyErrc::PasswordFailed, {user_name_}));
        return;
      }
      authentication_succeeded();
      return;
    case config::AuthMethod::Md5:
      login_->method = AuthMethod::Md5;
      random_bytes(login_->md5_salt);
      protocol::append_authentication_md5_password(out, login_->md5_salt);
      break;
    case config::AuthMethod::ScramSha256: {
      login_->method = AuthMethod::Scram;
      Credentials& credentials = host_.resources().credentials;
      protocol::ScramVerifier verifier = login_->user_known
                                             ? credentials.scram_verifier_for(*user_)
                                             : protocol::mock_scram_verifier(user_name_, credentials.mock_secret());
      login_->scram = std::make_unique<protocol::ScramServer>(std::move(verifier));
      offer_sasl(out);
      break;
    }
  }
  send_own(std::move(out));
}

bool ClientSession::handle_auth_message(char t, std::span<const std::byte> body) {
  if (t != protocol::tag(protocol::FrontendTag::PasswordMessage)) {
    fail_login(make_error(ProxyErrc::ProtocolViolation, {"expected a password response during authentication"}));
    return false;
  }
  if (login_->method == AuthMethod::Md5) return handle_password(body);
  return handle_sasl(body);
}

bool ClientSession::handle_password(std::span<const std::byte> body) {
  std::string_view response;
  if (!protocol::parse_password_message(body, response)) {
    fail_login(make_error(ProxyErrc::ProtocolViolation, {"malformed password message"}));
    return false;
  }
  const bool ok =
      login_->user_known && protocol::md5_response_matches(user_->password, user_->name, login_->md5_salt, response);
  if (!ok) {
    fail_login(make_error(ProxyErrc::PasswordFailed, {user_name_}));
    return false;
  }
  authentication_succeeded();
  return phase_ != ClientPhase::Failing && !closed();
}

// SCRAM-SHA-256: SASLInitialResponse first, then one SASLResponse.
bool ClientSession::handle_sasl(std::span<const std::byte> body) {
  std::string reply, error;
  if (login_->scram == nullptr) {
    fail_login(make_error(ProxyErrc::ProtocolViolation, {"unexpected authentication message"}));
    return false;
  }
  if (!login_->scram_started) {
    std::string_view mechanism;
    std::span<const std::byte> data;
    if (!protocol::parse_sasl_initial_response(body, mechanism, data)) {
      fail_login(make_error(ProxyErrc::ProtocolViolation, {"malformed SASLInitialResponse message"}));
      return false;
    }
    if (!select_sasl(mechanism)) return false;
    if (!login_->scram->handle_client_first(protocol::as_string_view(data), reply, error)) {
      fail_login(make_error(ProxyErrc::ProtocolViolation, {"malformed SCRAM message: " + error}));
      return false;
    }
    login_->scram_started = true;
    std::vector<std::byte> out;
    protocol::append_authentication_sasl_continue(out, reply);
    send_own(std::move(out));
    return true;
  }
  std::span<const std::byte> data;
  if (!protocol::parse_sasl_response(body, data)) {
    fail_login(make_error(ProxyErrc::ProtocolViolation, {"malformed SASLResponse message"}));
    return false;
  }
  const bool ok = login_->scram->handle_client_final(protocol::as_string_view(data), reply, error);
  if (!ok && !login_->scram->proof_failed()) {
    fail_login(make_error(ProxyErrc::ProtocolViolation, {"malformed SCRAM message: " + error}));
    return false;
  }
  if (!ok || !login_->user_known) {
    fail_login(make_error(ProxyErrc::PasswordFailed, {user_name_}));
    return false;
  }
  login_->scram.reset();
  std::vector<std::byte> out;
  protocol::append_authentication_sasl_final(out, reply);
  send_own(std::move(out));
  authentication_succeeded();
  return phase_ != ClientPhase::Failing && !closed();
}

void ClientSession::authentication_succeeded() {
  std::vector<std::byte> ok;
  protocol::append_authentication_ok(ok);
  send_own(std::move(ok));
  if (database_name_ == kAdminDatabase) {
    if (!config_->is_admin(user_name_)) {
      fail_login(make_error(ProxyErrc::AdminNotAllowed, {user_name_}));
      return;
    }
    std::vector<std::byte> out;
    append_admin_parameters(out);
    protocol::append_backend_key_data(out, virtual_pid_, virtual_secret_);
    protocol::append_ready_for_query(out, 'I');
    send_own(std::move(out));
    login_.reset();
    set_phase(ClientPhase::Admin, "admin console");
    return;
  }
  database_ = config_->find_database(database_name_);
  if (database_ == nullptr) {
    fail_login(make_error(ProxyErrc::UnknownDatabase, {database_name_}));
    return;
  }
  session_mode_ = database_->pool.mode == config::PoolMode::Session;
  db_counters_ = &host_.resources().counters.databases[database_->name];
  accepted_settings_ = &host_.resources().accepted_settings[database_->name + '\0' + user_name_];
  statements_ = ClientStatements(static_cast<std::size_t>(database_->pool.max_prepared_statements),
                                 static_cast<std::size_t>(database_->pool.max_prepared_bytes_per_client));
  take_startup_settings();
  // The ParameterStatus values to report come from a server login of the pool this
  // client would use for reads; if none has logged in yet, one is borrowed to learn them.
  set_phase(ClientPhase::LoggingIn, "authenticated");
  route_and_acquire(login_intent());
}

// Startup settings: the reported ones are tracked values, the rest are session defaults.
void ClientSession::take_startup_settings() {
  ParamList defaults, reported;
  auto take = [&](const std::string& name, const std::string& value) {
    if (is_protocol_startup_parameter(name)) return;
    ParamList& list = is_tracked_parameter(name) ? reported : defaults;
    if (&list == &reported) params_.set(name, value);
    for (auto& [k, v] : list)
      if (k == name) {
        v = value;
        return;
      }
    list.emplace_back(name, value);
  };
  for (const auto& [k, v] : protocol::parse_options_switches(login_->startup.options)) take(k, v);
  for (const auto& [k, v] : login_->startup.parameters) take(k, v);
  // The reported ones are also kept apart: RESET returns to them, not to the server's.
  tracker_.set_startup(std::move(defaults), std::move(reported));
  followed_fp_ = tracker_.fingerprint();
}

void ClientSession::finish_login(const ParamMap& server_params) {
  std::vector<std::byte> out;
  ParamMap merged = server_params;
  for (const auto& [k, v] : params_.entries()) merged.set(k, v);
  for (const auto& [k, v] : merged.entries()) protocol::append_parameter_status(out, k, v);
  // Keep only what later transactions compare (the settings a client can change), and
  // drop the login state with the startup packet: an idle client should cost little memory.
  params_.clear();
  for (const auto& [k, v] : merged.entries())
    if (is_tracked_parameter(k)) params_.set(k, v);
  host_.resources().param_sets.share(params_);
  startup_settings_ = params_.shared_entries();
  login_.reset();
  // What the handshake left in the TLS session's buffers (certificate, hellos) goes too.
  if (tls_ != nullptr) tls_->release_buffers(0);
  protocol::append_backend_key_data(out, virtual_pid_, virtual_secret_);
  protocol::append_ready_for_query(out, 'I');
  send_own(std::move(out));
  set_phase(ClientPhase::Ready, "logged in");
  ++db_counters_->logins;
  log_debug("client_logged_in")
      .kv("worker", host_.loop().id())
      .kv("session", static_cast<long long>(id_))
      .kv("user", user_name_)
      .kv("database", database_name_);
}

void ClientSession::fail_login(const ProxyError& why) {
  ++host_.resources().counters.login_failures[why.sqlstate];
  if (tls_ != nullptr && !tls_->established()) {
    // Mid-handshake (login_timeout) there is no channel for an ErrorResponse.
    log_info("client_login_failed")
        .kv("worker", host_.loop().id())
        .kv("session", static_cast<long long>(id_))
        .kv("error", "TLS handshake not finished: " + why.message);
    close("TLS handshake not finished");
    return;
  }
  log_info("client_login_failed")
      .kv("worker", host_.loop().id())
      .kv("session", static_cast<long long>(id_))
      .kv("user", user_name_)
      .kv("database", database_name_)
      .kv("sqlstate", why.sqlstate)
      .kv("error", why.message);
  ProxyError fatal = why;
  send_error(fatal.as_fatal(), false);
}

}  // namespace pgsidecar::proxy

#include "protocol/password.h"

#include "protocol/md5.h"
#include "protocol/scram.h"

namespace pgsidecar::protocol {

PasswordKind password_kind(std::string_view stored) {
  if (is_md5_password_hash(stored)) return PasswordKind::Md5Hash;
  if (looks_like_scram_verifier(stored)) return PasswordKind::ScramVerifier;
  return PasswordKind::Plain;
}

}  // namespace pgsidecar::protocol

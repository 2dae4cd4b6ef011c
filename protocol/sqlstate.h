#pragma once

// SQLSTATE codes we send, named after the condition as in PostgreSQL's Appendix A
// "PostgreSQL Error Codes". Call sites use these names, never literals.

#include <string_view>

namespace pgsidecar::protocol::sqlstate {

inline constexpr std::string_view kSuccessfulCompletion = "00000";
inline constexpr std::string_view kConnectionException = "08000";
inline constexpr std::string_view kSqlclientUnableToEstablishSqlconnection = "08001";
inline constexpr std::string_view kSqlserverRejectedEstablishmentOfSqlconnection = "08004";
inline constexpr std::string_view kConnectionFailure = "08006";
inline constexpr std::string_view kProtocolViolation = "08P01";
inline constexpr std::string_view kFeatureNotSupported = "0A000";
inline constexpr std::string_view kInvalidParameterValue = "22023";
inline constexpr std::string_view kReadOnlySqlTransaction = "25006";
inline constexpr std::string_view kNoActiveSqlTransaction = "25P01";
inline constexpr std::string_view kInFailedSqlTransaction = "25P02";
inline constexpr std::string_view kInvalidSqlStatementName = "26000";
inline constexpr std::string_view kInvalidAuthorizationSpecification = "28000";
inline constexpr std::string_view kInvalidPassword = "28P01";
inline constexpr std::string_view kInvalidCatalogName = "3D000";
inline constexpr std::string_view kSyntaxError = "42601";
inline constexpr std::string_view kUndefinedObject = "42704";
inline constexpr std::string_view kDuplicatePreparedStatement = "42P05";
inline constexpr std::string_view kTooManyConnections = "53300";
inline constexpr std::string_view kConfigurationLimitExceeded = "53400";
inline constexpr std::string_view kProgramLimitExceeded = "54000";
inline constexpr std::string_view kObjectNotInPrerequisiteState = "55000";
inline constexpr std::string_view kQueryCanceled = "57014";
inline constexpr std::string_view kAdminShutdown = "57P01";
inline constexpr std::string_view kCannotConnectNow = "57P03";
inline constexpr std::string_view kInternalError = "XX000";

}  // namespace pgsidecar::protocol::sqlstate

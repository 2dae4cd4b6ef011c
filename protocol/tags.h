#pragma once

// Message type bytes of protocol version 3.0, one enum per direction because the
// same byte means different things each way ('D' is Describe from a client and
// DataRow from a server). See "Message Formats" in the PostgreSQL docs.

namespace pgsidecar::protocol {

enum class FrontendTag : char {
  Bind = 'B',
  Close = 'C',
  CopyData = 'd',
  CopyDone = 'c',
  CopyFail = 'f',
  Describe = 'D',
  Execute = 'E',
  Flush = 'H',
  FunctionCall = 'F',
  Parse = 'P',
  PasswordMessage = 'p',  // also GSSResponse, SASLInitialResponse and SASLResponse
  Query = 'Q',
  Sync = 'S',
  Terminate = 'X',
};

enum class BackendTag : char {
  Authentication = 'R',
  BackendKeyData = 'K',
  BindComplete = '2',
  CloseComplete = '3',
  CommandComplete = 'C',
  CopyData = 'd',
  CopyDone = 'c',
  CopyInResponse = 'G',
  CopyOutResponse = 'H',
  CopyBothResponse = 'W',
  DataRow = 'D',
  EmptyQueryResponse = 'I',
  ErrorResponse = 'E',
  FunctionCallResponse = 'V',
  NegotiateProtocolVersion = 'v',
  NoData = 'n',
  NoticeResponse = 'N',
  NotificationResponse = 'A',
  ParameterDescription = 't',
  ParameterStatus = 'S',
  ParseComplete = '1',
  PortalSuspended = 's',
  ReadyForQuery = 'Z',
  RowDescription = 'T',
};

constexpr char tag(FrontendTag t) { return static_cast<char>(t); }
constexpr char tag(BackendTag t) { return static_cast<char>(t); }

}  // namespace pgsidecar::protocol

"""A minimal PostgreSQL protocol v3 client on a raw socket, with SCRAM-SHA-256 login.

libpq reads a whole result into memory before returning it, and its socket buffers are
not ours to size. The slow-reader test needs the opposite: a client that logs in
properly, sends a query, and then takes the reply off the socket at a pace of its own,
through a small receive buffer.
"""

import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct


class ProtocolError(Exception):
    pass


class WireClient:
    def __init__(self, host, port, user, password, database, rcvbuf=None, timeout=15.0,
                 application_name="bench", tls=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            # Before connect(), so the window the kernel advertises is small from the start.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        if tls:
            self._start_tls(host)
        self.buffer = bytearray()
        self.parameters = {}
        try:
            self._login(user, password, database, application_name)
        except BaseException:
            self.sock.close()
            raise

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _start_tls(self, host):
        # SSLRequest (F): Int32(8) Int32(80877103); the proxy answers 'S' or 'N'.
        self.sock.sendall(struct.pack("!ii", 8, 80877103))
        answer = self.sock.recv(1)
        if answer != b"S":
            raise ProtocolError(f"TLS refused: the answer to SSLRequest was {answer!r}")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False  # a benchmark: encryption cost, not verification
        context.verify_mode = ssl.CERT_NONE
        self.sock = context.wrap_socket(self.sock, server_hostname=host)

    # -- framing
    def _send(self, tag, body):
        self.sock.sendall(tag + struct.pack("!i", len(body) + 4) + body)

    def _read_message(self):
        """(tag, body) of the next backend message."""
        while True:
            if len(self.buffer) >= 5:
                length = struct.unpack_from("!i", self.buffer, 1)[0]
                if length < 4 or length > 1 << 30:
                    raise ProtocolError(f"bad message length {length}")
                if len(self.buffer) >= 1 + length:
                    tag = bytes(self.buffer[:1])
                    body = bytes(self.buffer[5:1 + length])
                    del self.buffer[:1 + length]
                    return tag, body
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolError("server closed the connection")
            self.buffer += chunk

    @staticmethod
    def _error_text(body):
        fields = {}
        for part in body.split(b"\0"):
            if part:
                fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
        return f"{fields.get('S', 'ERROR')} {fields.get('C', '?')}: {fields.get('M', '')}"

    # -- login
    def _login(self, user, password, database, application_name):
        params = b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                          for k, v in (("user", user), ("database", database),
                                       ("application_name", application_name)))
        body = struct.pack("!i", 196608) + params + b"\0"
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        scram = None
        while True:
            tag, body = self._read_message()
            if tag == b"E":
                raise ProtocolError(self._error_text(body))
            if tag == b"R":
                code = struct.unpack_from("!i", body)[0]
                if code == 0:  # AuthenticationOk
                    continue
                if code == 10:  # AuthenticationSASL: mechanism names
                    mechanisms = body[4:].split(b"\0")
                    if b"SCRAM-SHA-256" not in mechanisms:
                        raise ProtocolError(f"no SCRAM-SHA-256 among {mechanisms}")
                    scram = _Scram(password)
                    first = scram.client_first()
                    self._send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first)
                elif code == 11:  # AuthenticationSASLContinue
                    self._send(b"p", scram.client_final(body[4:]))
                elif code == 12:  # AuthenticationSASLFinal
                    scram.verify_server(body[4:])
                elif code == 3:  # AuthenticationCleartextPassword
                    self._send(b"p", password.encode() + b"\0")
                elif code == 5:  # AuthenticationMD5Password
                    inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                    self._send(b"p", b"md5" + outer.encode() + b"\0")
                else:
                    raise ProtocolError(f"unsupported authentication request {code}")
            elif tag == b"S":
                name, value = body.rstrip(b"\0").split(b"\0", 1)
                self.parameters[name.decode()] = value.decode()
            elif tag == b"Z":
                return
            # BackendKeyData, NoticeResponse: nothing to do

    # -- queries
    def send_query(self, sql):
        self._send(b"Q", sql.encode() + b"\0")

    def simple_query(self, sql):
        """Runs sql and returns the first column of each row (bytes or None)."""
        self.send_query(sql)
        rows, error = [], None
        while True:
            tag, body = self._read_message()
            if tag == b"D":
                length = struct.unpack_from("!i", body, 2)[0]
                rows.append(None if length < 0 else body[6:6 + length])
            elif tag == b"E":
                error = self._error_text(body)
            elif tag == b"Z":
                if error:
                    raise ProtocolError(error)
                return rows


# SaltedPassword by (password, salt, iterations). A verifier's salt is fixed, so every login
# of a user gets the same salt back; deriving the key once keeps the 4096 PBKDF2 rounds out
# of the client's cost per login, which would otherwise dominate a test of thousands of
# logins on a small machine. The server side of the exchange is unchanged by this.
_salted_passwords = {}


class _Scram:
    """The client side of SCRAM-SHA-256 (RFC 5802/7677) without channel binding."""

    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"
        self.server_signature = None

    def client_first(self):
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first):
        text = server_first.decode()
        attrs = dict(part.split("=", 1) for part in text.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise ProtocolError("server nonce does not extend ours")
        key = (self.password, attrs["s"], int(attrs["i"]))
        salted = _salted_passwords.get(key)
        if salted is None:
            salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]),
                                         int(attrs["i"]))
            _salted_passwords[key] = salted
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored_key = hashlib.sha256(client_key).digest()
        final_bare = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.first_bare},{text},{final_bare}".encode()
        signature = hmac.digest(stored_key, auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self.server_signature = hmac.digest(server_key, auth_message, "sha256")
        return f"{final_bare},p={base64.b64encode(proof).decode()}".encode()

    def verify_server(self, server_final):
        text = server_final.decode()
        if not text.startswith("v="):
            raise ProtocolError(f"SCRAM server-final: {text}")
        if not hmac.compare_digest(base64.b64decode(text[2:]), self.server_signature):
            raise ProtocolError("SCRAM server signature does not match")

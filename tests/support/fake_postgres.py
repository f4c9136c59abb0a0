"""A tiny server speaking just enough of the PostgreSQL wire protocol to refuse a password.

The local test server uses trust authentication, so a real "password authentication failed" can't
be provoked there; this peer sends the genuine error (SQLSTATE 28P01) that a server with password
auth sends, and asyncpg raises the same exception it would against a real one.
"""

from __future__ import annotations

import socket
import struct
import threading


def _error(fields: dict[str, str]) -> bytes:
    payload = b"".join(k.encode() + v.encode() + b"\0" for k, v in fields.items()) + b"\0"
    return b"E" + struct.pack("!I", len(payload) + 4) + payload


class PasswordRejectingServer:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stop = False

    def __enter__(self) -> PasswordRejectingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_startup(conn: socket.socket) -> bytes:
        length = struct.unpack("!I", conn.recv(4, socket.MSG_WAITALL))[0]
        return conn.recv(length - 4, socket.MSG_WAITALL)

    def _handle(self, conn: socket.socket) -> None:
        try:
            with conn:
                body = self._read_startup(conn)
                if struct.unpack("!I", body[:4])[0] == 80877103:  # SSLRequest
                    conn.sendall(b"N")
                    body = self._read_startup(conn)
                conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
                conn.recv(4096)  # the PasswordMessage
                conn.sendall(
                    _error(
                        {
                            "S": "FATAL",
                            "V": "FATAL",
                            "C": "28P01",
                            "M": 'password authentication failed for user "ai_cs"',
                        }
                    )
                )
        except OSError:
            return

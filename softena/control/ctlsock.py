"""The control socket: /run/softena/<dev>.sock, one JSON request per connection.

Root only: the socket file is 0600 and every peer's credentials are checked,
since a request can reconfigure or stop the device.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
from typing import Any, Callable

from softena.control.state import RUN_DIR, socket_path
from softena.errors import SoftenaError

Handler = Callable[[dict], Any]
_MAX_REQUEST = 1 << 20


class ControlServer(threading.Thread):
    """Serves requests {"cmd": NAME, ...} with HANDLERS[NAME](request)."""

    def __init__(self, dev: str, handlers: dict[str, Handler]) -> None:
        super().__init__(name=f"softena/{dev}-ctl", daemon=True)
        self.path = socket_path(dev)
        self.handlers = handlers
        os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        try:
            self.sock.bind(self.path)
        finally:
            os.umask(old)
        self.sock.listen(8)
        self._closing = False

    def run(self) -> None:
        while not self._closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                break
            with conn:
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        if uid != 0:
            reply = {"error": "permission denied: root only"}
        else:
            try:
                request = json.loads(_recv_all(conn))
                handler = self.handlers.get(request.get("cmd"))
                if handler is None:
                    reply = {"error": f"unknown command {request.get('cmd')!r}"}
                else:
                    reply = {"result": handler(request)}
            except SoftenaError as exc:
                reply = {"error": str(exc)}
            except (ValueError, AttributeError) as exc:
                reply = {"error": f"malformed request: {exc}"}
        try:
            conn.sendall(json.dumps(reply).encode())
        except OSError:
            pass

    def close(self) -> None:
        """Stop accepting and remove the socket file."""
        self._closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _recv_all(conn: socket.socket) -> bytes:
    chunks, size = [], 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > _MAX_REQUEST:
            raise ValueError("request too large")


def request(dev: str, cmd: str, timeout: float = 10.0, **args: Any) -> Any:
    """Send one request to DEV's daemon and return its result."""
    path = socket_path(dev)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(json.dumps({"cmd": cmd, **args}).encode())
            s.shutdown(socket.SHUT_WR)
            reply = json.loads(_recv_all(s))
    except FileNotFoundError as exc:
        raise SoftenaError(f"{dev}: no such device (is it up?)") from exc
    except (OSError, ValueError) as exc:
        raise SoftenaError(f"{dev}: control socket: {exc}") from exc
    if "error" in reply:
        raise SoftenaError(reply["error"])  # the device names itself
    return reply["result"]

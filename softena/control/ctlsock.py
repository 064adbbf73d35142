"""The control socket: /run/softena/<dev>.sock, one JSON request per connection.

Who may send what is softena.control.access's to say: root and holders of
CAP_NET_ADMIN everything, the device's read group (if it has one) the
commands that only read; every peer's credentials are checked.

Every request gets a reply, and no request can stop the next one:

- each connection is served by a short-lived thread of its own, at most
  MAX_CLIENTS at once (past that, a "busy" error reply), and must deliver its
  request, at most MAX_REQUEST bytes, within RECV_TIMEOUT seconds, so a
  silent, slow or endless client holds up nobody; a reply the client does not
  read is given up after RECV_TIMEOUT seconds too;
- requests are checked against their command's fields before a handler sees
  them: a wrong type or value is refused with a one-line error;
- commands that change the device run one at a time under one lock; reads
  (status, stats, ethtool gets, fault-list) never wait behind a change;
- anything a handler raises is answered with an error, and what was not a
  SoftenaError is logged with its traceback as the bug it is.
"""

from __future__ import annotations

import errno
import json
import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from softena.control import access
from softena.control.state import RUN_DIR, socket_path
from softena.errors import SoftenaError
from softena.log import log, log_exception
from softena.threads import NamedThread

Handler = Callable[[dict], Any]
# What is wrong with a field's value, or None when it is fine.
Check = Callable[[Any], "str | None"]

MAX_REQUEST = 64 << 10  # the largest real request (ethtool -X with a full table) is under 2 KiB
MAX_REPLY = 64 << 20
MAX_CLIENTS = 32
BACKLOG = 256
RECV_TIMEOUT = 2.0
CHANGE_WAIT = 10.0  # a change waits this long for the one before it, then is refused as busy
# accept() failures that pass: the process is short of descriptors or memory for a while.
_TRANSIENT = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED, errno.EINTR)


# ---- request fields --------------------------------------------------------------


def one_of(names: Iterable[str]) -> Check:
    names = tuple(names)
    return lambda v: None if isinstance(v, str) and v in names else f"one of {', '.join(names)}"


def integer(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) else "an integer"


def positive(v: Any) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
    return None if ok else "a positive number"


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def text(v: Any) -> str | None:
    return None if isinstance(v, str) else "a string"


def json_object(v: Any) -> str | None:
    return None if isinstance(v, dict) else "a JSON object"


def nullable(check: Check) -> Check:
    def checked(v: Any) -> str | None:
        complaint = None if v is None else check(v)
        return None if complaint is None else f"{complaint} or null"
    return checked


@dataclass(frozen=True)
class Field:
    check: Check
    required: bool = False


@dataclass(frozen=True)
class Command:
    """One request the server answers: its handler, its fields, and whether it only reads.

    READ_ONLY is a bool, or a function of the (checked) request for commands
    whose operations are part reads, part changes.
    """

    handler: Handler
    fields: dict[str, Field] = field(default_factory=dict)
    read_only: bool | Callable[[dict], bool] = False

    def reads(self, request: dict) -> bool:
        return self.read_only(request) if callable(self.read_only) else self.read_only


class BadRequest(SoftenaError):
    """A request the server refuses before any handler sees it."""


# ---- the server ------------------------------------------------------------------


class ControlServer:
    """Serves requests {"cmd": NAME, ...} with COMMANDS[NAME]; see the module's docstring.

    The accept loop runs in the thread softena/<dev>-ctl; start() starts it,
    and may be called again to replace one that died (LastResort does).
    """

    def __init__(self, dev: str, commands: dict[str, Command], read_gid: int | None = None) -> None:
        self.dev = dev
        self.read_gid = read_gid
        self.path = socket_path(dev)
        self.commands = commands
        self.thread_name = f"softena/{dev}-ctl"
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._changes = threading.Lock()
        self._closing = False
        self._thread: threading.Thread | None = None
        os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        try:
            self.sock.bind(self.path)
        finally:
            os.umask(old)
        access.hand_to_group(self.path, read_gid, 0o660)
        # The backlog only holds connections until the accept loop takes them (and refuses
        # those past MAX_CLIENTS as busy): a small one made a burst of clients fail to
        # connect at all (EAGAIN) instead of getting an answer.
        self.sock.listen(BACKLOG)

    def start(self) -> None:
        self._thread = NamedThread(target=self._accept_loop, name=self.thread_name)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                conn, _ = self.sock.accept()
            except OSError as exc:
                if self._closing:
                    return
                if exc.errno not in _TRANSIENT:
                    raise  # LastResort restarts this loop
                log(self.dev, "warning", f"control socket: accept failed ({exc.strerror}); retrying")
                time.sleep(0.1)
                continue
            if not self._slots.acquire(blocking=False):
                self._refuse(conn, f"{self.dev}: busy: {MAX_CLIENTS} requests in progress, try again")
                continue
            try:
                NamedThread(target=self._serve, args=(conn,), name=f"softena/{self.dev}-req").start()
            except RuntimeError as exc:  # no thread to be had
                self._slots.release()
                self._refuse(conn, f"{self.dev}: busy: {exc}")

    def _refuse(self, conn: socket.socket, message: str) -> None:
        with conn:
            try:
                _stop_reading(conn)
                conn.settimeout(0.5)
                conn.sendall(json.dumps({"error": message}).encode())
            except OSError:
                pass

    def _serve(self, conn: socket.socket) -> None:
        """One connection, one request, one reply; nothing escapes this thread."""
        try:
            with conn:
                reply = self._answer(conn)
                try:
                    _stop_reading(conn)
                    conn.settimeout(RECV_TIMEOUT)
                    conn.sendall(reply)
                except OSError:
                    pass  # the client went away; its loss
        except BaseException as exc:
            log_exception(self.dev, "serving a request failed", exc)
        finally:
            self._slots.release()

    def _answer(self, conn: socket.socket) -> bytes:
        cmd = None
        try:
            peer = access.peer_of(conn)
            access.check(self.dev, peer, self.read_gid)
            request = self._read_request(conn)
            cmd = request.get("cmd")
            command = self._checked(request)
            access.check_command(self.dev, peer, str(cmd), command.reads(request))  # _checked: a str
            if self._closing:
                raise SoftenaError(f"{self.dev}: going down")
            return json.dumps({"result": self._run(command, request)}).encode()
        except SoftenaError as exc:
            return json.dumps({"error": str(exc)}).encode()
        except Exception as exc:
            log_exception(self.dev, f"request {_shown(cmd)} failed", exc)
            what = " ".join(f"{type(exc).__name__}: {exc}".split())
            return json.dumps({"error": f"{self.dev}: internal error: {what} (see the device log)"}).encode()

    def _read_request(self, conn: socket.socket) -> dict:
        deadline = time.monotonic() + RECV_TIMEOUT
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise socket.timeout
                conn.settimeout(remaining)
                chunk = conn.recv(65536)
            except socket.timeout:
                raise BadRequest(f"{self.dev}: no complete request within {RECV_TIMEOUT:g} s "
                                 "(send one JSON object, then shut down the write side)") from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_REQUEST:
                raise BadRequest(f"{self.dev}: request too large: over {MAX_REQUEST} bytes")
        data = b"".join(chunks)
        if not data.strip():
            raise BadRequest(f"{self.dev}: malformed request: empty")
        try:
            request = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError alike
            raise BadRequest(f"{self.dev}: malformed request: {exc}") from None
        if not isinstance(request, dict):
            raise BadRequest(f"{self.dev}: malformed request: a JSON object expected, not {type(request).__name__}")
        return request

    def _checked(self, request: dict) -> Command:
        """The command REQUEST names, once its fields are what the command takes."""
        cmd = request.get("cmd")
        command = self.commands.get(cmd) if isinstance(cmd, str) else None
        if command is None:
            raise BadRequest(f"{self.dev}: unknown command {_shown(cmd)}: one of {', '.join(self.commands)}")
        for name, value in request.items():
            if name == "cmd":
                continue
            spec = command.fields.get(name)
            if spec is None:
                raise BadRequest(f"{self.dev}: {cmd}: unknown field {_shown(name)}"
                                 + (f": {', '.join(command.fields)}" if command.fields else ""))
            complaint = spec.check(value)
            if complaint is not None:
                raise BadRequest(f"{self.dev}: {cmd}: invalid {name} {_shown(value)}: {complaint}")
        for name, spec in command.fields.items():
            if spec.required and name not in request:
                raise BadRequest(f"{self.dev}: {cmd}: missing field {name!r}")
        return command

    def _run(self, command: Command, request: dict) -> Any:
        if command.reads(request):
            return command.handler(request)
        if not self._changes.acquire(timeout=CHANGE_WAIT):
            raise SoftenaError(f"{self.dev}: busy: another change is still in progress after {CHANGE_WAIT:g} s")
        try:
            return command.handler(request)
        finally:
            self._changes.release()

    def close(self, wait: float = 30.0) -> None:
        """Stop accepting, remove the socket file, and let a change in progress finish (up to WAIT s).

        The change lock is kept: the teardown that follows must not meet a change half-way.
        """
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
        if not self._changes.acquire(timeout=wait):
            log(self.dev, "warning", f"a change still runs after {wait:g} s; going down regardless")


def _stop_reading(conn: socket.socket) -> None:
    """Refuse the rest of what the client sends, and drop what came.

    A Unix socket closed with unread data resets its peer, which then loses
    the reply too: a request refused half-read (too large, too slow) must
    still have its error read.
    """
    conn.shutdown(socket.SHUT_RD)  # from here the client's sends fail (EPIPE)
    conn.setblocking(False)
    try:
        while conn.recv(65536):
            pass
    except BlockingIOError:
        pass


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _shown(value: Any, limit: int = 40) -> str:
    """VALUE for a one-line message: its repr, cut."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---- the client ------------------------------------------------------------------


def _recv_all(conn: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REPLY:
            raise ValueError("reply too large")


def _connect(s: socket.socket, path: str, timeout: float) -> None:
    """connect(), waiting out a full backlog: a socket with a timeout is non-blocking
    underneath, and a Unix socket's connect then fails at once with EAGAIN."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            s.connect(path)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def request(dev: str, cmd: str, timeout: float = 10.0, **args: Any) -> Any:
    """Send one request to DEV's daemon and return its result."""
    path = socket_path(dev)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            _connect(s, path, timeout)
            s.sendall(json.dumps({"cmd": cmd, **args}).encode())
            s.shutdown(socket.SHUT_WR)
            reply = json.loads(_recv_all(s))
    except FileNotFoundError as exc:
        raise SoftenaError(f"{dev}: no such device (is it up?)") from exc
    except PermissionError as exc:
        raise access.refusal(exc, f"{dev}: control socket") from exc
    except (OSError, ValueError) as exc:
        raise SoftenaError(f"{dev}: control socket: {exc}") from exc
    if "error" in reply:
        raise SoftenaError(reply["error"])  # the device names itself
    return reply["result"]

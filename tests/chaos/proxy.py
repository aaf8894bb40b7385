"""A TCP relay between one PEZ instance and PostgreSQL: the nemesis's hand
on that instance's store link.

It relays bytes both ways and follows the framing of the messages PEZ sends
(PostgreSQL's wire protocol: untyped startup packets, then a type byte and
a length), which costs little and lets the nemesis stretch one window that
matters: when armed for a sequence S, it waits for a statement that reads
where S stands (its text names S and `last_value`; a give-back must read
the position before it sets it back; prepared statements are followed by
name, as diesel caches them) and, once that statement has run, holds the
instance's *next* statement while a hook runs (a range lease of S through another instance),
then lets it go. A give-back that checks and then sets without excluding
range leases hands out the range lease's numbers again; a correct one makes
the hook's lease wait or fail, and nothing is served twice. The hold is
bounded by the hook's own timeout, so a correct PEZ is delayed, never stuck.

Nothing in PEZ changes: it is what a slow network or a descheduled thread
does at the worst moment, made to happen on purpose.
"""

import socket
import threading

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102


class Proxy:
    def __init__(self, target_port):
        self.target_port = target_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._armed = None  # (needle bytes, hook)
        self._lock = threading.Lock()
        self._closing = False
        self._sockets = set()
        self.fired = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, sequence, hook):
        """Once: after a statement reading where `sequence` stands, run
        hook() before the next statement goes through."""
        with self._lock:
            self._armed = (f'"{sequence}"'.encode(), hook)

    def disarm(self):
        with self._lock:
            self._armed = None

    def close(self):
        self._closing = True
        self._listener.close()
        for s in list(self._sockets):
            try:
                s.close()
            except OSError:
                pass

    def _accept(self):
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=3)
                server.settimeout(None)
            except OSError:
                client.close()  # libpq then tries the next host
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._sockets.add(s)
            threading.Thread(target=self._upstream, args=(client, server), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client), daemon=True).start()

    def _take_hook(self, message):
        with self._lock:
            if self._armed is None:
                return False
            needle, _ = self._armed
            return needle in message and b"last_value" in message

    def _fire(self):
        with self._lock:
            armed, self._armed = self._armed, None
        if armed is not None:
            self.fired += 1
            armed[1]()

    def _upstream(self, client, server):
        buf = bytearray()
        startup = True
        blind = False
        hold_next = False
        triggered = False
        # Prepared statements by name: diesel caches them, so a statement
        # run again is only a Bind naming it, without its text.
        statements = {}
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                if blind:
                    server.sendall(data)
                    continue
                buf += data
                out = bytearray()
                while True:
                    if startup:
                        if len(buf) < 8:
                            break
                        n = int.from_bytes(buf[0:4], "big")
                        if n < 8 or n > 1 << 20:
                            blind = True
                            break
                        if len(buf) < n:
                            break
                        code = int.from_bytes(buf[4:8], "big")
                        out += buf[:n]
                        del buf[:n]
                        if code not in (_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST):
                            startup = False
                        continue
                    if len(buf) < 5:
                        break
                    n = int.from_bytes(buf[1:5], "big") + 1
                    if n < 5 or n > 1 << 30:
                        blind = True
                        break
                    if len(buf) < n:
                        break
                    message = bytes(buf[:n])
                    del buf[:n]
                    kind = message[:1]
                    if kind in (b"P", b"B", b"Q") and hold_next:
                        # The statement after the read: it waits for the hook.
                        server.sendall(out)
                        out = bytearray()
                        hold_next = False
                        self._fire()
                    if kind == b"P":
                        name, _, rest = message[5:].partition(b"\0")
                        statements[name] = rest.partition(b"\0")[0]
                    elif kind == b"B":
                        _, _, rest = message[5:].partition(b"\0")
                        name = rest.partition(b"\0")[0]
                        if self._take_hook(statements.get(name, b"")):
                            triggered = True
                    elif kind == b"Q" and self._take_hook(message):
                        hold_next = True
                    elif kind == b"S" and triggered:
                        triggered, hold_next = False, True
                    out += message
                if blind:
                    out += buf
                    buf.clear()
                if out:
                    server.sendall(out)
        except OSError:
            pass
        finally:
            self._close(client, server)

    def _downstream(self, server, client):
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            self._close(client, server)

    def _close(self, *sockets):
        for s in sockets:
            self._sockets.discard(s)
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

"""A loopback TCP proxy that can lose one reply: the fault of a database connection dropped after the
server committed a statement but before its answer reached the client."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading


class LosingProxy:
    """Forwards 127.0.0.1:<port> to a target. `lose_reply_after(markers)`: the next client message that
    contains any of `markers` is delivered to the server, then the server's answer is dropped and both
    sides are closed (the client sees the connection die)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._markers: tuple[bytes, ...] = ()
        self._lock = threading.Lock()
        self.lost = 0  # replies dropped so far
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def lose_reply_after(self, *markers: bytes) -> None:
        with self._lock:
            self._markers = markers

    def _take_marker(self, data: bytes) -> bool:
        with self._lock:
            if self._markers and any(m in data for m in self._markers):
                self._markers = ()
                return True
        return False

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, upstream)
        sel.register(upstream, selectors.EVENT_READ, client)
        armed = False  # the marked message went up: drop whatever comes back and hang up
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.2):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return
                    if src is upstream and armed:
                        with self._lock:
                            self.lost += 1
                        return
                    if src is client and self._take_marker(data):
                        armed = True
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

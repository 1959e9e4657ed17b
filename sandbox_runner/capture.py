"""Bounded capture of a stream: keeps the first and last bytes, counts the rest.

A program may print gigabytes; the host keeps at most `limit` bytes of it, half from the
start (where the first error usually is) and half from the end (what the agent sees).
"""


class HeadTail:
    def __init__(self, limit: int):
        self._head_cap = limit // 2
        self._tail_cap = limit - self._head_cap
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self._head_cap - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail += data[-self._tail_cap:]
            if len(self._tail) > self._tail_cap:
                del self._tail[:len(self._tail) - self._tail_cap]

    def text(self) -> str:
        omitted = self.total - len(self._head) - len(self._tail)
        middle = f"\n[... {omitted} bytes omitted ...]\n".encode() if omitted else b""
        return (bytes(self._head) + middle + bytes(self._tail)).decode("utf-8", "replace")

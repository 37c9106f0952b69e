"""A fault-injecting HTTP proxy for the worker's tests, on 127.0.0.1.

Sits in front of one local AWS endpoint and, for a share of requests, answers
500 (InternalFailure), answers 400 ThrottlingException, or drops the
connection: before forwarding (the call never happened) or after (it
happened, the reply is lost). Everything else is forwarded as is.
"""

import http.client
import random
import socket
import threading
from urllib.parse import urlparse

ERR500 = (b'{"__type":"InternalFailure","message":"injected"}', 500,
          b"x-amzn-query-error: InternalFailure;Receiver\r\n")
THROTTLE = (b'{"__type":"ThrottlingException","message":"Rate exceeded (injected)"}', 400,
            b"x-amzn-query-error: ThrottlingException;Sender\r\n")


class FaultProxy:
    def __init__(self, upstream, share=0.1, seed=1):
        u = urlparse(upstream)
        self.host, self.port = u.hostname, u.port
        self.share = share
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = {"forwarded": 0, "500": 0, "throttle": 0, "drop_before": 0,
                       "drop_after": 0}
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.stopped = True
        self.sock.close()

    def _pick(self):
        with self.lock:
            r = self.rng.random()
        if r >= self.share:
            return "forwarded"
        return ("500", "throttle", "drop_before", "drop_after")[int(r / self.share * 4)]

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_request(f):
        line = f.readline()
        if not line:
            return None
        headers, length = [], 0
        while True:
            h = f.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
            if name.strip().lower() == "content-length":
                length = int(value)
        body = f.read(length) if length else b""
        method, path, _ = line.decode("latin-1").split(" ", 2)
        return method, path, headers, body

    def _serve(self, conn):
        f = conn.makefile("rb")
        up = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            while True:
                req = self._read_request(f)
                if req is None:
                    return
                method, path, headers, body = req
                fault = self._pick()
                with self.lock:
                    self.counts[fault] += 1
                if fault == "drop_before":
                    return
                if fault in ("500", "throttle"):
                    payload, status, extra = ERR500 if fault == "500" else THROTTLE
                    conn.sendall(b"HTTP/1.1 %d Injected\r\nContent-Type: application/x-amz-json-1.0"
                                 b"\r\nContent-Length: %d\r\n" % (status, len(payload)) + extra +
                                 b"\r\n" + payload)
                    continue
                hdrs = {k: v for k, v in headers if k.lower() not in ("connection",)}
                up.request(method, path, body=body, headers=hdrs)
                resp = up.getresponse()
                data = resp.read()
                if fault == "drop_after":
                    return
                out = [b"HTTP/1.1 %d %s\r\n" % (resp.status, resp.reason.encode())]
                for k, v in resp.getheaders():
                    if k.lower() in ("transfer-encoding", "connection", "content-length"):
                        continue
                    out.append(f"{k}: {v}\r\n".encode("latin-1"))
                out.append(b"Content-Length: %d\r\n\r\n" % len(data))
                conn.sendall(b"".join(out) + data)
        except (OSError, http.client.HTTPException, ValueError):
            return
        finally:
            up.close()
            conn.close()

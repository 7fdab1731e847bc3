#!/usr/bin/env python3
"""Records what a real nats-server sends to a client (INFO, PONG, MSG, HMSG,
PING answers, -ERR) into fuzz/captures/nats_server_rx.bin: the seed of the
NATS parser and session corpora. Usage: capture_nats.py (nats-server on PATH)."""
import os, socket, subprocess, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

port = free_port()
server = subprocess.Popen(["nats-server", "-a", "127.0.0.1", "-p", str(port)], stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            c = socket.create_connection(("127.0.0.1", port)); break
        except OSError:
            time.sleep(0.05)
    c.settimeout(2)
    hdr = b"NATS/1.0\r\nTrace: 1\r\nTrace: 2\r\n\r\n"
    c.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}\r\nPING\r\n'
              b"SUB telemetry.> 1\r\nSUB _INBOX.x.* 2\r\nPUB telemetry.temp 4\r\n21.5\r\n"
              b"PUB telemetry.temp _INBOX.x.1 0\r\n\r\n"
              + b"HPUB telemetry.h %d %d\r\n" % (len(hdr), len(hdr) + 3) + hdr + b"abc\r\n"
              + b"HPUB nobody.home _INBOX.x.7 0 0\r\n\r\n"  # no responders is for requests only
              b"PING\r\nSUB bad..subject 3\r\nPING\r\n")
    data = b""
    deadline = time.time() + 2
    while time.time() < deadline and data.count(b"PONG") < 2:
        try:
            chunk = c.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nats_server_rx.bin")
    open(out, "wb").write(data)
    print(f"{len(data)} bytes -> {out}")
finally:
    server.kill()

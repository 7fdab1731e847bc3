#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/seed-* from real server
captures (fuzz/captures/nats_server_rx.bin from capture_nats.py, and
core/src/nsq/testdata/nsqd_1_3_0_rx.bin recorded from nsqd 1.3.0) plus
hand-written edge cases. Stateful seeds encode operation scripts the way
`arbitrary` decodes them (enum variant: a u32 scaled to the variant count;
integers little endian; bools by their low bit). Idempotent."""
import os, struct

here = os.path.dirname(os.path.abspath(__file__))
fuzz = os.path.dirname(here)
root = os.path.dirname(fuzz)
nats_rx = open(os.path.join(here, "nats_server_rx.bin"), "rb").read()
nsq_rx = open(os.path.join(root, "core/src/nsq/testdata/nsqd_1_3_0_rx.bin"), "rb").read()

def write(target, name, data):
    d = os.path.join(fuzz, "corpus", target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "seed-" + name), "wb").write(data)

def lines(rx):
    """Splits a NATS capture into operations (payloads kept with their line)."""
    ops, i = [], 0
    while i < len(rx):
        j = rx.index(b"\r\n", i) + 2
        head = rx[i:j].split()
        if head[0] in (b"MSG", b"HMSG"):
            j += int(head[-1]) + 2
        ops.append(rx[i:j]); i = j
    return ops

def variant(i, n):
    x = -(-(i << 32) // n)  # smallest u32 that scales to variant i
    return struct.pack("<I", x)

# --- stateless parsers -------------------------------------------------------
for sel in range(4):
    write("nats_parser", f"capture-{sel}", bytes([sel]) + nats_rx)
for k, op in enumerate(lines(nats_rx)):
    write("nats_parser", f"op-{k}", b"\x03" + op)
    if op.startswith(b"HMSG"):
        head_len = int(op.split(b"\r\n")[0].split()[-2])
        block = op[op.index(b"\r\n") + 2:][:head_len]
        write("nats_headers", f"capture-{k}", block)
    if op.startswith(b"INFO"):
        write("nats_info", f"capture-{k}", op[5:].strip())
write("nats_headers", "inline-status", b"NATS/1.0 408 Request Timeout\r\n\r\n")
write("nats_info", "minimal", b'{"max_payload":1024,"headers":true,"ldm":true,"connect_urls":["10.0.0.1:4222","[::1]:4223"]}')
for sel in range(4):
    write("nsq_frame", f"capture-{sel}", bytes([sel]) + nsq_rx)
i, k = 0, 0
while i + 4 <= len(nsq_rx):
    size = struct.unpack(">i", nsq_rx[i:i + 4])[0]
    frame = nsq_rx[i:i + 4 + size]
    write("nsq_frame", f"frame-{k}", b"\x02" + frame)
    if frame[4:8] == b"\x00\x00\x00\x00":
        write("nsq_response", f"capture-{k}", frame[8:])
    i += 4 + size; k += 1
write("nsq_frame", "error", b"\x02" + struct.pack(">ii", 4 + 21, 1) + b"E_BAD_TOPIC bad topic")
write("nsq_response", "auth", b'{"identity":"fuzz","identity_url":"https://x/","permission_count":2}')
write("nsq_response", "ok", b"OK")
for k, url in enumerate(["nats://127.0.0.1:4222", "nats://user:p%40ss@host:1", "tok@[::1]:5222",
                         "tcp://example.com", "nats://[fe80::1]", "10.0.0.1:5222/", "tls://x:1", "nats://h:0"]):
    write("url", f"u{k}", url.encode())

# --- NATS session ------------------------------------------------------------
N = 13  # Op variants in nats_session.rs, in order
INPUT, TRANSMIT, TRANSMIT_ALL, ADVANCE, PUBLISH, SUBSCRIBE, UNSUB, DRAIN, UNSUB_AFTER, REQUEST, CANCEL, PING, RESET = range(N)
def nats_op(v, fields=b""):
    return variant(v, N) + fields
setup = bytes([3, 2]) + struct.pack("<H", 100) + bytes([2, 0, 1, 1])
info_len = len(lines(nats_rx)[0])
script = setup + b"".join([
    nats_op(INPUT, struct.pack("<H", info_len)), nats_op(TRANSMIT_ALL),
    nats_op(INPUT, struct.pack("<H", 6)),
    nats_op(SUBSCRIBE, bytes([1, 0])), nats_op(REQUEST, bytes([1]) + struct.pack("<H", 5000)),
    nats_op(PUBLISH, bytes([1]) + struct.pack("<H", 4) + bytes([0, 1])), nats_op(TRANSMIT, struct.pack("<H", 7)),
    nats_op(TRANSMIT_ALL), nats_op(INPUT, struct.pack("<H", 65535)), nats_op(ADVANCE, struct.pack("<H", 300)),
    nats_op(PING), nats_op(DRAIN, bytes([0])), nats_op(RESET), nats_op(PUBLISH, bytes([0]) + struct.pack("<H", 10) + bytes([0, 0])),
])
write("nats_session", "capture-script", struct.pack("<H", len(script)) + script + nats_rx + nats_rx)
write("nats_session", "capture-plain", struct.pack("<H", len(setup)) + setup + nats_rx)

# --- NSQ session -------------------------------------------------------------
M = 16
(IN, TX, TX_ALL, ADV, PUB, MPUB, DPUB, SUB, RDY, FIN, REQ, TOUCH, NOP, CLS, AUTH, RECONNECT) = range(M)
def nsq_op(v, fields=b""):
    return variant(v, M) + fields
setup = bytes([1, 3]) + struct.pack("<h", 1000) + bytes([1])
first = 4 + struct.unpack(">i", nsq_rx[:4])[0]
script = setup + b"".join([
    nsq_op(TX_ALL), nsq_op(IN, struct.pack("<H", first)),
    nsq_op(PUB, bytes([0]) + struct.pack("<H", 5)), nsq_op(MPUB, bytes([0, 2])),
    nsq_op(DPUB, bytes([0]) + struct.pack("<I", 500)), nsq_op(SUB, bytes([0])), nsq_op(RDY, struct.pack("<H", 10)),
    nsq_op(TX, struct.pack("<H", 3)), nsq_op(TX_ALL), nsq_op(IN, struct.pack("<H", 200)),
    nsq_op(FIN, bytes([1])), nsq_op(REQ, bytes([1]) + struct.pack("<I", 0)), nsq_op(TOUCH, bytes([1])),
    nsq_op(IN, struct.pack("<H", 65535)), nsq_op(ADV, struct.pack("<H", 1500)), nsq_op(NOP), nsq_op(CLS),
    nsq_op(ADV, struct.pack("<H", 2500)), nsq_op(RECONNECT), nsq_op(AUTH),
])
write("nsq_session", "capture-script", struct.pack("<H", len(script)) + script + nsq_rx + nsq_rx)
write("nsq_session", "capture-plain", struct.pack("<H", len(setup)) + setup + nsq_rx)

# --- RDY controller ----------------------------------------------------------
R = 8
ADD, REMOVE, DELIVER, ROGUE, FINISH, SETMIF, RADV, SETTLE = range(R)
def rdy_op(v, fields=b""):
    return variant(v, R) + fields
write("rdy", "two-conns", bytes([5]) + b"".join([
    rdy_op(ADD, bytes([1]) + struct.pack("<H", 2500)), rdy_op(ADD, bytes([2]) + struct.pack("<H", 2)),
    rdy_op(DELIVER, bytes([0])), rdy_op(DELIVER, bytes([1])), rdy_op(FINISH, bytes([0, 1])),
    rdy_op(FINISH, bytes([1, 0])), rdy_op(RADV, struct.pack("<H", 15)), rdy_op(SETTLE),
    rdy_op(DELIVER, bytes([0])), rdy_op(FINISH, bytes([0, 1])), rdy_op(SETMIF, bytes([1])), rdy_op(SETTLE),
    rdy_op(REMOVE, bytes([0])), rdy_op(SETTLE),
]))
write("rdy", "more-conns-than-budget", bytes([2]) + b"".join(
    [rdy_op(ADD, bytes([k]) + struct.pack("<H", 100)) for k in range(4)] +
    [rdy_op(DELIVER, bytes([k])) for k in range(4)] + [rdy_op(SETTLE)] +
    [rdy_op(FINISH, bytes([k, 1])) for k in range(4)] + [rdy_op(SETTLE)]))
print("seeds written")

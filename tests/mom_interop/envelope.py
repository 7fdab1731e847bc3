"""The courier facade's envelope in Python, from the byte tables of the
`courier::mom` module docs alone: writes and reads it with nats-py, pynsq
and kombu. Used by tests/mom_{nats,nsq,amqp}.rs.

    envelope.py nats-write URL SUBJECT N     envelope.py nats-read URL SUBJECT N
    envelope.py nsq-write ADDR TOPIC N       envelope.py nsq-read ADDR TOPIC N
    envelope.py amqp-write URL EXCHANGE RK N envelope.py amqp-read URL EXCHANGE RK N

Writers send N good messages (payload {"i": i, "src": "py"}, JSON;
odd i zlib-compressed, every third deflate) then one with a wrong CRC.
Readers print "ready" once bound, then one JSON line per message.
"""
import json, socket, struct, sys, time, uuid, zlib

# CRC-32C (Castagnoli), reflected, polynomial 0x82F63B78.
_T = []
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _T.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def compress(kind, data):
    if kind == "zlib":
        return zlib.compress(data)
    if kind == "deflate":
        o = zlib.compressobj(wbits=-15)
        return o.compress(data) + o.flush()
    return data


def decompress(kind, data):
    if kind == "zlib":
        return zlib.decompress(data)
    if kind == "deflate":
        return zlib.decompress(data, -15)
    if kind is None:
        return data
    raise ValueError("compression %r not handled here" % kind)


def messages(name, n):
    """(fields, body as carried) for N good messages and one corrupted."""
    out = []
    for i in range(n + 1):
        comp = "deflate" if i % 3 == 0 else ("zlib" if i % 2 else None)
        payload = json.dumps({"i": i, "src": "py"}).encode()
        body = compress(comp, payload)
        crc = crc32c(body)
        if i == n:
            crc ^= 1  # the corrupted one
        out.append(({"name": name, "id": uuid.uuid4().hex, "ts": int(time.time() * 1000),
                     "ct": "application/json", "ce": "utf-8", "comp": comp, "crc": crc}, body))
    return out


def report(f, body, crc):
    ok = crc == crc32c(body)
    line = {"name": f["name"], "id": f["id"], "ts": f["ts"], "ct": f["ct"], "ce": f["ce"],
            "comp": f["comp"], "crc_ok": ok}
    if ok:
        line["payload"] = decompress(f["comp"], body).decode()
    print(json.dumps(line), flush=True)


def nats_headers(f):
    h = {"Mom-Name": f["name"], "Mom-Id": f["id"], "Mom-Timestamp": str(f["ts"]),
         "Mom-Crc32c": "%08x" % f["crc"], "Content-Type": f["ct"], "Content-Encoding": f["ce"]}
    if f["comp"]:
        h["Mom-Compression"] = f["comp"]
    return h


async def nats_main(mode, url, subject, n):
    import nats
    nc = await nats.connect(url)
    if mode == "write":
        for f, body in messages(subject, n):
            await nc.publish(subject, body, headers=nats_headers(f))
        await nc.flush()
    else:
        sub = await nc.subscribe(subject)
        await nc.flush()
        print("ready", flush=True)
        for _ in range(n):
            m = await sub.next_msg(timeout=20)
            h = m.headers or {}
            f = {"name": h.get("Mom-Name"), "id": h.get("Mom-Id"), "ts": int(h.get("Mom-Timestamp", 0)),
                 "ct": h.get("Content-Type"), "ce": h.get("Content-Encoding"),
                 "comp": h.get("Mom-Compression")}
            report(f, m.data, int(h.get("Mom-Crc32c", "0"), 16))
    await nc.close()


CODES = {None: 0, "snappy": 1, "deflate": 2, "zlib": 3}


def nsq_encode(f, body):
    rest = struct.pack(">QB", f["ts"], CODES[f["comp"]])
    for s in (f["name"], f["id"], f["ct"], f["ce"]):
        b = s.encode()
        rest += bytes([len(b)]) + b
    rest += body
    crc = crc32c(rest) if f["crc"] == crc32c(body) else crc32c(rest) ^ 1
    return b"MOM1" + struct.pack(">I", crc) + rest


def nsq_decode(data):
    assert data[:4] == b"MOM1", data[:4]
    crc, ts, code = struct.unpack(">IQB", data[4:17])
    at, fields = 17, []
    for _ in range(4):
        ln = data[at]
        fields.append(data[at + 1:at + 1 + ln].decode())
        at += 1 + ln
    comp = {v: k for k, v in CODES.items()}[code]
    f = {"name": fields[0], "id": fields[1], "ts": ts, "ct": fields[2], "ce": fields[3], "comp": comp}
    ok = crc == crc32c(data[8:])
    # report() checks the body's CRC: hand it the right one when the whole envelope is good.
    body = data[at:]
    report(f, body, crc32c(body) if ok else crc32c(body) ^ 1)


def nsq_main(mode, addr, topic, n):
    import nsq, tornado.ioloop
    loop = tornado.ioloop.IOLoop.current()
    if mode == "write":
        w = nsq.Writer([addr])
        done = [0]

        def answered(conn, data):
            if isinstance(data, nsq.Error) or data is None:
                print("publish failed:", data, flush=True)
                sys.exit(1)
            done[0] += 1
            if done[0] == n + 1:
                loop.stop()

        def go():
            for f, body in messages(topic, n):
                w.pub(topic, nsq_encode(f, body), callback=answered)
        loop.call_later(1.0, go)
    else:
        seen = [0]

        def handler(m):
            nsq_decode(m.body)
            seen[0] += 1
            if seen[0] >= n:
                loop.call_later(0.3, loop.stop)
            return True
        nsq.Reader(topic=topic, channel="py", nsqd_tcp_addresses=[addr], message_handler=handler,
                   max_in_flight=50)
        loop.call_later(1.0, lambda: print("ready", flush=True))
    loop.call_later(30, loop.stop)
    loop.start()


def amqp_main(mode, url, exchange, rk, n):
    from kombu import Connection, Exchange, Queue
    ex = Exchange(exchange, type="topic", durable=False)
    with Connection(url, transport_options={"confirm_publish": True}) as conn:
        if mode == "write":
            producer = conn.Producer()
            for f, body in messages(rk, n):
                # py-amqp writes ints over 2^31 as field type 'L', which
                # courier-core's table decoder refuses (it drops the
                # connection): the timestamp goes as a decimal string,
                # which the facade's readers accept too.
                h = {"mom-name": f["name"], "mom-timestamp": str(f["ts"]), "mom-crc32c": "%08x" % f["crc"]}
                if f["comp"]:
                    h["mom-compression"] = f["comp"]
                producer.publish(body, exchange=ex, routing_key=rk, content_type=f["ct"],
                                 content_encoding=f["ce"], headers=h, message_id=f["id"])
            return
        got = []

        def on_message(m):
            # The raw py-amqp message: kombu's own Message would already
            # have undone its `compression` header on the body.
            p = m.properties
            h = p.get("application_headers") or {}
            body = m.body
            if isinstance(body, str):
                # py-amqp decodes bodies whose content_encoding it can.
                body = body.encode(p.get("content_encoding"))
            ts = h.get("mom-timestamp")
            f = {"name": h.get("mom-name"), "id": p.get("message_id"), "ts": int(ts or 0),
                 "ct": p.get("content_type"), "ce": p.get("content_encoding"),
                 "comp": h.get("mom-compression")}
            if h.get("compression"):
                # kombu's own decompression agrees with the envelope's.
                from kombu.compression import decompress as kd
                assert kd(body, h["compression"]) == decompress(f["comp"], body)
            report(f, body, int(h.get("mom-crc32c", "0"), 16))
            got.append(1)
        ch = conn.channel()
        q = Queue("", exchange=ex, routing_key=rk, exclusive=True, channel=ch)
        q.declare()
        ch.basic_consume(q.name, callback=on_message, no_ack=True)
        print("ready", flush=True)
        deadline = time.time() + 30
        while len(got) < n and time.time() < deadline:
            try:
                conn.drain_events(timeout=1)
            except socket.timeout:
                pass


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    proto, mode = cmd.split("-")
    if proto == "nats":
        import asyncio
        asyncio.run(nats_main(mode, args[0], args[1], int(args[2])))
    elif proto == "nsq":
        nsq_main(mode, args[0], args[1], int(args[2]))
    else:
        amqp_main(mode, args[0], args[1], args[2], int(args[3]))

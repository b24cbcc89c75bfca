#!/usr/bin/env python3
"""faultproxy — a TCP proxy for dipole tests that injects network faults.

usage: faultproxy.py LISTEN_IP:PORT TARGET_IP:PORT CONTROL_DIR

Every forwarded chunk looks at files in CONTROL_DIR (written by the test):
  delay_ms   integer: hold each chunk this long, in both directions (order kept)
  stall_up   exists: stop forwarding client->target (data piles up, nothing breaks)
  stall_down exists: stop forwarding target->client
  reset      exists: close every connection (and each new one) at once
  data_delay_up_ms  integer: extra delay client->target on data channels only
             (the channel byte of the dialer's HELLO, src/wire.h), so data
             can lag behind acknowledgements
It stops by itself when CONTROL_DIR disappears. Only for addresses the test
created (loopback or its own namespaces).
"""
import asyncio, os, sys, time

LISTEN, TARGET, CTL = sys.argv[1], sys.argv[2], sys.argv[3]


def hp(s):
    h, p = s.rsplit(":", 1)
    return h, int(p)


def flag(name):
    return os.path.exists(os.path.join(CTL, name))


def delay_s(name="delay_ms"):
    try:
        with open(os.path.join(CTL, name)) as f:
            return int(f.read().strip() or 0) / 1000.0
    except (OSError, ValueError):
        return 0.0


async def pump(reader, writer, stall_name, extra=None, first=b""):
    q = asyncio.Queue()
    if first:
        await q.put((time.monotonic() + delay_s() + (delay_s(extra) if extra else 0), first))

    async def sender():
        while True:
            due, data = await q.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            while flag(stall_name) and not flag("reset"):
                await asyncio.sleep(0.01)
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.ensure_future(sender())
    try:
        while not flag("reset"):
            data = await reader.read(65536)
            if not data:
                break
            await q.put((time.monotonic() + delay_s() + (delay_s(extra) if extra else 0), data))
    except (ConnectionError, OSError):
        pass
    await q.put((0, None))
    try:
        await task
    except (ConnectionError, OSError):
        pass


HELLO_CHANNEL_AT = 24 + 12  # header, then the HELLO's channel byte (0 data, 1 meta)


async def handle(creader, cwriter):
    if flag("reset"):
        cwriter.close()
        return
    try:
        treader, twriter = await asyncio.open_connection(*hp(TARGET))
    except OSError:
        cwriter.close()
        return
    first = b""
    try:
        while len(first) <= HELLO_CHANNEL_AT:
            chunk = await creader.read(65536)
            if not chunk:
                break
            first += chunk
    except (ConnectionError, OSError):
        pass
    data = len(first) > HELLO_CHANNEL_AT and first[HELLO_CHANNEL_AT] == 0
    await asyncio.gather(pump(creader, twriter, "stall_up", "data_delay_up_ms" if data else None, first),
                         pump(treader, cwriter, "stall_down"),
                         return_exceptions=True)


async def watchdog(server):
    while os.path.isdir(CTL):
        await asyncio.sleep(0.2)
    server.close()


async def main():
    server = await asyncio.start_server(handle, *hp(LISTEN), reuse_address=True)
    open(os.path.join(CTL, "ready"), "w").close()
    await asyncio.gather(server.serve_forever(), watchdog(server), return_exceptions=True)


try:
    asyncio.run(main())
except (KeyboardInterrupt, asyncio.CancelledError):
    pass

#!/usr/bin/env python3
"""nbdwrite.py SOCKET EXPORT OFFSET LENGTH BYTE — one NBD write of LENGTH
copies of BYTE at OFFSET, then disconnect. No flush (unlike qemu-io, which
flushes when it closes): for tests of what an unflushed write survives."""
import socket, struct, sys

sock, export, off, ln, byte = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5], 0)


def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("server closed")
        b += c
    return b


s = socket.socket(socket.AF_UNIX)
s.connect(sock)
recvn(s, 18)
s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, 4 + len(export) + 2) + struct.pack(">I", len(export)) + export
          + struct.pack(">H", 0))
while True:
    _, _, typ, n = struct.unpack(">QIII", recvn(s, 20))
    recvn(s, n)
    if typ == 1:
        break
    if typ & 0x80000000:
        sys.exit("export refused")
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 1, off, ln) + bytes([byte]) * ln)
magic, err, cookie = struct.unpack(">IIQ", recvn(s, 16))
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 2, 2, 0, 0))
s.close()
sys.exit(1 if err else 0)

"""dataarea — the md5 of a replica's data area: the first SIZE bytes of its
backing file (the metadata after them differs by node). Shared by the
fault checkers (checker.py, fschecker.py) for "replicas byte-identical"."""
import hashlib


def md5(path, size):
    h = hashlib.md5()
    with open(path, "rb") as f:
        left = size
        while left:
            c = f.read(min(left, 1 << 20))
            if not c:
                break
            h.update(c)
            left -= len(c)
    return h.hexdigest()

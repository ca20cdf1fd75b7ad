"""Writes the embedded texture sample: the central 256x256 crop of scikit-image 0.26's CC0
textures brick.png, grass.png and gravel.png (8-bit grey). Run with the xtask venv's python:
~/.cache/unet-rs/torch-2.11.0/bin/python datasets/textures/make_sample.py"""
import os
import skimage.data
from skimage import io

DST = os.path.join(os.path.dirname(__file__), "sample")
for name in ("brick", "grass", "gravel"):
    img = getattr(skimage.data, name)()
    h, w = img.shape
    crop = img[h // 2 - 128: h // 2 + 128, w // 2 - 128: w // 2 + 128]
    io.imsave(os.path.join(DST, f"{name}.png"), crop, check_contrast=False)

"""Make tinygrad_edu/digits.npz from scikit-learn's copy of the UCI digits (run once).

The data set is the test set of "Optical Recognition of Handwritten Digits" (E. Alpaydin
and C. Kaynak, UCI Machine Learning Repository, 1998), as bundled with scikit-learn:
1797 images of 8x8 pixel counts (0..16) with their labels 0..9.

This script was run once to write the .npz that ships inside the package; the library
and its demos read that file and never need scikit-learn. Running it again needs
scikit-learn, which is deliberately not a dependency of tinygrad_edu; install it in a
throwaway environment:

    python3 -m venv /tmp/skl && /tmp/skl/bin/pip install scikit-learn
    /tmp/skl/bin/python tools/make_digits_npz.py
"""
import os

import numpy
from sklearn.datasets import load_digits

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tinygrad_edu", "digits.npz")

digits = load_digits()
images = digits.images.astype(numpy.uint8)  # pixel counts 0..16, stored as float64 by sklearn
assert (images == digits.images).all() and images.shape == (1797, 8, 8)
labels = digits.target.astype(numpy.uint8)
numpy.savez_compressed(OUT, images=images, labels=labels)
print(f"wrote {os.path.normpath(OUT)}: images {images.shape}, labels {labels.shape}, label sum {int(labels.sum())}")

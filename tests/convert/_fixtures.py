"""Paths of the conversion fixtures (made by tools/make_convert_fixtures.py
with the official PyTorch code) and a relative-difference helper."""

import os

import numpy as np

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures",
                        "convert")


def fixture(name):
    return os.path.join(FIXTURES, name)


def reference(name):
    """The official model's outputs saved beside checkpoint `name`."""
    return np.load(fixture(name.replace(".pth.tar", "_reference.npz")))


def width_key(reference_widths, index):
    """The npz key suffix of width `index` (the official absolute width)."""
    return f"{reference_widths[index]:g}"


def relative_difference(actual, expected):
    """max |actual - expected| / max |expected|."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))

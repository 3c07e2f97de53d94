"""Data for the notebooks (provided): a real photograph, real handwritten digits and a small
synthetic "shapes" data set.

Nothing is downloaded. The photograph is Grace Hopper's portrait that ships with matplotlib
(``matplotlib.cbook.get_sample_data("grace_hopper.jpg")``); the digits are the 1,797 8x8 images
of scikit-learn's ``sklearn.datasets.load_digits``, a copy of which ships with this package
(``digits.txt``: students need no scikit-learn); the shapes are drawn here, from a
seed.

Images follow the package's NCHW convention: a batch has shape (N, C, H, W).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASS_NAMES: tuple[str, ...] = ("bar", "cross", "circle")
"""Label ``k`` of :func:`make_shapes` is ``CLASS_NAMES[k]``."""


def load_sample_image(size: int = 64) -> np.ndarray:
    """Grace Hopper's portrait (shipped with matplotlib), grayscale, square, ``size`` x ``size``.

    The 600 x 512 colour photograph is converted to luminance (ITU-R BT.601 weights), cropped to
    its central square around the face and shrunk by averaging blocks of pixels, then resized
    to exactly ``size`` x ``size`` by nearest-neighbour sampling of that block average.

    Args:
        size: side of the returned image, 8 <= size <= 512.

    Returns:
        image of shape (size, size), float64, values in [0, 1]. Use ``image[None, None]`` for a
        batch of shape (1, 1, size, size).
    """
    import matplotlib.cbook as cbook
    import matplotlib.image as mpimg

    if not 8 <= size <= 512:
        raise ValueError(f"size must be between 8 and 512, got size={size}")
    rgb = mpimg.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.max() > 1.0:
        rgb = rgb / 255.0
    gray = rgb[..., :3] @ np.array([0.299, 0.587, 0.114])
    H, W = gray.shape
    side = min(H, W)
    top = (H - side) // 2
    left = (W - side) // 2
    gray = gray[top : top + side, left : left + side]
    block = side // size
    cropped = gray[: block * size, : block * size]
    small = cropped.reshape(size, block, size, block).mean(axis=(1, 3))
    return np.clip(small, 0.0, 1.0)


def _draw_bar(img: np.ndarray, rng: np.random.Generator) -> None:
    """A straight horizontal or vertical bar, 1-2 pixels thick, at a random place."""
    S = img.shape[0]
    length = int(rng.integers(S // 2, S - 2))
    thick = int(rng.integers(1, 3))
    start = int(rng.integers(1, S - length))
    pos = int(rng.integers(2, S - 2 - thick))
    if rng.random() < 0.5:
        img[pos : pos + thick, start : start + length] = 1.0
    else:
        img[start : start + length, pos : pos + thick] = 1.0


def _draw_cross(img: np.ndarray, rng: np.random.Generator) -> None:
    """A "+" made of a horizontal and a vertical bar that cross at a random centre."""
    S = img.shape[0]
    arm = int(rng.integers(S // 5 + 1, S // 3 + 1))
    cy = int(rng.integers(arm + 1, S - arm - 1))
    cx = int(rng.integers(arm + 1, S - arm - 1))
    thick = int(rng.integers(1, 3))
    img[cy : cy + thick, cx - arm : cx + arm + 1] = 1.0
    img[cy - arm : cy + arm + 1, cx : cx + thick] = 1.0


def _draw_circle(img: np.ndarray, rng: np.random.Generator) -> None:
    """A ring of random radius and centre, about one pixel wide."""
    S = img.shape[0]
    r = float(rng.uniform(S / 6, S / 3))
    cy = float(rng.uniform(r + 1, S - r - 1))
    cx = float(rng.uniform(r + 1, S - r - 1))
    yy, xx = np.mgrid[0:S, 0:S]
    dist = np.hypot(yy - cy, xx - cx)
    img[np.abs(dist - r) < 0.75] = 1.0


_DRAW = (_draw_bar, _draw_cross, _draw_circle)


def make_shapes(
    n: int = 300, size: int = 16, noise: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A balanced, seeded data set of ``n`` images of bars, crosses and circles.

    Each image is black (0) with one white (1) shape at a random position and size, plus
    Gaussian pixel noise of standard deviation ``noise``. Labels cycle through the classes
    before shuffling, so each class has ``n // 3`` or ``n // 3 + 1`` images.

    Args:
        n: number of images, >= 1.
        size: side of each image, >= 10.
        noise: standard deviation of the added Gaussian noise, >= 0.
        seed: seed of the random generator; the same seed gives the same data set.

    Returns:
        x: images, shape (n, 1, size, size), float64.
        y: labels in {0, 1, 2} (see :data:`CLASS_NAMES`), shape (n,), int64.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got n={n}")
    if size < 10:
        raise ValueError(f"size must be >= 10, got size={size}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got noise={noise}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(CLASS_NAMES)).astype(np.int64)
    x = np.zeros((n, 1, size, size))
    for i, label in enumerate(y):
        _DRAW[label](x[i, 0], rng)
    x += noise * rng.standard_normal(x.shape)
    return x, y


def train_val_split(
    x: np.ndarray, y: np.ndarray, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split ``(x, y)`` into ``(x_train, y_train, x_val, y_val)``.

    ``x`` has shape (N, ...) and ``y`` shape (N,); the validation part holds
    ``round(val_fraction * N)`` samples (at least 1 and at most N - 1).
    """
    N = len(x)
    if len(y) != N:
        raise ValueError(f"x and y must have the same length, got {N} and {len(y)}")
    if N < 2:
        raise ValueError("need at least 2 samples to split")
    n_val = min(max(int(round(val_fraction * N)), 1), N - 1)
    order = np.random.default_rng(seed).permutation(N)
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


DIGITS_FILE = "digits.txt"  # shipped with the package (from scikit-learn's load_digits)


def load_digits(scale: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The handwritten digits bundled with scikit-learn: 1,797 grey 8x8 images of 0-9, ~180 each.

    They come from the UCI "Optical Recognition of Handwritten Digits" set (43 writers; 32x32 bitmaps
    reduced to 8x8 counts of ink, 0-16). A copy ships with this package (``digits.txt``, 120 kB), so
    neither scikit-learn nor a download is needed; the tests check it against scikit-learn's.

    Args:
        scale: each pixel becomes a ``scale`` x ``scale`` block (1: the original 8x8; 2: 16x16, so
            that a shift by one pixel is half a stroke wide), 1 <= scale <= 4.

    Returns:
        x: images, shape (1797, 1, 8 * scale, 8 * scale), float64 in [0, 1] (ink = 1).
        y: labels 0-9, shape (1797,), int64.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 4:
        raise ValueError(f"scale must be an integer from 1 to 4, got scale={scale!r}")
    images, labels = _read_digits()
    x = images.astype(np.float64) / 16.0
    x = np.kron(x, np.ones((scale, scale)))[:, None]
    return x, labels


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 ink counts (0-16, shape (1797, 8, 8)) and labels of ``digits.txt``."""
    path = Path(__file__).with_name(DIGITS_FILE)
    rows = [line.split() for line in path.read_text().splitlines() if line and not line.startswith("#")]
    labels = np.array([int(label) for label, _ in rows], dtype=np.int64)
    pixels = np.array([[int(c, 17) for c in ink] for _, ink in rows], dtype=np.int64)
    return pixels.reshape(-1, 8, 8), labels

"""Image statistics that say whether a photo-to-painting model works, with no pretrained network:
hand-made colour and texture features, a Monet-vs-photo classifier on them, a Frechet distance
between their distributions; a second, independent colour/texture description (statistics of a
fixed random-weight convolutional network); edge and colour-layout correlation with the input;
and the spectral peaks and grain of the checkerboard that x2 upsamplings leave. numpy and torch only.

Used by ``model_quality.py``; ``tests/test_model_quality.py`` checks the metrics themselves.
All images are uint8 RGB arrays (H, W, 3).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

HOLDOUT_EVERY = 10  # every 10th file (sorted by name) never reaches training: see held_out()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf when equal): the benchmarks' one definition."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def held_out(names: Iterable[str]) -> list[str]:
    """The held-out files of a training folder: after sorting by name, those at index i with
    i % 10 == 0. Training ran on the rest (108 of 1072 Monet paintings, 300 of 3000 photos of
    monet2photo/trainA and trainB), so these are images the model never saw."""
    return [n for i, n in enumerate(sorted(names)) if i % HOLDOUT_EVERY == 0]


# Which half of the held-out photos each split takes, alternately in name order.
SPLITS = {"val": 0, "test": 1}


def split(names: Iterable[str], which: str) -> list[str]:
    """The held-out photos divided in two, disjoint and fixed: after sorting by name, 'val' takes the
    1st, 3rd, 5th ... (to choose checkpoints with) and 'test' the 2nd, 4th, 6th ... (for the figures
    reported). A checkpoint chosen on 'val' has never been scored on 'test'."""
    if which not in SPLITS:
        raise ValueError(f"split {which!r}: use one of {', '.join(SPLITS)}")
    return sorted(names)[SPLITS[which]::2]


# -- pixels -> planes ----------------------------------------------------------------------------

_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]], dtype=np.float32)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 sRGB (H, W, 3) -> CIELAB float32 (L in 0..100, a and b about -100..100): a space where
    distances follow perceived colour differences better than in RGB."""
    c = rgb.astype(np.float32) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = (lin @ _SRGB_TO_XYZ.T) / _WHITE_D65
    d = 6.0 / 29.0
    f = np.where(t > d ** 3, np.cbrt(t), t / (3 * d * d) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]),
                     200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma in 0..1, float32 (H, W)."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255.0


def sobel(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical Sobel responses of a plane, same size (reflected borders)."""
    p = np.pad(y, 1, mode="reflect")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    return gx, gy


def sobel_magnitude(y: np.ndarray) -> np.ndarray:
    gx, gy = sobel(y)
    return np.hypot(gx, gy)


def half_size(y: np.ndarray) -> np.ndarray:
    """2x2 mean pooling (an odd last row or column is dropped)."""
    h, w = y.shape[0] // 2 * 2, y.shape[1] // 2 * 2
    return y[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def cell_means(x: np.ndarray, cells: int) -> np.ndarray:
    """(H, W, C) -> (cells, cells, C) float64: the mean of each cell of a cells x cells grid (cell
    edges rounded down, so any size of at least ``cells`` px a side works)."""
    h, w = x.shape[:2]
    if h < cells or w < cells:
        raise ValueError(f"a {w}x{h} image is smaller than a {cells}x{cells} grid")
    ys, xs = np.linspace(0, h, cells + 1).astype(int), np.linspace(0, w, cells + 1).astype(int)
    sums = np.add.reduceat(np.add.reduceat(x.astype(np.float64), ys[:-1], axis=0), xs[:-1], axis=1)
    return sums / (np.diff(ys)[:, None] * np.diff(xs)[None, :])[..., None]


COLOUR_GRID = 16  # the colour layout is compared in a 16 x 16 grid of cells


def colour_correlation(a: np.ndarray, b: np.ndarray, cells: int = COLOUR_GRID) -> float:
    """How well image ``b`` keeps the colour layout of image ``a`` (any sizes): the CIELAB a* and b*
    of each, averaged over a cells x cells grid, each channel centred on its own mean, then one
    Pearson correlation over both channels together (so the channel with more colour variation
    weighs more). 1 for an identity mapping; hue swaps (orange sand turning blue-grey) pull it down,
    a uniform cast or a change of saturation alone does not. NaN when ``a`` has no colour layout (a
    grey photo: nothing to keep); 0 when ``a`` has one and ``b`` none."""
    ca = cell_means(srgb_to_lab(a)[..., 1:], cells).reshape(-1, 2)
    cb = cell_means(srgb_to_lab(b)[..., 1:], cells).reshape(-1, 2)
    ca, cb = ca - ca.mean(axis=0), cb - cb.mean(axis=0)
    va, vb = float((ca * ca).sum()), float((cb * cb).sum())
    if va < 1e-6 * len(ca):  # below 0.001 a*/b* units of spread: no layout
        return float("nan")
    return float((ca * cb).sum() / np.sqrt(va * vb)) if vb > 0 else 0.0


# -- features ------------------------------------------------------------------------------------

def _moments(x: np.ndarray) -> list[float]:
    mu, sd = float(x.mean()), float(x.std())
    skew = float(((x - mu) ** 3).mean() / max(sd, 1e-6) ** 3)
    return [mu, sd, skew]


def colour_features(rgb: np.ndarray) -> np.ndarray:
    """28 numbers: mean, spread and skew of L, a, b; chroma mean and spread; share of near-grey
    pixels; a lightness histogram (8 bins) and a hue histogram weighted by chroma (8 bins).
    Monet's palette differs from photos' in all of these (lifted shadows, pastel chroma, hues)."""
    lab = srgb_to_lab(rgb).reshape(-1, 3)
    L, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    chroma = np.hypot(a, b)
    hue = np.arctan2(b, a)
    f = _moments(L) + _moments(a) + _moments(b)
    f += [float(chroma.mean()), float(chroma.std()), float((chroma < 8.0).mean())]
    f += list(np.histogram(L, bins=8, range=(0.0, 100.0))[0] / L.size)
    hue_hist = np.histogram(hue, bins=8, range=(-np.pi, np.pi), weights=chroma)[0]
    f += list(hue_hist / max(float(hue_hist.sum()), 1e-6))
    return np.asarray(f, dtype=np.float64)


def lbp_histogram(y: np.ndarray) -> np.ndarray:
    """Rotation-invariant uniform local binary patterns (8 neighbours, radius 1): 10 bins, the
    share of flat spots, edges, corners, lines and noise (bin 9: non-uniform patterns)."""
    h, w = y.shape
    c = y[1:-1, 1:-1]
    ring = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]  # in circular order
    bits = np.stack([y[1 + dy:h - 1 + dy, 1 + dx:w - 1 + dx] >= c for dy, dx in ring])
    transitions = (bits != np.roll(bits, 1, axis=0)).sum(axis=0)
    code = np.where(transitions <= 2, bits.sum(axis=0), 9)
    return np.bincount(code.ravel(), minlength=10) / code.size


def _gradient_stats(y: np.ndarray) -> list[float]:
    """Edge strength, how unevenly it is spread (few strong edges in photos, strokes everywhere in
    paintings), and the share of gradient energy at 0, 45, 90 and 135 degrees."""
    gx, gy = sobel(y)
    m2 = gx * gx + gy * gy
    m = np.sqrt(m2)
    mean = float(m.mean())
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    bins = np.floor((angle + np.pi / 8) / (np.pi / 4)).astype(np.int64) % 4
    energy = np.bincount(bins.ravel(), weights=m2.ravel(), minlength=4)
    return [np.log(mean + 1e-4), float(m.std()) / max(mean, 1e-6), *(energy / max(float(energy.sum()), 1e-12))]


def texture_features(rgb: np.ndarray) -> np.ndarray:
    """42 numbers on luma: gradient statistics at 3 scales (6 each), LBP histograms at 2 scales
    (10 each), the log energy of 3 Laplacian-pyramid bands and of what is left below them (how
    detail spreads over scales: smooth photo skies against brush strokes everywhere)."""
    y = luminance(rgb)
    levels = [y]
    for _ in range(3):
        levels.append(half_size(levels[-1]))
    f: list[float] = []
    for lv in levels[:3]:
        f += _gradient_stats(lv)
    for lv in levels[:2]:
        f += list(lbp_histogram(lv))
    for fine, coarse in zip(levels, levels[1:]):
        up = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)
        band = fine[:up.shape[0], :up.shape[1]] - up
        f.append(float(np.log((band * band).mean() + 1e-8)))
    # what is left at 1/8 scale: its contrast
    f.append(float(np.log(levels[-1].var() + 1e-8)))
    return np.asarray(f, dtype=np.float64)


def image_features(rgb: np.ndarray) -> np.ndarray:
    """The feature vector used by the classifier and the Frechet distance (70 numbers)."""
    return np.concatenate([colour_features(rgb), texture_features(rgb)])


def features(images: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([image_features(im) for im in images])


# -- a second description: random-feature texture statistics ---------------------------------------
# Statistics of the feature maps of a small convolutional network whose weights are random, drawn once
# from a fixed seed and never trained (Ustyuzhaninov et al. 2016, "Texture synthesis using shallow
# convolutional networks with random filters": such statistics describe texture well). Nothing in it
# was chosen by looking at paintings or at a checkpoint, so a checkpoint chosen on the hand-made
# features above cannot have been chosen to flatter it. No downloaded weights.

RF_SEED = 2016
RF_SCALES = 3    # the image at full, 1/2 and 1/4 size (2x2 mean pooling between them)
RF_HIDDEN = 16   # layer 1: 5x5 filters on RGB
RF_MAPS = 8      # layer 2: 3x3 filters on layer 1; their maps' mean and std are the features


@functools.lru_cache(maxsize=1)
def _random_filters() -> tuple[torch.Tensor, torch.Tensor]:
    """The network's two filter banks, the same on every machine (torch's CPU generator, seeded).
    Each filter has zero mean over its inputs and positions and unit norm: it answers to spatial and
    colour contrast, not to the flat colour (the colour moments carry that), and no filter's
    responses dwarf the others'."""
    g = torch.Generator().manual_seed(RF_SEED)
    banks = []
    for shape in ((RF_HIDDEN, 3, 5, 5), (RF_MAPS, RF_HIDDEN, 3, 3)):
        w = torch.randn(shape, generator=g, dtype=torch.float64)
        w = w - w.mean(dim=(1, 2, 3), keepdim=True)
        banks.append((w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).float())
    return banks[0], banks[1]


def random_texture_features(rgb: np.ndarray) -> np.ndarray:
    """57 numbers: at each of 3 scales, the log mean and log std of each of the 8 maps of the fixed
    random two-layer ReLU network (valid convolutions: no border effects); then mean, spread and
    skew of CIELAB L, a*, b*."""
    w1, w2 = _random_filters()
    x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    f: list[float] = []
    with torch.no_grad():
        for scale in range(RF_SCALES):
            if scale:
                x = F.avg_pool2d(x, 2)
            maps = F.relu(F.conv2d(F.relu(F.conv2d(x, w1)), w2))[0].flatten(1).double()
            f += torch.log(maps.mean(dim=1) + 1e-6).tolist() + torch.log(maps.std(dim=1) + 1e-6).tolist()
    lab = srgb_to_lab(rgb).reshape(-1, 3)
    for c in range(3):
        f += _moments(lab[:, c])
    return np.asarray(f, dtype=np.float64)


def random_features(images: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([random_texture_features(im) for im in images])


# -- distributions -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Standardizer:
    """Per-feature z-scores with statistics of a reference set, so that no feature dominates a
    distance by its units (L in 0..100 against LBP shares in 0..1)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "Standardizer":
        return cls(x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(x1: np.ndarray, x2: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two sets of feature rows (the FID formula):
    |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2). tr (S1 S2)^1/2 is computed as the trace of
    (S1^1/2 S2 S1^1/2)^1/2, which is symmetric, so eigh suffices (no scipy)."""
    if len(x1) < 2 or len(x2) < 2:
        raise ValueError(f"a covariance needs 2 or more rows ({len(x1)} and {len(x2)} given)")
    mu1, mu2 = x1.mean(axis=0), x2.mean(axis=0)
    s1, s2 = np.cov(x1, rowvar=False), np.cov(x2, rowvar=False)
    r = _sqrt_psd(s1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0.0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * cross)


def kernel_distance(x1: np.ndarray, x2: np.ndarray) -> float:
    """Squared maximum mean discrepancy with the cubic polynomial kernel (x.y / d + 1)^3, unbiased
    (the KID of Binkowski et al. 2018, on these features): its expected value for two samples of one
    distribution is 0 whatever their sizes, where a Frechet distance between 54 and 54 rows of 70
    features keeps a floor of about a fifth of the photos' own distance. Small negative values are noise."""
    if len(x1) < 2 or len(x2) < 2:
        raise ValueError(f"the unbiased estimate needs 2 or more rows ({len(x1)} and {len(x2)} given)")
    d = x1.shape[1]
    kxx, kyy, kxy = ((a @ b.T / d + 1.0) ** 3 for a, b in ((x1, x1), (x2, x2), (x1, x2)))
    m, n = len(x1), len(x2)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


# -- Monet-vs-photo classifier -------------------------------------------------------------------

@dataclass(frozen=True)
class Classifier:
    """L2-regularised logistic regression on standardised features; 1 = painting."""

    scale: Standardizer
    weight: np.ndarray
    bias: float
    l2: float

    def prob(self, x: np.ndarray) -> np.ndarray:
        z = self.scale(x) @ self.weight + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def says_painting(self, x: np.ndarray) -> np.ndarray:
        return self.prob(x) >= 0.5


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Full-batch L-BFGS from zero: deterministic. Classes weighted equally, so the 2.8x more
    photos than paintings do not push the threshold toward 'photo'."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float64))
    n_pos = max(float(yt.sum()), 1.0)
    n_neg = max(float(len(yt) - yt.sum()), 1.0)
    sw = torch.where(yt > 0.5, len(yt) / (2 * n_pos), len(yt) / (2 * n_neg))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=500, tolerance_grad=1e-9, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (sw * F.binary_cross_entropy_with_logits(xt @ w + b, yt, reduction="none")).mean()
        loss = loss + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy().copy(), float(b.detach())


def _balanced_accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return 0.5 * (float(pred[y].mean()) + float((~pred[~y]).mean()))


def train_classifier(paintings: np.ndarray, photos: np.ndarray,
                     l2_grid: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0), folds: int = 5) -> Classifier:
    """Fits on feature rows of paintings (label 1) and photos (label 0). The regularisation is chosen
    by cross-validation within these rows only (interleaved folds, no randomness), so the other
    held-out half stays unseen until the classifier is applied to it. With fewer than 2 rows of a
    class there is nothing to cross-validate: the grid's second value is used."""
    x = np.concatenate([paintings, photos])
    y = np.concatenate([np.ones(len(paintings), bool), np.zeros(len(photos), bool)])
    folds = min(folds, len(paintings), len(photos))
    fold = np.concatenate([np.arange(len(paintings)), np.arange(len(photos))]) % max(folds, 1)
    best_l2, best = l2_grid[min(1, len(l2_grid) - 1)], -1.0
    for l2 in l2_grid if folds >= 2 else []:
        scores = []
        for k in range(folds):
            tr, te = fold != k, fold == k
            scale = Standardizer.fit(x[tr])
            w, b = _fit_logistic(scale(x[tr]), y[tr], l2)
            scores.append(_balanced_accuracy(scale(x[te]) @ w + b >= 0, y[te]))
        if float(np.mean(scores)) > best + 1e-9:  # ties keep the smaller l2 seen first
            best_l2, best = l2, float(np.mean(scores))
    scale = Standardizer.fit(x)
    w, b = _fit_logistic(scale(x), y, best_l2)
    return Classifier(scale, w, b, best_l2)


# -- structure and artifacts ---------------------------------------------------------------------

def edge_correlation(a: np.ndarray, b: np.ndarray, halvings: int = 0) -> float:
    """Pearson correlation of the Sobel magnitude maps of two same-size images' luma: 1 when the
    output has its edges where the input has them, whatever their colours. ``halvings`` 2x2-pools
    both first: at full size fine texture (brush strokes, a checkerboard) counts as much as the
    outlines; at half size mostly the outlines do."""
    ya, yb = luminance(a), luminance(b)
    for _ in range(halvings):
        ya, yb = half_size(ya), half_size(yb)
    ea, eb = sobel_magnitude(ya).ravel(), sobel_magnitude(yb).ravel()
    ea, eb = ea - ea.mean(), eb - eb.mean()
    denom = float(np.sqrt((ea * ea).sum() * (eb * eb).sum()))
    return float((ea * eb).sum() / denom) if denom > 0 else 0.0


def mean_power_spectrum(images: Sequence[np.ndarray]) -> np.ndarray:
    """Mean 2D power spectrum of the luma (mean removed, Hann-windowed so the image borders do not
    smear power along the axes); unshifted FFT order. All images must have one size."""
    h, w = images[0].shape[:2]
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float64)
    total = np.zeros((h, w))
    for im in images:
        y = luminance(im).astype(np.float64)
        total += np.abs(np.fft.fft2((y - y.mean()) * window)) ** 2
    return total / len(images)


# Frequencies (cycles per pixel, rows then columns) where an upsampling by 2 (period 2) and two of
# them in a row (period 4) put the peaks of their checkerboard: a stride-2 transposed convolution's
# uneven overlap, or the aliasing a nearest-neighbour x2 resize leaves when the convolution after it
# does not smooth it away. JPEG's 8x8 blocks also land on these frequencies (multiples of 1/8).
GRID_PEAKS = {
    2: [(0.5, 0.0), (0.0, 0.5), (0.5, 0.5)],
    4: [(0.25, 0.0), (0.0, 0.25), (0.25, 0.25), (0.25, -0.25), (0.25, 0.5), (0.5, 0.25)],
}


def peak_ratio(power: np.ndarray, fy: float, fx: float, inner: int = 2, outer: int = 6) -> float:
    """Power at frequency (fy, fx) over the median of its neighbourhood: the square of half-side
    ``outer`` bins around it minus the square of half-side ``inner`` (the peak's own window leakage).
    The spectrum is periodic, so neighbourhoods wrap around at the Nyquist frequency."""
    h, w = power.shape
    cy, cx = int(round(fy * h)) % h, int(round(fx * w)) % w
    dy, dx = np.meshgrid(np.arange(-outer, outer + 1), np.arange(-outer, outer + 1), indexing="ij")
    ring = (np.abs(dy) > inner) | (np.abs(dx) > inner)
    around = power[(cy + dy[ring]) % h, (cx + dx[ring]) % w]
    return float(power[cy, cx] / max(float(np.median(around)), 1e-30))


def grid_peaks(power: np.ndarray) -> dict[int, float]:
    """For each period (2 and 4 px), the strongest of its peaks against its neighbourhood: about 1
    or below for natural images, tens for a visible checkerboard."""
    return {period: max(peak_ratio(power, fy, fx) for fy, fx in where) for period, where in GRID_PEAKS.items()}


def grain_ratio(power: np.ndarray, fy: float, fx: float, window: int = 3, inner: int = 6, outer: int = 12) -> float:
    """Mean power in the square of half-side ``window`` bins around frequency (fy, fx), the exact bin
    included, over the median power of the ring beyond it (half-side ``inner`` to ``outer``). A
    notch filter zeroes the exact bin, and a grain whose period or phase drifts over the image puts
    its energy beside that bin: both stay inside the window. The spectrum is periodic (wraps)."""
    h, w = power.shape
    cy, cx = int(round(fy * h)) % h, int(round(fx * w)) % w
    dy, dx = np.meshgrid(np.arange(-outer, outer + 1), np.arange(-outer, outer + 1), indexing="ij")
    cheb = np.maximum(np.abs(dy), np.abs(dx))
    near = power[(cy + dy[cheb <= window]) % h, (cx + dx[cheb <= window]) % w]
    ring = power[(cy + dy[cheb > inner]) % h, (cx + dx[cheb > inner]) % w]
    return float(near.mean() / max(float(np.median(ring)), 1e-30))


def grid_grain(power: np.ndarray) -> dict[int, float]:
    """For each period (2 and 4 px), the strongest grain around its lattice frequencies
    (``grain_ratio``): about 1 for natural images, well above for a grain, fixed or drifting."""
    return {period: max(grain_ratio(power, fy, fx) for fy, fx in where) for period, where in GRID_PEAKS.items()}

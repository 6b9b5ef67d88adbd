"""The metrics of benchmarks/model_quality.py on real photos and images made here, and the script
end to end on a small data folder of fixture images."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import PAINTINGS, PHOTOS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import model_quality  # noqa: E402
import quality_metrics as qm  # noqa: E402


def rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_held_out_is_every_tenth_name_in_sorted_order():
    names = [f"{i:05d}.jpg" for i in range(25)][::-1]  # the order listdir gives does not matter
    assert qm.held_out(names) == ["00000.jpg", "00010.jpg", "00020.jpg"]


def test_edge_correlation_is_one_with_itself_and_with_a_darker_copy_and_low_with_another_photo():
    a, b = rgb(PHOTOS[0]), rgb(PHOTOS[1])
    assert qm.edge_correlation(a, a) == pytest.approx(1.0, abs=1e-6)
    assert qm.edge_correlation(a, (a // 2).astype(np.uint8)) > 0.99  # colours change, edges stay
    assert qm.edge_correlation(a, b) < 0.5
    assert qm.edge_correlation(a, a, halvings=1) == pytest.approx(1.0, abs=1e-6)


def test_edge_correlation_at_half_size_sees_through_a_fine_checkerboard():
    a = rgb(PHOTOS[0])
    yy, xx = np.mgrid[:a.shape[0], :a.shape[1]]
    # 2x2 squares (period 4): Sobel's [-1, 0, 1] is blind to a 1-px checkerboard, not to this one
    noisy = with_pattern(a, np.where((yy // 2 + xx // 2) % 2 == 0, 1.0, -1.0), 12)
    assert qm.edge_correlation(a, noisy) < 0.95
    assert qm.edge_correlation(a, noisy, halvings=1) > 0.99


def with_pattern(photo: np.ndarray, pattern: np.ndarray, amplitude: float) -> np.ndarray:
    return np.clip(photo.astype(np.float64) + amplitude * pattern[..., None], 0, 255).round().astype(np.uint8)


def test_grid_peaks_find_a_faint_checkerboard_that_the_photo_alone_does_not_have():
    photos = [rgb(p) for p in PHOTOS]
    h, w = photos[0].shape[:2]
    yy, xx = np.mgrid[:h, :w]
    checker = np.where((yy + xx) % 2 == 0, 1.0, -1.0)  # period 2 on both axes
    stripes4 = np.where(xx % 4 < 2, 1.0, -1.0)  # period 4 along x: what two upsamplings leave
    clean = qm.grid_peaks(qm.mean_power_spectrum(photos))
    assert clean[2] < 3 and clean[4] < 3
    # +-2 grey levels: barely visible, yet tens of times the neighbourhood
    marked = qm.grid_peaks(qm.mean_power_spectrum([with_pattern(p, checker, 2) for p in photos]))
    assert marked[2] > 10 * clean[2]
    marked4 = qm.grid_peaks(qm.mean_power_spectrum([with_pattern(p, stripes4, 2) for p in photos]))
    assert marked4[4] > 10 * clean[4]


def test_frechet_distance_is_zero_for_one_set_and_the_squared_shift_for_a_moved_one():
    x = np.random.default_rng(0).normal(size=(200, 5))
    assert qm.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([3.0, 0.0, -4.0, 0.0, 0.0])
    assert qm.frechet_distance(x, x + shift) == pytest.approx(25.0, abs=1e-6)
    # a wider spread counts too: scaling by 2 adds tr(S) (sqrt(S * 4S) = 2S)
    s = np.cov(x, rowvar=False)
    assert qm.frechet_distance(x, 2 * x) == pytest.approx(np.trace(s) + float((x.mean(0) ** 2).sum()), rel=1e-6)


def test_features_are_finite_and_tell_paintings_from_photos_on_real_images():
    f_paint = qm.features([rgb(p) for p in PAINTINGS])
    f_photo = qm.features([rgb(p) for p in PHOTOS])
    assert np.isfinite(f_paint).all() and np.isfinite(f_photo).all()
    assert f_paint.shape[1] == f_photo.shape[1]
    scale = qm.Standardizer.fit(np.concatenate([f_paint, f_photo]))
    # the photos' mean is nearer the photos than the paintings' mean, and the other way round
    mp, mf = scale(f_paint).mean(0), scale(f_photo).mean(0)
    assert np.linalg.norm(scale(f_paint) - mp, axis=1).mean() < np.linalg.norm(scale(f_paint) - mf, axis=1).mean()


def test_classifier_separates_two_clouds_and_reports_what_it_chose():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 6)) + np.array([4.0, 0, 0, 0, 0, 0])  # 4 sd apart: about 2% overlap
    b = rng.normal(size=(90, 6))
    clf = qm.train_classifier(a[::2], b[::2])
    assert clf.says_painting(a[1::2]).mean() > 0.9
    assert clf.says_painting(b[1::2]).mean() < 0.1
    assert clf.l2 in (1e-3, 1e-2, 1e-1, 1.0)


@pytest.fixture
def data_folder(tmp_path: Path) -> Path:
    """monet2photo-like folders whose held-out files (every 10th) are the fixture images: 4 photos
    and 3 paintings, the rest links to them that training would use."""
    for sub, images in (("trainB", PHOTOS), ("trainA", PAINTINGS)):
        (tmp_path / sub).mkdir()
        for i in range(10 * len(images)):
            (tmp_path / sub / f"{i:05d}.jpg").symlink_to(images[(i // 10) if i % 10 == 0 else 0].resolve())
    return tmp_path


def test_script_reports_reference_rows_and_a_generator_and_names_a_damaged_one(data_folder, tmp_path,
                                                                             tiny_generator, capsys):
    gen = tmp_path / "tiny.pth"
    torch.save(tiny_generator.state_dict(), gen)
    broken = tmp_path / "broken.pth"
    broken.write_bytes(gen.read_bytes()[:1000])  # a snapshot caught mid-copy
    md = tmp_path / "out" / "table.md"
    sheet = tmp_path / "sheet.png"
    code = model_quality.main([str(gen), str(broken), "--data", str(data_folder), "--markdown", str(md),
                               "--sheet", str(sheet), "--sheet-photos", str(PHOTOS[0]), str(PAINTINGS[0])])
    out, err = capsys.readouterr()
    assert code == 1  # one generator failed, the rest was measured
    assert "broken.pth" in err and "not a PyTorch weights file" in err
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in out.splitlines() if line.startswith("| ") and "---" not in line}
    assert set(rows) == {"model", "photos unchanged", "paintings", "tiny"}
    # photos compared with themselves: same edges, FD ratio 1
    assert rows["photos unchanged"][2:5] == ["1.00", "1.000", "1.000"]
    assert float(rows["tiny"][1]) > 0 and -1 <= float(rows["tiny"][3]) <= 1
    assert "4 photos" in out and "3 paintings" in out and "load average" in out
    assert md.read_text(encoding="utf-8") in out
    with Image.open(sheet) as im:  # two columns; two bands (input, tiny), each a label over images
        assert im.width > 2 * 256 and im.height > 2 * 256

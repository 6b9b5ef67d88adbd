"""The metrics of benchmarks/model_quality.py on real photos and images made here, and the script
end to end on a small data folder of fixture images."""
from __future__ import annotations

import argparse
import json
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


def test_validation_and_test_splits_alternate_by_name_and_share_nothing():
    names = [f"{i:05d}.jpg" for i in range(0, 70, 10)][::-1]
    val, test = qm.split(names, "val"), qm.split(names, "test")
    assert val == ["00000.jpg", "00020.jpg", "00040.jpg", "00060.jpg"]
    assert test == ["00010.jpg", "00030.jpg", "00050.jpg"]
    assert not set(val) & set(test) and sorted(val + test) == sorted(names)
    with pytest.raises(ValueError):
        qm.split(names, "train")


def test_colour_correlation_is_one_for_identity_and_falls_when_hues_are_swapped():
    photos = [rgb(p) for p in PHOTOS]
    for a in photos:
        assert qm.colour_correlation(a, a) == pytest.approx(1.0, abs=1e-9)
        assert qm.colour_correlation(a, (a * 0.8).astype(np.uint8)) > 0.95  # darker: same layout
    # red and blue swapped: orange turns blue, the layout of hues is lost or reversed
    swapped = [qm.colour_correlation(a, np.ascontiguousarray(a[..., ::-1])) for a in photos]
    assert max(swapped) < 0.5 and np.mean(swapped) < 0.0
    grey = np.repeat(photos[0].mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    assert np.isnan(qm.colour_correlation(grey, photos[0]))  # no colour layout to keep
    assert qm.colour_correlation(photos[0], np.full_like(photos[0], 128)) == 0.0  # all colour lost


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


def test_grain_window_catches_a_drifting_grain_that_the_exact_bin_misses():
    photos = [rgb(p) for p in PHOTOS]
    h, w = photos[0].shape[:2]
    yy, xx = np.mgrid[:h, :w]
    # a period-2 grain whose phase drifts by two full turns across the width: its energy sits two
    # bins beside the lattice frequency, where the Hann window leaves the exact bin empty (as a
    # notch would)
    drifting = np.cos(np.pi * xx + 2 * np.pi * 2 * xx / w)
    clean = qm.mean_power_spectrum(photos)
    marked = qm.mean_power_spectrum([with_pattern(p, drifting, 2) for p in photos])
    assert qm.grid_peaks(marked)[2] < 1.5 * qm.grid_peaks(clean)[2]  # the exact bin: nothing to see
    assert qm.grid_grain(marked)[2] > 10 * qm.grid_grain(clean)[2]
    assert qm.grid_grain(clean)[2] < 3 and qm.grid_grain(clean)[4] < 3
    # a grain at the exact frequency is caught too
    fixed = qm.mean_power_spectrum([with_pattern(p, np.cos(np.pi * xx), 2) for p in photos])
    assert qm.grid_grain(fixed)[2] > 10 * qm.grid_grain(clean)[2]


def test_random_feature_distance_is_zero_for_the_paintings_themselves_and_larger_for_photos():
    paintings, photos = [rgb(p) for p in PAINTINGS], [rgb(p) for p in PHOTOS]
    ra, rp = qm.random_features(paintings), qm.random_features(photos)
    assert ra.shape == (len(paintings), 57) and np.isfinite(ra).all() and np.isfinite(rp).all()
    assert np.array_equal(qm.random_features(paintings[:1]), ra[:1])  # a fixed network
    scale = qm.Standardizer.fit(np.concatenate([rp, ra]))
    assert qm.frechet_distance(scale(ra), scale(ra)) == pytest.approx(0.0, abs=1e-3)
    assert qm.frechet_distance(scale(rp), scale(ra)) > 10.0


def test_frechet_distance_is_zero_for_one_set_and_the_squared_shift_for_a_moved_one():
    x = np.random.default_rng(0).normal(size=(200, 5))
    assert qm.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([3.0, 0.0, -4.0, 0.0, 0.0])
    assert qm.frechet_distance(x, x + shift) == pytest.approx(25.0, abs=1e-6)
    # a wider spread counts too: scaling by 2 adds tr(S) (sqrt(S * 4S) = 2S)
    s = np.cov(x, rowvar=False)
    assert qm.frechet_distance(x, 2 * x) == pytest.approx(np.trace(s) + float((x.mean(0) ** 2).sum()), rel=1e-6)


def test_kernel_distance_has_no_floor_where_the_frechet_distance_has_one():
    """Two samples of one distribution, 54 rows of 20 features each (the paintings' halves): the
    Frechet distance stays well above 0 (its bias), the kernel distance averages 0; a shifted sample
    stands far out of the kernel distance's noise."""
    rng = np.random.default_rng(0)
    same = [(rng.normal(size=(54, 20)), rng.normal(size=(54, 20))) for _ in range(40)]
    kd = np.array([qm.kernel_distance(a, b) for a, b in same])
    fd = np.array([qm.frechet_distance(a, b) for a, b in same])
    assert abs(kd.mean()) < 3 * kd.std() / np.sqrt(len(kd))  # unbiased: 0 within its standard error
    assert fd.min() > 0 and fd.mean() > 10 * fd.std() / np.sqrt(len(fd))
    a, b = same[0]
    assert qm.kernel_distance(a, b) == pytest.approx(qm.kernel_distance(b, a))
    assert qm.kernel_distance(a, b + 0.5) > kd.mean() + 5 * kd.std()
    with pytest.raises(ValueError):
        qm.kernel_distance(a[:1], b)


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


def test_look_parses_like_the_convert_options():
    from cyclegan_convert.look import Look

    assert model_quality.parse_look("0.5,1") == Look(0.5, 1.0)
    assert model_quality.parse_look("keep,0.6") == Look(1.0, 0.6)
    assert model_quality.parse_look("0.5,1,0.5") == Look(0.5, 1.0, 0.5)
    assert model_quality.parse_look("0.5,1,0.5,1") == Look(0.5, 1.0, 0.5, 1.0)
    assert model_quality.parse_look("0.5,1,0.5,1,1") == Look(0.5, 1.0, 0.5, 1.0, 1.0)
    for bad in ("0.5", "2,1", "0,x", "0,1.5", "0,1,-1", "0,1,0,2", "0,1,0,0,2", "0,1,1,1,1,1"):
        with pytest.raises(argparse.ArgumentTypeError, match="COLORS,STRENGTH|STRENGTH|fraction|strength|strokes|highlights|edges"):
            model_quality.parse_look(bad)


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
                               "--look", "0,1", "--look", "keep,1",
                               "--sheet", str(sheet), "--sheet-photos", str(PHOTOS[0]), str(PAINTINGS[0])])
    out, err = capsys.readouterr()
    assert code == 1  # one generator failed, the rest was measured
    assert "broken.pth" in err and "not a PyTorch weights file" in err
    table = [[c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines()
             if line.startswith("| ") and "---" not in line]
    rows = {r[0]: dict(zip(table[0], r)) for r in table[1:]}
    raw, keep = "tiny: colors model, strength 1", "tiny: colors keep, strength 1"
    assert set(rows) == {"photos unchanged", "paintings", raw, keep}
    # photos compared with themselves: same edges and colours, distance ratios 1
    assert [rows["photos unchanged"][c] for c in ("FD ratio", "KD ratio", "RF ratio", "colour corr", "edge corr")] == \
        ["1.00", "1.00", "1.00", "1.000", "1.000"]
    assert rows["paintings"]["RF ratio"] == "-" and float(rows["paintings"]["2-px grain"]) > 0
    assert float(rows[raw]["FD to paintings"]) > 0 and -1 <= float(rows[raw]["edge corr"]) <= 1
    assert float(rows[keep]["colour corr"]) > 0.9 > float(rows[raw]["colour corr"])  # the look was applied
    # the default split is the test half: the 2nd and 4th held-out photos of 4
    assert "TEST split" in out and "2 photos" in out and "3 paintings" in out and "load average" in out
    assert md.read_text(encoding="utf-8") in out
    with Image.open(sheet) as im:  # two columns; two bands (input, tiny), each a label over images
        assert im.width > 2 * 256 and im.height > 2 * 256


def test_zoom_converts_the_enlarged_photos_and_measures_their_centres(data_folder, tiny_generator):
    """--zoom 2: the generator converts each photo enlarged to 512 px and every measure reads the
    central 256 px of input and output alike (a look that keeps the photo's colours then keeps the
    colour layout there); the photos' own row stays the reference (ratios 1)."""
    from cyclegan_convert.imaging import resize_rgb
    from cyclegan_convert.look import Look

    files = model_quality.split_files(data_folder / "trainB", "val")
    paintings = model_quality.held_out_files(data_folder / "trainA")
    ref = model_quality.reference(files, paintings, zoom=2.0)
    photo = model_quality.read_images(files[:1])[0]
    assert ref.inputs[0].shape == (512, 512, 3)
    assert np.array_equal(ref.photos[0], resize_rgb(photo, 512, 512)[128:384, 128:384])
    rows = model_quality.measure("tiny", tiny_generator, ref, [Look(1.0, 1.0)], batch=2)
    assert rows[0].colour > 0.95, rows[0].colour  # the output's centre against the input's centre
    unchanged = model_quality.reference_rows(ref)[0]
    assert (unchanged.fd_ratio, unchanged.colour) == (1.0, 1.0)
    with pytest.raises(SystemExit):
        model_quality.parse_args(["g.pth", "--zoom", "0.5"])


def test_the_sheet_defaults_to_the_named_hard_cases_and_names_a_missing_one(tmp_path, monkeypatch):
    monkeypatch.setattr(model_quality, "shared_data", lambda *parts: tmp_path.joinpath(*parts))
    for _, rel in model_quality.HARD_CASES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(PHOTOS[0].read_bytes())
    cases = model_quality.sheet_photos([])
    assert [c for c, _ in cases][:2] == ["sunset, sun in frame", "orange flower"]
    assert [p for _, p in cases] == [tmp_path / rel for _, rel in model_quality.HARD_CASES]
    assert model_quality.sheet_photos([PHOTOS[0]]) == [(PHOTOS[0].stem, PHOTOS[0])]  # given: taken as is
    (tmp_path / model_quality.HARD_CASES[1][1]).unlink()
    with pytest.raises(model_quality.DataError, match=r"FreshFlower.jpg: missing, .*'orange flower'"):
        model_quality.sheet_photos([])


def test_sheet_captions_each_column_above_its_input():
    grey, white = np.full((40, 60, 3), 128, np.uint8), np.full((40, 30, 3), 255, np.uint8)
    plain = model_quality.contact_sheet([grey, white], [("net", [grey, white])])
    captioned = model_quality.contact_sheet([grey, white], [("net", [grey, white])], ["sunset", "sky"])
    assert captioned.height == plain.height + 20 and captioned.width == plain.width
    band = np.asarray(captioned)[4:22, 4:64]  # the first caption's strip
    assert band.min() < 100  # text drawn in black


def test_the_splits_take_alternate_held_out_photos(data_folder):
    val = model_quality.split_files(data_folder / "trainB", "val")
    test = model_quality.split_files(data_folder / "trainB", "test")
    assert [p.name for p in val] == ["00000.jpg", "00020.jpg"]
    assert [p.name for p in test] == ["00010.jpg", "00030.jpg"]


def test_notch_option_measures_a_snapshot_as_it_would_be_bundled(tmp_path, tiny_generator):
    """--notch SIGMA: a generator file without a lattice notch is measured with one added (the
    notch on its output, as `train.bundle --notch` bundles it); a file with its own keeps it."""
    from cyclegan_convert.networks import LatticeNotch, ResnetGenerator, init_weights

    plain = tmp_path / "snapshot.pth"
    torch.save(tiny_generator.state_dict(), plain)
    torch.manual_seed(1)
    own = tmp_path / "own.pth"
    torch.save(init_weights(ResnetGenerator(ngf=8, n_blocks=2, notch=(4, 16.0))).state_dict(), own)
    loaded, failed = model_quality.load_generators(model_quality.resolve_generators([plain, own], []), 8.0)
    assert failed == 0
    (_, snap), (_, kept) = loaded
    assert snap.notch == (4, 8.0) and kept.notch == (4, 16.0)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(snap(x), LatticeNotch(4, 8.0)(tiny_generator(x)), atol=1e-6)
    legacy = tmp_path / "legacy.pth"  # the original's old checkpoints carry InstanceNorm buffers
    torch.save({**tiny_generator.state_dict(), "model.2.running_mean": torch.zeros(8)}, legacy)
    loaded, failed = model_quality.load_generators(model_quality.resolve_generators([legacy], []), 8.0)
    assert failed == 0 and loaded[0][1].notch == (4, 8.0)


def test_blind_tiles_hide_the_key_and_score_a_judge(data_folder, tmp_path, tiny_generator, capsys):
    """``blind_tiles.py make`` writes shuffled tiles with the key beside them, the paintings cut as
    the converted photos are; ``score`` counts a perfect judge 100%, one who calls everything Monet 50%
    (all paintings right, no converted one), and a missing answer as wrong."""
    import blind_tiles

    gen = tmp_path / "tiny.pth"
    torch.save(tiny_generator.state_dict(), gen)
    out = tmp_path / "blind"
    assert blind_tiles.main(["make", str(out), str(gen), "--data", str(data_folder), "--n", "2"]) == 0
    tiles = sorted((out / "tiles").iterdir())
    assert [t.name for t in tiles] == ["tile_01.png", "tile_02.png", "tile_03.png", "tile_04.png"]
    key = json.loads((out / "key.json").read_text())["tiles"]
    assert sorted(key.values()) == ["converted", "converted", "monet", "monet"]
    painting_tiles = [blind_tiles.centre_tile(rgb(p)) for p in PAINTINGS]
    for t in tiles:
        px = rgb(t)
        assert px.shape == (256, 256, 3)
        is_painting = any(np.array_equal(px, p) for p in painting_tiles)
        assert is_painting == (key[t.name] == "monet")  # the key says what each tile is

    def scored(lines: str) -> str:
        (tmp_path / "answers.txt").write_text(lines)
        assert blind_tiles.main(["score", str(out), str(tmp_path / "answers.txt")]) == 0
        return capsys.readouterr().out

    with pytest.raises(SystemExit, match="not empty"):  # a second check into the same folder would mix tiles
        blind_tiles.main(["make", str(out), str(gen), "--data", str(data_folder), "--n", "1"])
    capsys.readouterr()
    perfect = "\n".join(f"{name}: {kind.upper()} (sure)" for name, kind in key.items())
    said = scored(perfect)
    assert "accuracy 100% of 4 tiles" in said and "sure on 100%, right on 100%" in said
    all_monet = scored("\n".join(f"{name} monet" for name in key))
    assert "accuracy 50%" in all_monet and "Monet 100%, converted 0%" in all_monet
    one_missing = "\n".join(f"{name} {kind}" for name, kind in list(key.items())[1:])
    assert "accuracy 75%" in scored(one_missing) and "25% unanswered" in scored(one_missing)
    first, *rest = key.items()
    ambiguous = "\n".join([f"{first[0]} monet converted sure"] + [f"{n} {k}" for n, k in rest])
    assert "accuracy 75%" in scored(ambiguous)  # both kinds on one line: not an answer


def test_same_kind_floor_is_zero_for_the_photos_themselves_and_one_for_the_paintings():
    """The floor line compares another set of photos with the split's: the same photos read 0, the
    paintings in their place read exactly the photos' own distance (ratio 1)."""
    photos, paintings = list(PHOTOS[:3]), list(PAINTINGS[:3])
    ref = model_quality.reference(photos, paintings)
    assert model_quality.same_kind_floor(ref, photos) == pytest.approx((0.0, 0.0), abs=1e-6)
    assert model_quality.same_kind_floor(ref, paintings) == pytest.approx((1.0, 1.0), rel=1e-6)

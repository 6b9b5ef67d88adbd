"""Real files that phones, cameras and editors made (tests/corpus; where each came from, its licence
and what is expected of it in tests/corpus/manifest.json), all through one `ccv convert`, and
every outcome checked: converted upright at its size with its colours and metadata right, or failed
with one clear line; videos converted with their rotation, timing, audio and telemetry, or HDR
refused. Damaged copies made here from those files go along.

The expected orientations are 16x16 luminance thumbnails of outputs that were checked by eye (an
arrow pointing up, a lamp standing, the words top/left/right/bottom where they belong); the colours
are compared with a LittleCMS conversion made here. Run at --strength 0, where the output is the
colour-managed input, so neither depends on the model.
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from typer.testing import CliRunner

from cyclegan_convert.cli.app import app
from cyclegan_convert.imaging import ORIENTATION_TAG

pytestmark = pytest.mark.bundled  # the bundled model, as a new user has it

CORPUS = Path(__file__).parent / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
VIDEOS = [e for e in MANIFEST if e["file"].endswith(".mp4")]
PHOTOS = [e for e in MANIFEST if e not in VIDEOS]
CONVERTED = [e for e in PHOTOS if e["expect"]["outcome"] == "converted"]
FAILED = [e for e in PHOTOS if e["expect"]["outcome"] == "failed"]
# the eight ways a photo can be turned and mirrored (the identity first)
TURNS = [None, *Image.Transpose]
THUMB_TOLERANCE = 2.0  # mean levels over the 16x16 thumbnail: decoders' versions differ by less

# copies made here: (name, source file, bytes kept or None for all, the line expected)
DAMAGED = [("cut.jpg", "canon_hdr_NO.jpg", 0.4, "truncated"),
           ("cut.heic", "arrow.heic", 0.5, "truncated"),  # libheif alone painted the missing half green
           ("IMG_0001.nef", "32-lens_data.jpeg", None, "content is JPEG")]


def _thumb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L").resize((16, 16), Image.Resampling.BOX)).astype(float)


def _turned(img: Image.Image, turn) -> Image.Image:
    return img if turn is None else img.transpose(turn)


def _profile(icc: bytes) -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(io.BytesIO(icc))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The whole photo corpus through one `ccv convert`, with a model store of its own (the
    per-test one is not made yet at module scope)."""
    src, out = tmp_path_factory.mktemp("corpus"), tmp_path_factory.mktemp("out")
    for e in PHOTOS:
        shutil.copy(CORPUS / e["file"], src / e["file"])
    for name, origin, kept, _ in DAMAGED:
        data = (CORPUS / origin).read_bytes()
        (src / name).write_bytes(data[:int(len(data) * kept)] if kept else data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CCV_HOME", str(tmp_path_factory.mktemp("ccv_home")))
        r = CliRunner().invoke(app, ["convert", str(src), "-o", str(out), "--max-side", "512", "--strength", "0",
                                     "--ext", "png"])
    return r, src, out


def test_every_file_is_accounted_for_and_each_failure_is_one_clear_line(run):
    r, src, out = run
    assert "Traceback" not in r.output
    assert r.exit_code == 1  # some files failed, listed
    failed = [e["file"] for e in FAILED] + [name for name, _, kept, _ in DAMAGED if kept]
    listed = [line.split("\t")[1] for line in (out / "ccv-failures.txt").read_text().splitlines()]
    assert sorted(line.split(": ")[0] for line in listed) == sorted(str(src / f) for f in failed)
    for e in FAILED:
        assert any(line.startswith(f"{src / e['file']}: {e['expect']['reason']}") for line in listed), e["file"]
    for name, _, kept, reason in DAMAGED:
        if kept:
            assert any(line.startswith(f"{src / name}: ") and reason in line for line in listed), name
    made = sorted(p.name for p in out.glob("*.png"))
    assert made == sorted([Path(e["file"]).stem + ".png" for e in CONVERTED] + ["IMG_0001.png"])
    assert "IMG_0001.nef" in r.output and "content is JPEG" in r.output  # named as RAW, read as what it is


@pytest.mark.parametrize("entry", CONVERTED, ids=lambda e: e["file"])
def test_converted_upright_at_its_size(run, entry):
    """Each output has the photo's upright size and looks like the checked thumbnail; every other way
    of turning or mirroring it that the picture can tell apart (not a black frame's) is far off."""
    _, _, out = run
    want = entry["expect"]
    with Image.open(out / (Path(entry["file"]).stem + ".png")) as img:
        assert list(img.size) == want["size"]
        got, expected = _thumb(img), np.asarray(want["upright"], float).reshape(16, 16)
        assert np.abs(got - expected).mean() <= THUMB_TOLERANCE
        for turn in TURNS[1:]:
            tellable = np.abs(_thumb(_turned(Image.fromarray(expected.astype(np.uint8)), turn)) - expected).mean()
            if tellable > 3 * THUMB_TOLERANCE:  # the picture is not the same turned this way
                assert np.abs(_thumb(img.transpose(turn)) - expected).mean() > 2 * THUMB_TOLERANCE, turn


@pytest.mark.parametrize("name, far_unconverted", [("arrow.heic", False), ("sample-xyb.jpg", True)])
def test_colour_managed_inputs_match_littlecms(run, name, far_unconverted):
    """Display P3 (iPhone) and JPEG XL's XYB: the output is the photo in sRGB within 2 levels on
    average of LittleCMS's conversion (perceptual intent) of the decoded pixels, and says sRGB. The
    XYB pixels unconverted are 25 levels off (what the check would catch); the iPhone's grey paper
    looks the same in P3 and sRGB, so there the check shows only that nothing else went wrong."""
    _, src, out = run
    with Image.open(src / name) as img:
        icc = img.info["icc_profile"]
        plain = img.convert("RGB")
    ref = ImageCms.profileToProfile(plain, _profile(icc), ImageCms.createProfile("sRGB"),
                                    renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB")
    with Image.open(out / (Path(name).stem + ".png")) as o:
        assert ImageCms.getProfileDescription(_profile(o.info["icc_profile"])).startswith("sRGB")
        got = np.asarray(o.convert("RGB"), float)
        # compared in the output's orientation (checked above)
        turn = min(TURNS, key=lambda t: np.abs(_thumb(_turned(ref, t)) - _thumb(o)).mean())
    ref_a, plain_a = (np.asarray(_turned(i, turn), float) for i in (ref, plain))
    assert np.abs(got - ref_a).mean() <= 2.0
    assert (np.abs(plain_a - ref_a).mean() > 10.0) == far_unconverted


def test_metadata_the_outputs_carry(run):
    """EXIF with the orientation reset (the pixels are upright), XMP kept, and none of an Ultra HDR
    JPEG's XMP that points at what the output does not hold (its gain map, its extended XMP)."""
    _, _, out = run
    for name in ("canon_hdr_NO", "32-lens_data"):
        with Image.open(out / f"{name}.png") as o:
            assert o.getexif().get(ORIENTATION_TAG) == 1
            assert o.info.get("XML:com.adobe.xmp") or o.info.get("xmp")
    with Image.open(CORPUS / "pixel_8.jpg") as i, Image.open(out / "pixel_8.png") as o:
        before, after = i.info["xmp"], o.info.get("XML:com.adobe.xmp", o.info.get("xmp", b""))
        after = after.encode() if isinstance(after, str) else after
        for gone in (b"GainMap", b"Container:Directory", b"hdrgm:Version", b"HasExtendedXMP"):
            assert gone in before and gone not in after, gone


def _streams(path: Path) -> dict:
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        out = {"frames": sum(1 for _ in c.decode(v)), "duration": float(c.duration or 0) / 1e6}
        c.seek(0)
        out["audio"] = [bytes(p) for p in c.demux(c.streams.audio) if p.size] if c.streams.audio else []
    with av.open(str(path)) as c:
        data = [s for s in c.streams if s.type == "data" and s.metadata.get("handler_name", "").strip() == "GoPro MET"]
        out["telemetry"] = [bytes(p) for p in c.demux(data) if p.size] if data else []
    return out


@pytest.mark.parametrize("entry", VIDEOS, ids=lambda e: e["file"])
def test_real_videos(entry, tmp_path):
    """A Samsung 4K clip (turned 90 degrees, frame times that vary) and a GoPro's (telemetry track):
    every frame of the first second, the rotation, the duration, the audio packets byte for byte and
    the GoPro's GPS and motion data come through. An iPhone's and an Android phone's HLG clips are
    refused with one line (exit 2), as HDR is."""
    from cyclegan_convert.video_io import probe

    src, out = tmp_path / entry["file"], tmp_path / "out.mp4"
    shutil.copy(CORPUS / entry["file"], src)
    r = CliRunner().invoke(app, ["video", str(src), "-o", str(out), "--max-side", "96", "--duration", "1"])
    want = entry["expect"]
    assert "Traceback" not in r.output
    if want["outcome"] == "refused":
        assert r.exit_code == 2 and want["reason"] in r.output and not out.exists()
        return
    assert r.exit_code == 0, r.output
    assert probe(src).rotation == probe(out).rotation == want["rotation"]
    got, given = _streams(out), _streams(src)
    kept = given["duration"] if given["duration"] <= 1.0 else 1.0  # --duration 1
    assert abs(got["duration"] - kept) < 0.05
    if given["duration"] <= 1.0:
        assert got["frames"] == given["frames"] and got["audio"] == given["audio"]
    else:
        assert got["frames"] == 30 and got["audio"] == given["audio"][:len(got["audio"])] and len(got["audio"]) > 40
    if "telemetry" in want:
        assert got["telemetry"] and got["telemetry"] == given["telemetry"][:len(got["telemetry"])]

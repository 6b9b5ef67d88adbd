"""cyclegan_convert.download against a local HTTP server: full, resumed, restarted, refused, offline."""
from __future__ import annotations

import os

import pytest

from cyclegan_convert.download import OfflineError, download
from cyclegan_convert.errors import DownloadError

from pretrained_server import free_closed_port, serving

DATA = os.urandom(300_000)  # several chunks


def test_full_download_reports_progress(tmp_path):
    calls = []
    with serving({"f.bin": DATA}) as srv:
        part = download(f"{srv.url}/f.bin", tmp_path / "f.bin.part",
                        progress=lambda done, total, speed: calls.append((done, total, speed)))
    assert part.read_bytes() == DATA
    assert calls[0][:2] == (0, len(DATA)) and calls[-1][:2] == (len(DATA), len(DATA))
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:])) and calls[-1][2] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin.part"]  # the resume sidecar is gone
    assert srv.requests == [("/pretrained/f.bin", None, None)]


def test_dropped_connection_resumes_with_range_in_the_same_run(tmp_path):
    notices = []
    with serving({"f.bin": DATA}) as srv:
        srv.drop_once.add("f.bin")
        part = download(f"{srv.url}/f.bin", tmp_path / "f.part", retries=2, backoff=0, on_notice=notices.append)
    assert part.read_bytes() == DATA
    (_, r1, _), (_, r2, if_range) = srv.requests
    assert r1 is None and r2 == f"bytes={len(DATA) // 2}-" and if_range  # resumed from the half, same version
    assert len(notices) == 1 and "resuming" in notices[0]


def test_interrupted_run_leaves_part_that_next_run_resumes(tmp_path):
    part = tmp_path / "f.part"
    with serving({"f.bin": DATA}) as srv:
        srv.drop_once.add("f.bin")
        with pytest.raises(DownloadError, match="run the same command again to resume"):
            download(f"{srv.url}/f.bin", part, retries=0)
        assert part.stat().st_size == len(DATA) // 2
        download(f"{srv.url}/f.bin", part, retries=0)
    assert part.read_bytes() == DATA
    assert srv.requests[1][1] == f"bytes={len(DATA) // 2}-"


def test_complete_part_from_a_run_that_died_before_cleanup_is_accepted(tmp_path):
    part = tmp_path / "f.part"
    with serving({"f.bin": DATA}) as srv:
        srv.drop_once.add("f.bin")
        with pytest.raises(DownloadError):
            download(f"{srv.url}/f.bin", part, retries=0)
        with open(part, "ab") as f:  # the rest arrived, then the process died before tidying up
            f.write(DATA[part.stat().st_size:])
        download(f"{srv.url}/f.bin", part, retries=0)  # the server answers 416: nothing left to send
    assert part.read_bytes() == DATA
    assert srv.requests[-1][1] == f"bytes={len(DATA)}-"


def test_changed_file_on_server_restarts_instead_of_mixing_versions(tmp_path):
    part = tmp_path / "f.part"
    new = os.urandom(len(DATA))
    with serving({"f.bin": DATA}) as srv:
        srv.drop_once.add("f.bin")
        with pytest.raises(DownloadError):
            download(f"{srv.url}/f.bin", part, retries=0)
        srv.files["f.bin"] = new  # If-Range no longer matches: the server sends the whole new file
        download(f"{srv.url}/f.bin", part, retries=0)
    assert part.read_bytes() == new


def test_server_without_range_support_restarts_from_zero(tmp_path):
    part = tmp_path / "f.part"
    with serving({"f.bin": DATA}) as srv:
        srv.drop_once.add("f.bin")
        srv.no_range.add("f.bin")
        download(f"{srv.url}/f.bin", part, retries=1, backoff=0)
    assert part.read_bytes() == DATA


def test_part_of_unknown_origin_is_not_resumed(tmp_path):
    part = tmp_path / "f.part"
    part.write_bytes(b"left over from who knows what")  # no sidecar saying which URL it came from
    with serving({"f.bin": DATA}) as srv:
        download(f"{srv.url}/f.bin", part)
    assert part.read_bytes() == DATA and srv.requests[0][1] is None


def test_http_error_is_one_line(tmp_path):
    with serving({}) as srv, pytest.raises(DownloadError, match="404") as err:
        download(f"{srv.url}/missing.pth", tmp_path / "m.part")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "m.part").exists()


def test_offline_is_one_line(tmp_path):
    url = f"http://127.0.0.1:{free_closed_port()}/f.bin"
    with pytest.raises(OfflineError, match="cannot reach") as err:
        download(url, tmp_path / "f.part", retries=3, backoff=10)  # no retries wasted on a refused connection
    assert "\n" not in str(err.value) and url in str(err.value)

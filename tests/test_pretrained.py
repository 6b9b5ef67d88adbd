"""`pull` and the default model's first-use download, against a local HTTP server."""
from __future__ import annotations

import hashlib
import io
import logging
from datetime import datetime, timezone

import pytest
import torch

from cyclegan_convert import pretrained as pt
from cyclegan_convert.download import OfflineError
from cyclegan_convert.errors import DownloadError, UnknownModelError, UsageError
from cyclegan_convert.resolve import resolve_model
from cyclegan_convert.store import ModelEntry, ModelStore
from cyclegan_convert.weights import load_generator

from pretrained_server import free_closed_port, serving, tiny_generator_bytes

GEN = tiny_generator_bytes(with_legacy_buffers=True)


@pytest.fixture
def server(monkeypatch):
    with serving({"style_monet.pth": GEN, "horse2zebra.pth": GEN}) as srv:
        monkeypatch.setenv(pt.BASE_URL_ENV, srv.url)
        yield srv


@pytest.fixture
def store():
    return ModelStore(bundled_root=None)


def test_registry_has_the_18_originals_with_distinct_ids():
    assert len(pt.PRETRAINED) == 18
    assert len({p.id for p in pt.PRETRAINED.values()}) == 18  # one pull never replaces another
    assert pt.PRETRAINED["style_monet"].url(pt.DEFAULT_BASE_URL) == \
        "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/style_monet.pth"
    hz = pt.PRETRAINED["horse2zebra"]
    assert (hz.source, hz.target) == ("horse", "zebra")
    assert (pt.PRETRAINED["monet2photo"].source, pt.PRETRAINED["monet2photo"].target) == ("monet", "photo")
    assert pt.PRETRAINED["summer2winter_yosemite"].target == "winter"
    assert "Yosemite" in pt.PRETRAINED["summer2winter_yosemite"].note
    with pytest.raises(UnknownModelError, match="Did you mean horse2zebra"):
        pt.lookup("hrse2zebra")


def test_base_url_follows_environment(monkeypatch):
    monkeypatch.setenv(pt.BASE_URL_ENV, "http://mirror.example/cg/")
    assert pt.PRETRAINED["map2sat"].url() == "http://mirror.example/cg/map2sat.pth"


def test_pull_installs_a_checked_generator_with_its_card(server, store):
    seen = []
    entry = pt.pull("horse2zebra", store, progress=lambda d, t, s: seen.append((d, t)))
    assert (entry.target, entry.source, entry.origin, entry.ngf) == ("zebra", "horse", "pulled", 8)
    assert store.find("zebra").id == "horse2zebra"
    card = entry.card
    assert card["url"] == f"{server.url}/horse2zebra.pth"
    assert card["sha256"] == entry.sha256 == hashlib.sha256(GEN).hexdigest()
    assert card["size_bytes"] == len(GEN) and seen[-1] == (len(GEN), len(GEN))
    assert "BSD" in card["licence"]
    assert abs((datetime.now(timezone.utc) - datetime.fromisoformat(card["pulled"].replace("Z", "+00:00")))
               .total_seconds()) < 600
    assert entry.weights.read_bytes() == GEN  # the file as published, loadable by the original's script
    load_generator(entry.weights)
    assert not list((store.root / "downloads").glob("*.part*"))  # nothing unfinished left
    # a second pull is a no-op
    n = len(server.requests)
    assert pt.pull("horse2zebra", store).sha256 == entry.sha256 and len(server.requests) == n


def test_pull_resumes_after_a_dropped_connection(server, store):
    server.drop_once.add("horse2zebra.pth")
    entry = pt.pull("horse2zebra", store, retries=1)
    assert entry.weights.read_bytes() == GEN
    assert [r[1] for r in server.requests] == [None, f"bytes={len(GEN) // 2}-"]


@pytest.mark.parametrize("garbage", [b"<html><body>Service moved</body></html>" * 50, GEN[: len(GEN) // 3]],
                         ids=["html", "truncated-file"])
def test_garbage_from_server_installs_nothing(server, store, garbage):
    server.files["horse2zebra.pth"] = garbage
    with pytest.raises(DownloadError, match="not a CycleGAN generator.*nothing was installed") as err:
        pt.pull("horse2zebra", store)
    assert "\n" not in str(err.value)
    assert store.entries() == []
    leftovers = [p for p in store.root.rglob("*") if p.is_file() and p.suffix != ".lock"]
    assert leftovers == []  # no partial file that a later run would take for a complete one


def test_concurrent_pulls_download_once(server, store):
    import threading

    results, notices = [], []
    threads = [threading.Thread(target=lambda: results.append(pt.pull("horse2zebra", ModelStore(bundled_root=None),
                                                                      on_notice=notices.append)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len({r.sha256 for r in results}) == 1
    assert len(server.requests) == 1  # the others waited for the first, then found it installed
    assert store.find("zebra").weights.read_bytes() == GEN


def test_server_sending_a_discriminator_is_refused(server, store):
    from cyclegan_convert.networks import NLayerDiscriminator

    buf = io.BytesIO()
    torch.save(NLayerDiscriminator().state_dict(), buf)
    server.files["horse2zebra.pth"] = buf.getvalue()
    with pytest.raises(DownloadError, match="discriminator"):
        pt.pull("horse2zebra", store)
    assert store.entries() == []


def test_offline_pull_says_what_to_do(monkeypatch, store):
    monkeypatch.setenv(pt.BASE_URL_ENV, f"http://127.0.0.1:{free_closed_port()}/x")
    with pytest.raises(OfflineError) as err:
        pt.pull("horse2zebra", store)
    msg = str(err.value)
    assert "\n" not in msg and "ccv pull horse2zebra" in msg and "ccv import FILE --to zebra --from horse" in msg
    assert store.entries() == []


def test_pull_never_replaces_a_model_of_another_origin(server, store, tmp_path):
    w = tmp_path / "mine.pth"
    w.write_bytes(GEN)
    store.add(ModelEntry(target="zebra", source="horse", origin="trained", ngf=8), w)
    with pytest.raises(UsageError, match="already installed \\(trained\\).*--force"):
        pt.pull("horse2zebra", store)
    assert server.requests == [] and store.find("zebra").origin == "trained"
    assert pt.pull("horse2zebra", store, force=True).origin == "pulled"


# The default model: `--to monet` (or no --to) with no monet model fetches style_monet once.

def test_default_target_fetches_style_monet_on_first_use(server, store):
    notices = []
    ref = resolve_model(store=store, on_notice=notices.append)
    assert ref.kind == "pytorch" and ref.entry.id == "photo2monet" and ref.entry.card["name"] == "style_monet"
    assert len(notices) == 1 and "style_monet" in notices[0] and "\n" not in notices[0]
    load_generator(ref.path)
    n = len(server.requests)
    again = resolve_model(to="monet", from_="photo", store=store, on_notice=notices.append)
    assert again.path == ref.path and len(server.requests) == n and len(notices) == 1


def test_default_fetch_without_callback_logs_one_line(server, store, caplog):
    with caplog.at_level(logging.WARNING, logger="cyclegan_convert"):
        resolve_model(to="monet", store=store)
    assert [r.getMessage() for r in caplog.records if "style_monet" in r.getMessage()]


def test_default_fetch_offline_names_the_alternatives(monkeypatch, store):
    monkeypatch.setenv(pt.BASE_URL_ENV, f"http://127.0.0.1:{free_closed_port()}/x")
    with pytest.raises(DownloadError) as err:
        resolve_model(store=store, on_notice=lambda m: None)
    msg = str(err.value)
    assert "\n" not in msg and all(s in msg for s in ("ccv pull style_monet", "ccv import", "ccv train"))
    assert err.value.exit_code == 2


def test_no_fetch_for_other_targets_or_when_disabled(server, store, monkeypatch):
    with pytest.raises(UnknownModelError):
        resolve_model(to="zebra", store=store)
    with pytest.raises(UnknownModelError):
        resolve_model(to="monet", from_="sketch", store=store)
    monkeypatch.setenv("CCV_OFFLINE", "1")
    with pytest.raises(UnknownModelError, match="CCV_OFFLINE.*ccv pull style_monet"):
        resolve_model(store=store)
    assert server.requests == []


def test_existing_monet_model_is_used_without_download(server, store, tmp_path):
    w = tmp_path / "mine.pth"
    w.write_bytes(GEN)
    store.add(ModelEntry(target="monet", source="sketch", origin="trained", ngf=8), w)
    assert resolve_model(store=store).entry.id == "sketch2monet"
    assert server.requests == []

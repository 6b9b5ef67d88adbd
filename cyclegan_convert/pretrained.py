"""The 18 pretrained generators of the original CycleGAN project, and `ccv pull` as a function.

One explicit mapping: pretrained name -> source and target domain. ``style_monet`` turns photos into
Monet paintings (``--to monet``); ``X2Y`` turns X into Y (``--to Y --from X``). Several models share
the target ``photo``: ``--from`` chooses. No checksums are published upstream, so a pull records the
sha256 of what it received, and the file is checked by loading it as a generator before it is
installed.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from .download import OfflineError, ProgressFn, download, exclusive
from .errors import DownloadError, NotAGeneratorError, UnknownModelError, UsageError
from .store import ModelEntry, ModelStore, model_id

DEFAULT_BASE_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models"
BASE_URL_ENV = "CCV_PRETRAINED_URL"
UPSTREAM = "junyanz/pytorch-CycleGAN-and-pix2pix"
LICENCE_NOTE = (f"Released by the CycleGAN authors (Zhu, Park, Isola, Efros) with {UPSTREAM} under its BSD "
                "licence; the training images keep their own terms (e.g. Cityscapes: non-commercial use only).")


@dataclass(frozen=True)
class Pretrained:
    """One generator published by the original project."""

    name: str  # the upstream file name without .pth, which is what `ccv pull` takes
    source: str
    target: str
    description: str
    note: str = ""  # what a user should know beyond the domain names

    @property
    def id(self) -> str:
        return model_id(self.source, self.target)

    def url(self, base: Optional[str] = None) -> str:
        return f"{(base or base_url()).rstrip('/')}/{self.name}.pth"


def _p(name: str, source: str, target: str, description: str, note: str = "") -> tuple[str, Pretrained]:
    return name, Pretrained(name, source, target, description, note)


_YOSEMITE = "trained on Yosemite landscape photos (upstream name ends in _yosemite)"
_CITYSCAPES = "trained on Cityscapes street scenes; labels are Cityscapes colour maps"
_FACADES = "trained on the CMP Facades dataset; labels are its colour maps"
PRETRAINED: dict[str, Pretrained] = dict([
    _p("style_monet", "photo", "monet", "photo to Monet painting"),
    _p("style_cezanne", "photo", "cezanne", "photo to Cezanne painting"),
    _p("style_ukiyoe", "photo", "ukiyoe", "photo to ukiyo-e print"),
    _p("style_vangogh", "photo", "vangogh", "photo to Van Gogh painting"),
    _p("monet2photo", "monet", "photo", "Monet painting to photo"),
    _p("horse2zebra", "horse", "zebra", "horses to zebras", "trained on ImageNet horse and zebra images"),
    _p("zebra2horse", "zebra", "horse", "zebras to horses", "trained on ImageNet horse and zebra images"),
    _p("apple2orange", "apple", "orange", "apples to oranges", "trained on ImageNet apple and orange images"),
    _p("orange2apple", "orange", "apple", "oranges to apples", "trained on ImageNet apple and orange images"),
    _p("summer2winter_yosemite", "summer", "winter", "summer to winter landscape", _YOSEMITE),
    _p("winter2summer_yosemite", "winter", "summer", "winter to summer landscape", _YOSEMITE),
    _p("sat2map", "satellite", "map", "aerial photo to map", "trained on Google Maps tiles of New York"),
    _p("map2sat", "map", "satellite", "map to aerial photo", "trained on Google Maps tiles of New York"),
    _p("cityscapes_photo2label", "photo", "cityscapes_label", "street photo to label map", _CITYSCAPES),
    _p("cityscapes_label2photo", "cityscapes_label", "photo", "label map to street photo", _CITYSCAPES),
    _p("facades_photo2label", "photo", "facades_label", "facade photo to label map", _FACADES),
    _p("facades_label2photo", "facades_label", "photo", "label map to facade photo", _FACADES),
    _p("iphone2dslr_flower", "iphone", "dslr", "phone photo to shallow depth of field",
       "trained on flower photos from Flickr"),
])


def base_url() -> str:
    """Where pretrained files are fetched from; ``CCV_PRETRAINED_URL`` points at a mirror."""
    return os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL


def lookup(name: str) -> Pretrained:
    if name.endswith(".pth"):
        name = name[:-4]
    if name in PRETRAINED:
        return PRETRAINED[name]
    close = difflib.get_close_matches(name, list(PRETRAINED), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(f"no pretrained model named {name!r}.{hint} `ccv pull` with no name lists all 18")


def part_path(store: ModelStore, spec: Pretrained) -> Path:
    """The unfinished download of ``spec``: kept between runs so that a later pull resumes it."""
    return store.root / "downloads" / f"{spec.name}.pth.part"


def installed(spec: Pretrained, store: ModelStore) -> Optional[ModelEntry]:
    """The user's model with the id ``spec`` would take, if any. A bundled model does not count: a
    pulled one takes its place for ``--to`` and the bundled one comes back when that is removed."""
    for e in store.entries():
        if e.id == spec.id and e.origin != "bundled":
            return e
    return None


def pull(name: str, store: Optional[ModelStore] = None, *, progress: Optional[ProgressFn] = None,
         force: bool = False, base: Optional[str] = None, retries: int = 3, timeout: float = 30.0,
         on_notice: Optional[Callable[[str], None]] = None) -> ModelEntry:
    """Downloads the pretrained generator ``name`` into the store and returns its entry.

    An identical pull already installed is returned as is. A model of another origin with the same
    source and target (one you trained or imported) is never replaced unless ``force``.
    """
    spec = lookup(name)
    store = store or ModelStore()
    part = part_path(store, spec)
    notice = on_notice or (lambda message: None)
    with exclusive(part.with_name(f"{spec.name}.lock"),
                   lambda: notice(f"another ccv is downloading {spec.name}: waiting for it")):
        return _pull_locked(spec, store, part, progress=progress, force=force, base=base, retries=retries,
                            timeout=timeout, on_notice=on_notice)


def _pull_locked(spec: Pretrained, store: ModelStore, part: Path, *, progress: Optional[ProgressFn], force: bool,
                 base: Optional[str], retries: int, timeout: float,
                 on_notice: Optional[Callable[[str], None]]) -> ModelEntry:
    url = spec.url(base)
    have = installed(spec, store)  # checked under the lock: another process may have just installed it
    if have is not None and not force:
        if have.origin == "pulled" and have.card.get("name") == spec.name:
            return have
        raise UsageError(f"{have.id} is already installed ({have.origin}); `ccv models rm {spec.target} --from "
                         f"{spec.source}` first, or pull with --force to replace it")

    bundled = next((e for e in store.entries() if e.id == spec.id and e.origin == "bundled"), None)
    if bundled is not None and on_notice is not None:
        on_notice(f"{spec.name} will serve --to {spec.target} --from {spec.source} in place of the model bundled "
                  f"with ccv; `ccv models rm {spec.target} --from {spec.source}` brings the bundled one back")
    try:
        download(url, part, progress=progress, retries=retries, timeout=timeout, on_notice=on_notice)
    except OfflineError as e:
        raise OfflineError(url, e.reason, f"connect and run `ccv pull {spec.name}` again, set {BASE_URL_ENV} to "
                           f"a mirror, or download the file elsewhere and run `ccv import FILE --to {spec.target} "
                           f"--from {spec.source}`") from None
    from .weights import clean_state_dict, infer_arch, load_generator, read_state_dict, sha256_file  # torch: slow

    try:
        sd = clean_state_dict(read_state_dict(part))
        arch = infer_arch(sd, str(part))
        load_generator(sd)  # strict key and shape match
    except NotAGeneratorError as e:
        part.unlink(missing_ok=True)  # garbage must not be resumed next time
        reason = str(e).split(": ", 1)[-1]
        raise DownloadError(f"{url}: the server sent something that is not a CycleGAN generator ({reason}); "
                            f"nothing was installed. Check {BASE_URL_ENV} or try again later") from None
    size = part.stat().st_size
    sha = sha256_file(part)
    card = {
        "name": spec.name,
        "description": spec.description,
        "url": url,
        "sha256": sha,
        "size_bytes": size,
        "pulled": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "licence": LICENCE_NOTE,
        "upstream": UPSTREAM,
        "architecture": f"{arch.name}, ngf {arch.ngf}{', dropout' if arch.use_dropout else ''}",
    }
    if spec.note:
        card["note"] = spec.note
    entry = ModelEntry(target=spec.target, source=spec.source, origin="pulled", arch=arch.name, ngf=arch.ngf,
                       sha256=sha, card=card)
    return store.add(entry, part, move=True)

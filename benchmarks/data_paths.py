"""Where the benchmarks find their data: the shared data folder beside the repository's root
(``../shared/data``, with ``monet2photo/`` and ``photos-large/``) unless ``--data DIR`` says otherwise.

The one place that knows that default; each benchmark checks the folders it reads with ``require``,
which stops with one line naming the missing folder and the option to give.
"""
from __future__ import annotations

import sys
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # <repo>/../shared/data


def shared_data(*parts: str) -> Path:
    """A path under the default data folder (not checked: a benchmark that reads it calls ``require``)."""
    return SHARED_DATA.joinpath(*parts)


def shown(path: Path) -> str:
    """``path`` as help texts and reports write it: ``../shared/data/...`` (relative to the repository's
    root) under the default data folder, so that no machine's absolute path ends up in a report."""
    try:
        rest = Path(path).resolve().relative_to(SHARED_DATA)
    except ValueError:
        return str(path)
    return "../shared/data" + ("" if rest == Path(".") else f"/{rest.as_posix()}")


def require(folder: Path, what: str, option: str = "--data") -> Path:
    """``folder`` if it is one; else exit (code 2, an environment problem) with one line on stderr."""
    if not Path(folder).is_dir():
        print(f"error: {shown(folder)}: no such folder ({what}); give {option} DIR", file=sys.stderr)
        raise SystemExit(2)
    return Path(folder)

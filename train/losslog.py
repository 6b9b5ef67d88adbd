"""The loss log: one JSON object per step in ``loss_log.jsonl`` (step, epoch, lr, seconds, 8 losses)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from cyclegan_convert.atomic import atomic_write_bytes


class LossLog:
    """Appends one line per step. On resume, lines past the checkpoint's step (written after the last
    save, before a crash) are dropped first, so the log tells the history of the weights."""

    def __init__(self, path: Path, resume_step: Optional[int] = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = []
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line)["step"] <= resume_step:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill
            atomic_write_bytes(self.path, "".join(k + "\n" for k in kept).encode("utf-8"))
        elif resume_step is None:
            atomic_write_bytes(self.path, b"")
        self._f = open(self.path, "a", encoding="utf-8", buffering=1)  # line-buffered: a kill loses one line at most

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._f.close()


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]

"""Download progress: a thread that measures the staging directory and reports bytes so far,
whatever library does the download (huggingface_hub, boto3, a copy)."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from drover_workers.common.report import Reporter


def tree_bytes(root: Path) -> int:
    """Bytes of finished files plus in-flight `.incomplete` ones (huggingface_hub's bookkeeping
    directory `.cache` holds those, and nothing else counted)."""
    total = 0
    for dirpath, _, filenames in os.walk(root):
        bookkeeping = ".cache" in Path(dirpath).relative_to(root).parts
        for name in filenames:
            if bookkeeping and not name.endswith(".incomplete"):
                continue
            with contextlib.suppress(FileNotFoundError):  # renamed between listing and stat
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


class ByteWatcher:
    """Reports {"phase": "downloading", "bytes", "totalBytes"} every `interval` seconds."""

    def __init__(self, reporter: Reporter, root: Path, total: int, interval: float = 1.0) -> None:
        self.reporter, self.root, self.total, self.interval = reporter, root, total, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.report(force=False)

    def report(self, force: bool) -> None:
        self.reporter.progress(
            force=force, phase="downloading", bytes=tree_bytes(self.root), totalBytes=self.total
        )

    def __enter__(self) -> ByteWatcher:
        self.report(force=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.report(force=True)

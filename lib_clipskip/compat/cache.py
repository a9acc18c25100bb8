"""Report cache keyed by (path, size, mtime_ns), and the batch entry point the panel
calls.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections import OrderedDict

from .advice import DETECT, warnings_for
from .analysis import analyze_path
from .paths import is_under_roots
from .report import FileReport

# Analyses running at once, across every cache and caller: each may hold a header of up
# to 100 MB while it parses, so this bounds the memory, not only the CPU. The background
# readers of folder names (prompt.ModelIndex) take turns on a slot of their own, so a
# generation never queues behind files it does not use.
MAX_CONCURRENT_ANALYSES = 2
_analysis_slots = threading.BoundedSemaphore(MAX_CONCURRENT_ANALYSES)
_background_slot = threading.BoundedSemaphore(1)


class _InFlight:
    """One running analysis that later callers for the same file wait for: the owner holds
    ``done`` (a plain lock, cheaper than an Event) until the report is there."""

    __slots__ = ("done", "report", "stamp")

    def __init__(self, stamp):
        self.stamp = stamp
        self.done = threading.Lock()
        self.done.acquire()
        self.report: FileReport | None = None


class ReportCache:
    """Analyses by file identity. A changed file (size or mtime) is analysed again; the
    least recently used entries go first past ``max_entries``, so memory stays bounded.

    Each file is analysed once however many threads ask at the same time (the panel's
    parallel refreshes, a generation, the alias reader): the first caller analyses, the
    others wait for its report.
    """

    def __init__(self, max_entries: int = 8192):
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[tuple[int, int], FileReport]] = OrderedDict()
        self._running: dict[str, _InFlight] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def cached(self, path: str) -> FileReport | None:
        """The report if the file is analysed and unchanged; never analyses."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        with self._lock:
            cached = self._entries.get(path)
        return cached[1] if cached is not None and cached[0] == (stat.st_size, stat.st_mtime_ns) else None

    def get(self, path: str, background: bool = False) -> FileReport:
        try:
            stat = os.stat(path)
        except OSError as exc:
            return FileReport(path=path, error=f"cannot read: {exc.strerror or exc}")
        stamp = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._entries.get(path)
            if cached is not None and cached[0] == stamp:
                self._entries.move_to_end(path)
                self.hits += 1
                return cached[1]
            running = self._running.get(path)
            owner = running is None or running.stamp != stamp
            if owner:
                running = self._running[path] = _InFlight(stamp)
        if not owner:
            with running.done:  # returns once the owner has released it
                pass
            with self._lock:
                self.hits += 1
            return running.report
        report = None
        try:
            with _background_slot if background else _analysis_slots:
                report = analyze_path(path)
        finally:
            interrupted = report is None  # analyze_path catches every file error; this is Ctrl-C and such
            if interrupted:
                report = FileReport(path=path, error="cannot analyse: interrupted")
            with self._lock:
                self.misses += 1
                if not interrupted:
                    self._entries[path] = (stamp, report)
                    self._entries.move_to_end(path)
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
                if self._running.get(path) is running:
                    del self._running[path]
            running.report = report
            running.done.release()
        return report


default_cache = ReportCache()


@contextlib.contextmanager
def _no_cyclic_gc():
    """Headers decode into many small acyclic dicts and lists; letting the cyclic collector
    walk them again and again costs a scan a tenth of its time and frees nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def analyze_file(path: str, cache: ReportCache | None = None, background: bool = False) -> FileReport:
    """The target-independent analysis of one file (cached). Do not mutate the result.
    ``background``: for readers nobody waits for (they share one slot of their own)."""
    return (cache if cache is not None else default_cache).get(os.path.abspath(path), background)


def check_files(
    paths,
    family: str | None,
    clip_skip: float | None,
    clip_skip_g: float | None = None,
    host: str = "a1111",
    allowed_roots=None,
    cache: ReportCache | None = None,
    torch_version=DETECT,
) -> list[FileReport]:
    """Reports with warnings for ``paths`` (already resolved files), in the same order.

    ``family``: "sd1" | "sd2" | "sdxl" for the loaded model, another name (e.g. "flux")
    for a model clip skip cannot change, or None to check each file against its own
    family. ``allowed_roots``: when given, files outside these folders are refused, not
    read. One bad file never hides the others: its report carries ``error`` and an
    ``unreadable`` warning. ``torch_version``: see ``warnings_for``."""
    cache = cache if cache is not None else default_cache
    results = []
    with _no_cyclic_gc():
        for path in paths:
            path = os.path.abspath(os.fspath(path))
            if allowed_roots is not None and not is_under_roots(path, allowed_roots):
                base = FileReport(path=path, error="not under the WebUI model folders; not inspected")
            else:
                try:
                    base = cache.get(path)
                except Exception as exc:  # analyze_path catches file errors; this is a guard
                    base = FileReport(path=path, error=f"cannot analyse: {type(exc).__name__}: {exc}")
            report = base.with_warnings(warnings_for(base, family, clip_skip, clip_skip_g, host, torch_version))
            results.append(report)
    return results

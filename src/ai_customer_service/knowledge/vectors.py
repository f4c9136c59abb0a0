"""The embedding cache in ``cs_kb_embeddings``, usable from the index-building worker thread.

The index is built in a thread (it is CPU work); this store hands its reads and writes back to the
event loop that owns the database engine, so a restart or a second process recomputes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import numpy as np
from sqlalchemy import select

from ai_customer_service.db.base import utcnow
from ai_customer_service.db.engine import Database
from ai_customer_service.db.statements import insert_many_ignore
from ai_customer_service.dialog.embedding import Matrix
from ai_customer_service.knowledge.models import KBEmbedding

_CHUNK = 500


class DatabaseVectorStore:
    """A :class:`~ai_customer_service.dialog.embedding.VectorStore` over the database.

    Call its methods from a worker thread only (never from the event loop ``loop``).
    """

    def __init__(self, db: Database, loop: asyncio.AbstractEventLoop) -> None:
        self.db = db
        self.loop = loop
        self.written = 0

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, Matrix]:
        return asyncio.run_coroutine_threadsafe(self._get(model, list(hashes)), self.loop).result()

    def put_many(self, model: str, vectors: Mapping[str, Matrix]) -> None:
        asyncio.run_coroutine_threadsafe(self._put(model, dict(vectors)), self.loop).result()
        self.written += len(vectors)

    async def _get(self, model: str, hashes: list[str]) -> dict[str, Matrix]:
        found: dict[str, Matrix] = {}
        async with self.db.sessionmaker() as tx:
            for start in range(0, len(hashes), _CHUNK):
                chunk = hashes[start : start + _CHUNK]
                rows = await tx.execute(
                    select(KBEmbedding.text_hash, KBEmbedding.dim, KBEmbedding.vector).where(
                        KBEmbedding.model == model, KBEmbedding.text_hash.in_(chunk)
                    )
                )
                for text_hash, dim, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape == (dim,):
                        found[text_hash] = vector
        return found

    async def _put(self, model: str, vectors: dict[str, Matrix]) -> None:
        rows = [
            {
                "model": model,
                "text_hash": text_hash,
                "dim": int(vector.shape[-1]),
                "vector": np.asarray(vector, dtype=np.float32).tobytes(),
            }
            for text_hash, vector in vectors.items()
        ]
        now = utcnow()
        for start in range(0, len(rows), _CHUNK):
            async with self.db.transaction() as tx:
                await insert_many_ignore(
                    tx,
                    KBEmbedding.__table__,  # type: ignore[arg-type]
                    [{**row, "created_at": now} for row in rows[start : start + _CHUNK]],
                    index_elements=["model", "text_hash"],
                )

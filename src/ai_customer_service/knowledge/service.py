"""Knowledge-base use cases: create, update (optimistic locking), publish, delete, bulk import.

Each is one transaction with its audit row. Changes become visible to every process's bot within
seconds: the dialog index polls :func:`fingerprint` and rebuilds when it changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ai_customer_service.audit import repository as audit
from ai_customer_service.db.engine import Database
from ai_customer_service.dialog.index import KBDoc
from ai_customer_service.errors import (
    KB_KEY_EXISTS,
    KB_NOT_FOUND,
    KB_TITLE_EXISTS,
    KB_VERSION_CONFLICT,
    Conflict,
    NotFound,
)
from ai_customer_service.knowledge.formats import slug
from ai_customer_service.knowledge.models import EntryStatus, KBEntry
from ai_customer_service.knowledge.schemas import EntryCreate, EntryUpdate, entry_view
from ai_customer_service.pagination import Page, offset


def key_for(title: str) -> str:
    """The key of a new entry given without one: its title's slug, else a random one."""
    return slug(title, 80) or f"kb-{uuid.uuid4().hex[:10]}"


async def _get(tx: AsyncSession, entry_id: uuid.UUID) -> KBEntry:
    entry = await tx.get(KBEntry, entry_id)
    if entry is None:
        raise NotFound("knowledge-base entry not found", KB_NOT_FOUND)
    return entry


async def _unique_checks(tx: AsyncSession, *, title: str, key: str | None, exclude: uuid.UUID | None) -> None:
    stmt = select(KBEntry.id).where(KBEntry.title == title)
    if exclude is not None:
        stmt = stmt.where(KBEntry.id != exclude)
    if (await tx.execute(stmt)).first() is not None:
        raise Conflict(f"an entry titled {title!r} already exists", KB_TITLE_EXISTS)
    if key is not None:
        stmt = select(KBEntry.id).where(KBEntry.key == key)
        if exclude is not None:
            stmt = stmt.where(KBEntry.id != exclude)
        if (await tx.execute(stmt)).first() is not None:
            raise Conflict(f"an entry with key {key!r} already exists", KB_KEY_EXISTS)


def _translate_integrity(exc: IntegrityError) -> Conflict:
    text = str(exc.orig)
    if "key" in text and "title" not in text:
        return Conflict("an entry with that key already exists", KB_KEY_EXISTS)
    return Conflict("an entry with that title already exists", KB_TITLE_EXISTS)


async def create(db: Database, data: EntryCreate, *, actor_id: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    key = data.key or key_for(data.title)
    try:
        async with db.transaction() as tx:
            await _unique_checks(tx, title=data.title, key=key, exclude=None)
            entry = KBEntry(
                id=uuid.uuid4(),
                key=key,
                title=data.title,
                answer=data.answer,
                questions=data.questions,
                tags=data.tags,
                locale=data.locale,
                status=data.status.value,
                version=1,
                created_at=now,
                updated_at=now,
                published_at=now if data.status is EntryStatus.PUBLISHED else None,
            )
            tx.add(entry)
            _audit(tx, entry, "create", actor_id, None)
            await tx.flush()
            return entry_view(entry)
    except IntegrityError as exc:  # a concurrent create with the same title or key
        raise _translate_integrity(exc) from exc


async def update_entry(
    db: Database, entry_id: uuid.UUID, data: EntryUpdate, *, actor_id: str
) -> dict[str, Any]:
    now = datetime.now(UTC)
    try:
        async with db.transaction() as tx:
            entry = await _get(tx, entry_id)
            await _unique_checks(tx, title=data.title, key=None, exclude=entry.id)
            before = entry.status
            status = data.status.value if data.status else entry.status
            values: dict[str, Any] = {
                "title": data.title,
                "answer": data.answer,
                "questions": data.questions,
                "tags": data.tags,
                "locale": data.locale,
                "status": status,
                "version": data.version + 1,
                "updated_at": now,
            }
            if status == EntryStatus.PUBLISHED.value and before != status:
                values["published_at"] = now
            result = await tx.execute(
                update(KBEntry)
                .where(KBEntry.id == entry_id, KBEntry.version == data.version)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                current = entry.version
                raise Conflict(
                    f"entry was changed by someone else (your version {data.version}, current {current})",
                    KB_VERSION_CONFLICT,
                )
            await tx.refresh(entry)
            _audit(tx, entry, "update", actor_id, before)
            return entry_view(entry)
    except IntegrityError as exc:
        raise _translate_integrity(exc) from exc


async def publish(db: Database, entry_id: uuid.UUID, *, actor_id: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    async with db.transaction() as tx:
        entry = await _get(tx, entry_id)
        before = entry.status
        if before != EntryStatus.PUBLISHED.value:
            entry.status = EntryStatus.PUBLISHED.value
            entry.published_at = now
            entry.updated_at = now
            entry.version += 1
            _audit(tx, entry, "publish", actor_id, before)
        await tx.flush()
        return entry_view(entry)


async def delete(db: Database, entry_id: uuid.UUID, *, actor_id: str) -> None:
    async with db.transaction() as tx:
        entry = await _get(tx, entry_id)
        _audit(tx, entry, "delete", actor_id, entry.status, after="deleted")
        await tx.delete(entry)


async def import_entries(
    db: Database, records: Iterable[KBDoc], *, actor_id: str, publish_all: bool = True
) -> dict[str, int]:
    """Upsert by key (else by title): new entries are created, changed ones updated; one transaction."""
    try:
        return await _import(db, records, actor_id=actor_id, publish_all=publish_all)
    except IntegrityError as exc:  # e.g. a record renames an entry to another entry's title
        raise _translate_integrity(exc) from exc


async def _import(
    db: Database, records: Iterable[KBDoc], *, actor_id: str, publish_all: bool
) -> dict[str, int]:
    created = updated = unchanged = 0
    now = datetime.now(UTC)
    status = EntryStatus.PUBLISHED.value if publish_all else EntryStatus.DRAFT.value
    async with db.transaction() as tx:
        existing = {e.key: e for e in (await tx.execute(select(KBEntry))).scalars()}
        by_title = {e.title: e for e in existing.values()}
        for record in records:
            key = record.id or key_for(record.title)
            entry = existing.get(key) or by_title.get(record.title.strip()[:200])
            fields = {
                "title": record.title.strip()[:200],
                "answer": record.answer.strip(),
                "questions": list(dict.fromkeys(q.strip() for q in record.questions if q.strip())),
                "tags": list(record.tags),
                "locale": record.locale,
            }
            if entry is None:
                entry = KBEntry(
                    id=uuid.uuid4(),
                    key=key,
                    status=status,
                    version=1,
                    created_at=now,
                    updated_at=now,
                    published_at=now if status == EntryStatus.PUBLISHED.value else None,
                    **fields,
                )
                tx.add(entry)
                existing[key] = by_title[entry.title] = entry
                created += 1
                continue
            if (
                all(getattr(entry, name) == value for name, value in fields.items())
                and entry.status == status
            ):
                unchanged += 1
                continue
            for name, value in fields.items():
                setattr(entry, name, value)
            entry.status = status
            entry.version += 1
            entry.updated_at = now
            updated += 1
        audit.record(
            tx,
            object_type="kb",
            object_id="import",
            action="import",
            actor_type="principal",
            actor_id=actor_id,
            details={"created": created, "updated": updated, "unchanged": unchanged},
        )
    return {"created": created, "updated": updated, "unchanged": unchanged}


async def list_entries(
    tx: AsyncSession, *, status: str | None, query: str | None, page: int, page_size: int
) -> Page[dict[str, Any]]:
    stmt = select(KBEntry)
    count = select(func.count()).select_from(KBEntry)
    if status:
        stmt = stmt.where(KBEntry.status == status)
        count = count.where(KBEntry.status == status)
    if query:
        like = f"%{query.lower()}%"
        cond = func.lower(KBEntry.title).like(like) | func.lower(KBEntry.key).like(like)
        stmt = stmt.where(cond)
        count = count.where(cond)
    total = (await tx.execute(count)).scalar_one()
    rows = (
        await tx.execute(stmt.order_by(KBEntry.title).offset(offset(page, page_size)).limit(page_size))
    ).scalars()
    items = [entry_view(e) for e in rows]
    return Page[dict[str, Any]](items=items, total=int(total), page=page, page_size=page_size)


async def get_entry(tx: AsyncSession, entry_id: uuid.UUID) -> dict[str, Any]:
    return entry_view(await _get(tx, entry_id))


async def fingerprint(db: Database) -> tuple[int, str]:
    """Changes whenever an entry is created, edited, published or deleted: every edit bumps the
    entry's version, so the sum of versions moves even when clocks of several hosts disagree."""
    async with db.sessionmaker() as tx:
        count, versions, latest = (
            await tx.execute(
                select(
                    func.count(), func.coalesce(func.sum(KBEntry.version), 0), func.max(KBEntry.updated_at)
                )
            )
        ).one()
    return int(count), f"{int(versions)}/{latest}"


async def published_entries(db: Database) -> list[KBEntry]:
    async with db.sessionmaker() as tx:
        stmt = select(KBEntry).where(KBEntry.status == EntryStatus.PUBLISHED.value).order_by(KBEntry.key)
        return list((await tx.execute(stmt)).scalars())


def _audit(
    tx: AsyncSession, entry: KBEntry, action: str, actor_id: str, before: str | None, after: str | None = None
) -> None:
    audit.record(
        tx,
        object_type="kb_entry",
        object_id=entry.id,
        action=action,
        actor_type="principal",
        actor_id=actor_id,
        before_state=before,
        after_state=after or entry.status,
        details={"key": entry.key, "version": entry.version},
    )

"""The outbox: nothing is lost between commit and enqueue, and jobs retry then give up."""

from __future__ import annotations

from typing import Any

from rindle import Rindle
from rindle.model.records import OutboxEntry
from rindle.processing.queue import InlineQueue
from tests.conftest import MakeMedia
from tests.support.images import png


class FlakyQueue(InlineQueue):
    """An inline queue whose enqueue fails ``failures`` times, like a crash after commit."""

    def __init__(self, failures: int) -> None:
        super().__init__(retry_base=0.01)
        self.failures = failures

    async def enqueue(self, entry: OutboxEntry) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("queue unreachable")
        await super().enqueue(entry)


async def test_a_failed_dispatch_is_recovered_by_the_sweeper(make_media: MakeMedia) -> None:
    media = make_media(queue=FlakyQueue(failures=1))
    async with media.connected():
        result = await media.upload("image", png(16, 16), filename="a.png")
        await media.drain()
        # The commit stood; the job never ran.
        assert (await media.asset(result.asset.id)).state == "validating"
        [entry] = await media.repo.list_outbox(kind="promote_asset")
        assert entry.state == "pending"
        assert await media.outbox.sweep(include_recent=True) == 1
        await media.drain()
        assert (await media.asset(result.asset.id)).state == "available"
        [entry] = await media.repo.list_outbox(kind="promote_asset")
        assert entry.state == "done" and entry.attempts == 1


async def test_unfinished_entries_are_resent_when_the_runtime_starts(
        make_media: MakeMedia) -> None:
    first = make_media(queue=FlakyQueue(failures=10))
    async with first.connected():
        result = await first.upload("image", png(16, 16), filename="a.png")
    second = make_media()
    async with second.connected(sweeper=True):
        await second.drain()
        assert (await second.asset(result.asset.id)).state == "available"


async def test_jobs_retry_with_backoff_then_record_the_failure(make_media: MakeMedia) -> None:
    calls: list[int] = []

    class Broken:
        async def process(self, *args: Any) -> dict[str, Any]:
            calls.append(1)
            raise OSError("disk on fire")

    from rindle import Profile, Variant

    class P(Profile):
        name = "p"
        storage = "local"
        allow_mime = ["image/png"]
        variants = {"v": Variant(width=5, kind="broken")}

    media: Rindle = make_media(profiles=[P], processors={"broken": Broken()},
                               queue=InlineQueue(retry_base=0.01), job_max_attempts=3)
    async with media.connected():
        result = await media.upload("p", png(8, 8), filename="a.png")
        await media.drain()
        [row] = await media.repo.list_variants(result.asset.id)
        [entry] = await media.repo.list_outbox(kind="process_variants")
        runs = await media.repo.runs_for_asset(result.asset.id)
    assert len(calls) == 3
    assert entry.state == "failed" and entry.attempts == 3
    assert "disk on fire" in (entry.last_error or "")
    assert row.state == "failed" and "disk on fire" in (row.error_reason or "")
    assert [r.state for r in runs] == ["failed", "failed", "failed"]

"""Whole-city documents are built once per snapshot and key, one build at a time, and only the
current snapshot's last few are kept."""

from __future__ import annotations

import asyncio
import threading

import pytest

from feeds.documents import Documents
from feeds.http import Rendered, render


class Builds:
    """A build that counts its calls and how many ran at once."""

    def __init__(self) -> None:
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self._guard = threading.Lock()

    def __call__(self, text: str) -> Rendered:
        with self._guard:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return render(text.encode(), "application/xml")
        finally:
            with self._guard:
                self.running -= 1


def test_concurrent_requests_share_one_build() -> None:
    documents, builds = Documents(), Builds()

    async def ask() -> list[Rendered]:
        keys = ["a", "b", "a", "b", "a", "a"]
        return await asyncio.gather(
            *(documents.get(1, key, lambda key=key: builds(key)) for key in keys)
        )

    answers = asyncio.run(ask())
    assert builds.calls == 2 and builds.most_at_once == 1
    assert {a.body for a in answers} == {b"a", b"b"}
    assert answers[0] is answers[2]  # the same rendering, not a copy


def test_a_new_snapshot_drops_the_older_documents() -> None:
    documents, builds = Documents(kept=2), Builds()

    async def ask(version: int, key: str) -> Rendered:
        return await documents.get(version, key, lambda: builds(f"{version}{key}"))

    async def scenario() -> None:
        assert (await ask(1, "a")).body == b"1a"
        assert (await ask(2, "a")).body == b"2a"  # not the older snapshot's
        await ask(2, "b")
        await ask(2, "c")  # beyond `kept`: the least recently used goes
        assert builds.calls == 4
        await ask(2, "a")
        assert builds.calls == 5

    asyncio.run(scenario())


def test_a_failed_build_is_not_kept() -> None:
    documents, builds = Documents(), Builds()

    def failing() -> Rendered:
        raise LookupError("nothing to publish")

    async def scenario() -> None:
        with pytest.raises(LookupError):
            await documents.get(1, "a", failing)
        assert (await documents.get(1, "a", lambda: builds("a"))).body == b"a"

    asyncio.run(scenario())


def test_the_event_loop_serves_while_a_document_is_built() -> None:
    # the build waits for something only the event loop can do: were it built on the loop,
    # the loop could not do it and the build would give up
    documents, started, released = Documents(), threading.Event(), threading.Event()

    def build() -> Rendered:
        started.set()
        return render(b"built" if released.wait(timeout=10) else b"blocked", "application/xml")

    async def scenario() -> Rendered:
        building = asyncio.ensure_future(documents.get(1, "a", build))
        # the loop waits for the build to start: only a build off the loop lets it through
        # before the build's own wait ends
        await asyncio.to_thread(started.wait, 10)
        released.set()
        return await building

    assert asyncio.run(scenario()).body == b"built"

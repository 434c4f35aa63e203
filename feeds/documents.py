"""Large documents of the current snapshot, built off the event loop.

A whole-city publication (DATEX II traffic forecasts of thousands of segments) takes seconds
to build and tens of megabytes to hold. Built in a worker thread, one at a time, the event
loop keeps serving meanwhile; only the current snapshot's last few are kept, so a client
cycling parameters across snapshots can neither pin memory nor queue parallel builds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Final

from feeds.http import LruCache, Rendered

DOCUMENTS_KEPT: Final = 4


class Documents:
    """The current snapshot's large documents, each built once."""

    def __init__(self, kept: int = DOCUMENTS_KEPT) -> None:
        self._kept = kept
        self._version: Hashable = None
        self._entries: LruCache[Rendered] = LruCache(kept)
        self._building = asyncio.Lock()

    async def get(
        self, version: Hashable, key: Hashable, build: Callable[[], Rendered]
    ) -> Rendered:
        """Return the document `key` of snapshot `version`, building it in a worker thread
        (one build at a time) when it is not kept.

        Args:
            version: the snapshot's version; a new one drops the older documents.
            key: what the document depends on besides the snapshot (e.g. its horizon).
            build: renders the document; its exceptions reach the caller.
        """
        found = self._current(version).peek(key)
        if found is not None:
            return found
        async with self._building:
            entries = self._current(version)
            found = entries.peek(key)
            if found is not None:
                return found
            return entries.put(key, await asyncio.to_thread(build))

    def _current(self, version: Hashable) -> LruCache[Rendered]:
        if version != self._version:
            self._version, self._entries = version, LruCache(self._kept)
        return self._entries

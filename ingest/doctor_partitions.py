"""`streetsense doctor`: do the running ingest processes' partitions cover every topic once?

Each ingest process names its part in its database connection (`streetsense-ingest part 2/3
by device`), so the doctor sees every process connected to the primary, wherever it runs.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Final

import psycopg

from ingest.doctor import FAIL, OK, WARN, Check
from ingest.service import APPLICATION_NAME
from store.doctor_reads import ingest_connections

_PART: Final = re.compile(r" part (\d+)/(\d+) by (\w+)$")
NAME: Final = "ingest partitions"


def partitions_check(conn: psycopg.Connection) -> list[Check]:
    """Report gaps and overlaps among the partitions of the ingest processes connected now."""
    try:
        names = ingest_connections(conn, APPLICATION_NAME)
    except psycopg.Error as exc:
        return [Check(NAME, WARN, f"cannot read pg_stat_activity ({str(exc).splitlines()[0]})")]
    parts: Counter[tuple[int, int, str]] = Counter()
    whole = 0
    for name in names:
        match = _PART.search(name)
        if match:
            parts[(int(match[1]), int(match[2]), match[3])] += 1
        elif name == APPLICATION_NAME:
            whole += 1
    if not parts:
        return []  # one ingest, or a shared subscription: nothing split by us
    return [layout_check(parts, whole)]


def layout_check(parts: Counter[tuple[int, int, str]], whole: int) -> Check:
    """Judge the parts seen (part, of, by -> processes) and the unpartitioned processes."""
    layouts = sorted({(of, by) for _part, of, by in parts})
    if len(layouts) > 1:
        seen = ", ".join(f"N={of} by {by}" for of, by in layouts)
        return Check(
            NAME,
            FAIL,
            f"ingest processes split the topics in different ways ({seen}): parts overlap "
            "and some topics belong to no process",
            "give every ingest process the same N in ingest.partition and the same "
            "ingest.partition_by; when changing N, stop the old processes once all new ones run",
        )
    of, by = layouts[0]
    missing = [part for part in range(1, of + 1) if not parts[(part, of, by)]]
    if missing:
        absent = ", ".join(f"{part}/{of}" for part in missing)
        return Check(
            NAME,
            FAIL,
            f"no ingest process connected for part {absent} (by {by}): its devices' readings "
            "wait in its broker session, or are lost if it never had one",
            f"start `STREETSENSE_INGEST_PARTITION={missing[0]}/{of} streetsense ingest` "
            "(with the same client id as before, to resume its session)",
        )
    doubled = [f"{part}/{of}" for (part, _of, _by), count in sorted(parts.items()) if count > 1]
    if whole or doubled:
        what = f"{whole} ingest without ingest.partition takes every topic" if whole else ""
        what += ("; " if what else "") + (
            f"part {', '.join(doubled)} runs twice" if doubled else ""
        )
        return Check(
            NAME,
            WARN,
            f"{what}: their topics are ingested twice (stored once, the work done twice)",
            "run exactly one process per part, and none without ingest.partition beside them",
        )
    return Check(NAME, OK, f"parts 1-{of} of {of} by {by}, one process each")

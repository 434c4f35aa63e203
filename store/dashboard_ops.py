"""Reads for the dashboard's operational views: spot turnover, devices, rejections, freshness."""

from __future__ import annotations

from datetime import datetime

import psycopg

from store.dashboard_reads import SEGMENTS_LATEST, Table, fetch

# Changes of each spot's state in the window; a spot's first event has no known previous
# state, so it never counts as an arrival and never starts a dwell.
_SPOT_CHANGES = """
WITH events AS (
    SELECT s.lot_id, r.device_id, r.sub_id, r.observed_at, r.value,
           lag(r.value) OVER (PARTITION BY r.device_id, r.sub_id ORDER BY r.observed_at)
               AS previous
    FROM spots s
    JOIN readings r ON r.device_id = s.device_id AND r.sub_id = s.sensor AND r.kind = 'occupied'
    WHERE s.lot_id = ANY(%(lots)s) AND r.observed_at >= %(start)s AND r.observed_at < %(end)s
), changes AS (
    SELECT lot_id, observed_at, value, previous,
           lead(observed_at) OVER (PARTITION BY device_id, sub_id ORDER BY observed_at)
               AS next_change
    FROM events WHERE previous IS NULL OR previous <> value
)
SELECT l.lot_id,
       (SELECT count(*) FROM spots p WHERE p.lot_id = l.lot_id) AS spots,
       count(c.observed_at) AS arrivals,
       avg(extract(epoch FROM c.next_change - c.observed_at) / 60.0)::float8 AS mean_dwell_min
FROM lots l
LEFT JOIN changes c ON c.lot_id = l.lot_id AND c.value = 1 AND c.previous = 0
WHERE l.lot_id = ANY(%(lots)s)
GROUP BY l.lot_id ORDER BY l.lot_id
"""


def spot_turnover(
    conn: psycopg.Connection, lot_ids: list[str], start: datetime, end: datetime
) -> Table:
    """Return per lot its sensed spots, arrivals and mean dwell (minutes) in [start, end).

    Reads raw spot events through the readings index, so callers bound the window.
    """
    return fetch(conn, _SPOT_CHANGES, {"lots": lot_ids, "start": start, "end": end})


def device_summary(conn: psycopg.Connection, low_battery_v: float) -> dict[str, int]:
    """Return counts of active devices: online, offline, never seen, low battery, dropping."""
    row = fetch(
        conn,
        "SELECT count(*) FILTER (WHERE ds.online), "
        "count(*) FILTER (WHERE ds.device_id IS NOT NULL AND NOT ds.online), "
        "count(*) FILTER (WHERE ds.device_id IS NULL), "
        "count(*) FILTER (WHERE (ds.status->>'battery')::float8 < %s), "
        "count(*) FILTER (WHERE (ds.status->>'buffer_dropped')::float8 > 0) "
        "FROM devices d LEFT JOIN device_state ds USING (device_id) WHERE d.active",
        (low_battery_v,),
    ).rows[0]
    names = ("online", "offline", "never_seen", "low_battery", "dropping")
    return {name: int(value) for name, value in zip(names, row, strict=True)}


# Per device: its health as its agent last reported it, and whether any of its readings in the
# last hour carried clock_suspect (found through the receive-time BRIN index).
_DEVICE_HEALTH = """
SELECT d.device_id, d.kind, d.site_id, coalesce(d.lot_id, d.segment_id, '') AS place,
       ds.device_id IS NOT NULL AS seen, coalesce(ds.online, false) AS online, ds.last_seen_at,
       (ds.status->>'uptime') IS NOT NULL AS agent,
       (ds.status->>'buffer_depth')::float8 AS buffer_depth,
       (ds.status->>'buffer_oldest_age')::float8 AS buffer_oldest_age_s,
       (ds.status->>'buffer_dropped')::float8 AS buffer_dropped,
       (ds.status->>'late_dropped')::float8 AS late_dropped,
       (ds.status->>'battery')::float8 AS battery_v, (ds.status->>'rssi')::float8 AS rssi_dbm,
       coalesce(c.suspect, false) AS clock_suspect, ds.readings_total, ds.rejected_total
FROM devices d LEFT JOIN device_state ds USING (device_id)
LEFT JOIN (
    SELECT DISTINCT device_id, true AS suspect FROM readings
    WHERE clock_suspect AND received_at > now() - interval '1 hour'
) c USING (device_id)
WHERE d.active
ORDER BY d.device_id LIMIT %s
"""


def device_health(conn: psycopg.Connection, limit: int) -> Table:
    """Return the active devices with their health and agent figures (NULL where unknown)."""
    return fetch(conn, _DEVICE_HEALTH, (limit,))


def quarantine_summary(conn: psycopg.Connection, limit: int) -> Table:
    """Return the devices whose messages wait in quarantine (unknown to the registry)."""
    return fetch(
        conn,
        "SELECT device_id, site_id, count(*) AS messages, min(received_at) AS first_at, "
        "max(received_at) AS last_at, (array_agg(topic ORDER BY id DESC))[1] AS last_topic, "
        "(array_agg(reason ORDER BY id DESC))[1] AS reason "
        "FROM quarantine WHERE released_at IS NULL GROUP BY device_id, site_id "
        "ORDER BY last_at DESC LIMIT %s",
        (limit,),
    )


def rejections_by_reason(conn: psycopg.Connection, start: datetime, end: datetime) -> Table:
    """Return rejected messages in [start, end) counted by reason, most frequent first.

    A summary row counts for the refusals it stands for (`repeats`).
    """
    return fetch(
        conn,
        "SELECT reason_code, sum(repeats) AS messages, count(DISTINCT device_id) AS devices, "
        "max(received_at) AS last_at FROM rejected_messages "
        "WHERE received_at >= %s AND received_at < %s "
        "GROUP BY reason_code ORDER BY messages DESC, reason_code",
        (start, end),
    )


def rejection_examples(
    conn: psycopg.Connection, reason_code: str, start: datetime, end: datetime, limit: int
) -> Table:
    """Return the latest rejected messages of one reason, payload cut to 512 bytes."""
    return fetch(
        conn,
        "SELECT received_at, topic, device_id, reason, substring(payload FROM 1 FOR 512) "
        "AS payload, payload_bytes FROM rejected_messages "
        "WHERE reason_code = %s AND received_at >= %s AND received_at < %s "
        "ORDER BY received_at DESC, id DESC LIMIT %s",
        (reason_code, start, end, limit),
    )


def freshness(conn: psycopg.Connection) -> Table:
    """Return the time of the latest data of every active lot and segment, stalest first.

    A lot's age counts from its newest reading or, when later, the last message from any of
    its online sensors: a quiet lot is not stale while its sensors are heard (as in the feeds).
    """
    return fetch(
        conn,
        "SELECT 'lot' AS kind, l.lot_id AS id, l.name, n.observed_at AS latest, "
        "h.heard_at AS sensors_heard, "
        "extract(epoch FROM now() - greatest(n.observed_at, "
        "    CASE WHEN n.observed_at IS NOT NULL THEN h.heard_at END))::float8 AS age_s "
        "FROM lots l LEFT JOIN lot_live n USING (lot_id) "
        "LEFT JOIN lot_sensors_heard h USING (lot_id) WHERE l.active "
        "UNION ALL "
        "SELECT 'segment', s.segment_id, s.name, n.bucket + interval '5 minutes', NULL, "
        "extract(epoch FROM now() - (n.bucket + interval '5 minutes'))::float8 "
        + SEGMENTS_LATEST
        + "WHERE s.active "
        "ORDER BY age_s DESC NULLS FIRST, kind, id",
    )

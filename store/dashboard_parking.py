"""Reads and writes behind the Parking page's opening status, categories and operator action."""

from __future__ import annotations

import psycopg

from store.dashboard_reads import Table, fetch


def lot_details(conn: psycopg.Connection, lot_ids: list[str]) -> Table:
    """Return the opening hours and category capacities (jsonb) of some lots."""
    return fetch(
        conn,
        "SELECT lot_id, name, capacity, opening_hours, spaces FROM lots "
        "WHERE lot_id = ANY(%s) ORDER BY lot_id",
        (lot_ids,),
    )


def category_now(conn: psycopg.Connection, lot_ids: list[str]) -> Table:
    """Return, per lot and spot category, the sensed spaces and how many are taken now (each
    spot sensor's latest state; one index probe per spot)."""
    return fetch(
        conn,
        "SELECT s.lot_id, s.category, count(*) AS sensed, "
        "coalesce(sum(r.value), 0)::int AS occupied, count(r.value) AS reporting "
        "FROM spots s LEFT JOIN LATERAL (SELECT value FROM readings "
        "  WHERE device_id = s.device_id AND kind = 'occupied' AND sub_id = s.sensor "
        "  ORDER BY observed_at DESC LIMIT 1) r ON true "
        "WHERE s.lot_id = ANY(%s) GROUP BY s.lot_id, s.category ORDER BY 1, 2",
        (lot_ids,),
    )


def live_counts(conn: psycopg.Connection, lot_ids: list[str]) -> Table:
    """Return some lots' live counts by gate counter and by spot sensors (lot_parking_live),
    for the meaning checks."""
    return fetch(
        conn,
        "SELECT lot_id, counter, sensed, sensors FROM lot_parking_live WHERE lot_id = ANY(%s)",
        (lot_ids,),
    )

"""Database roles per service: ingest writes raw data only, analytics writes derived data only,
the dashboard reads (and acknowledges alerts), the open feeds read lot and segment aggregates
only, the alerts service reads everything and writes only its own tables, the fleet service
registers enrolled devices and writes only its own tables besides.

Roles are NOLOGIN groups; a deployment creates one login user per service and grants it the
group (docs/deploy.md). Grants are recomputed after every migration, so a table added later
gets the right privileges without anyone remembering to grant them.
"""

from __future__ import annotations

import logging
import re
from typing import Final

import psycopg
import psycopg.errors
from psycopg import sql

log = logging.getLogger(__name__)

INGEST: Final = "streetsense_ingest"
ANALYTICS: Final = "streetsense_analytics"
DASHBOARD: Final = "streetsense_dashboard"
FEEDS: Final = "streetsense_feeds"
ALERTS: Final = "streetsense_alerts"
FLEET: Final = "streetsense_fleet"
ROLES: Final = (INGEST, ANALYTICS, DASHBOARD, FEEDS, ALERTS, FLEET)

REGISTRY_TABLES: Final = frozenset(
    {"sites", "lots", "segments", "devices", "spots", "registry_versions", "schema_migrations"}
)
# What ingest may write, and how.
INGEST_WRITES: Final = {
    # UPDATE only of what a revision replaces (store.revisions), never a reading's identity.
    "readings": "INSERT, UPDATE (value, revision, seq, clock_suspect, received_at)",
    "rejected_messages": "INSERT, DELETE",  # DELETE: retention (ingest.prune)
    "quarantine": "INSERT, DELETE",
    "devices": "INSERT",  # auto-registration, when enabled
    "device_sequences": "INSERT, UPDATE",
    "device_state": "INSERT, UPDATE",
    "rollup_invalidations": "INSERT",  # notes batches committed late (store.rollup_invalidations)
}
# Operators set a lot open or closed from the dashboard; every change is audited. Planners
# acknowledge alerts there (nothing else of an alert).
DASHBOARD_WRITES: Final = {
    "lot_status_overrides": "INSERT, UPDATE, DELETE",
    "lot_status_audit": "INSERT",
    "alerts": "UPDATE",
    "alert_events": "INSERT",
    # Field engineers approve, refuse, revoke and rotate from the dashboard: the request is
    # queued, the fleet service (which holds the broker's credentials) carries it out.
    "fleet_actions": "INSERT",
}
# The alerts service reads everything and writes only its own tables.
ALERTS_WRITES: Final = frozenset({"alerts", "alert_events", "alert_outbox"})
# The fleet service: enrolment registers devices and their spots; the rest is its own tables.
FLEET_WRITES: Final = {
    "devices": "INSERT, UPDATE (site_id, kind, lot_id, segment_id, lat, lon, active)",
    "spots": "INSERT, DELETE",
}
FLEET_TABLES: Final = frozenset(
    {"fleet_batches", "fleet_allowlist", "fleet_enrolments", "fleet_devices", "fleet_audit",
     "fleet_actions", "fleet_releases", "fleet_rollouts", "fleet_rollout_devices"}
)  # fmt: skip
# What the analytics refresh may change in tables ingest writes: it consumes invalidations.
ANALYTICS_CONSUMES: Final = {"rollup_invalidations": "DELETE"}
# Bookkeeping between ingest and the rollup refresh that no reader needs.
INTERNAL: Final = frozenset({"rollup_invalidations", "alert_outbox"})
# Secrets: ingest signs confirmations with it, the fleet service gives enrolled devices their
# keys from it (store.confirm_secret); no other role sees them at all.
SECRETS: Final = frozenset({"confirm_secret"})
# All the open feeds may read: the public registry and per-lot or per-segment aggregates, each
# without a device or spot column (tests/security/test_roles_feeds.py checks every relation and
# function the role can reach). A relation added later is closed to them until named here.
FEEDS_READS: Final = frozenset(
    {"lots", "segments", "lot_status_public", "lot_sensors_heard", "lot_parking_live",
     "lot_now", "occupancy_now", "occupancy_5m", "occupancy_1h", "occupancy_1d",
     "segment_now", "flow_5m", "flow_1h", "flow_1d", "forecast_runs", "forecasts",
     "forecast_anchors", "forecast_skips", "lot_category_sensors"}
)  # fmt: skip
# Functions the feeds call; they run with their owner's rights and return lot ids only.
FEEDS_EXECUTES: Final = ("feeds_parking_transactions(timestamptz, double precision, text[])",)


def create_roles(conn: psycopg.Connection) -> None:
    """Create the group roles when missing (roles are cluster-wide; needs CREATEROLE)."""
    can = conn.execute(
        "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if not can or not can[0]:
        log.warning(
            "cannot create streetsense roles: user lacks CREATEROLE; ask an administrator to "
            "run `CREATE ROLE <name> NOLOGIN` for %s, then `streetsense db migrate` again",
            ", ".join(ROLES),
        )
        return
    for role in ROLES:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))


def apply_grants(conn: psycopg.Connection) -> None:
    """Grant each existing role exactly its privileges on every relation of the schema."""
    present = {
        row[0]
        for row in conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(ROLES),)
        )
    }
    if not present:
        return
    relations = [
        row[0]
        for row in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v', 'm', 'p') "
            "AND c.relname NOT LIKE '\\_%%'"
        )
    ]
    database = conn.execute("SELECT current_database()").fetchone()
    for role in sorted(present):
        _grant_role(conn, role, relations, str(database[0]) if database else "")


def _grant_role(conn: psycopg.Connection, role: str, relations: list[str], database: str) -> None:
    who = sql.Identifier(role)
    conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
        sql.Identifier(database), who))  # fmt: skip
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(who))
    for relation in relations:
        table = sql.Identifier(relation)
        conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(table, who))
        if relation in SECRETS:
            privileges = "SELECT" if role in (INGEST, FLEET) else ""
        else:
            privileges = _privileges(role, relation)
        if privileges:
            _grant(conn, privileges, relation, who)
    if role in (INGEST, ANALYTICS, DASHBOARD, ALERTS, FLEET):
        conn.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}").format(who))
    if role == FEEDS:
        for function in FEEDS_EXECUTES:
            if conn.execute("SELECT to_regprocedure(%s)", (function,)).fetchone() != (None,):
                conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(
                    sql.SQL(function), who))  # fmt: skip


def _grant(conn: psycopg.Connection, privileges: str, relation: str, who: sql.Identifier) -> None:
    grant = sql.SQL("GRANT {} ON {} TO {}")
    table = sql.Identifier(relation)
    try:
        with conn.transaction():
            conn.execute(grant.format(sql.SQL(privileges), table, who))
    except psycopg.errors.UndefinedColumn:
        # TimescaleDB up to 2.28 copies a column-level grant to the compressed hypertable,
        # which has no columns (fixed in 2.29): the whole table is granted instead.
        whole = re.sub(r"\s*\([^)]*\)", "", privileges)
        log.warning(
            "TimescaleDB refuses column-level privileges on %s (fixed in TimescaleDB 2.29);"
            " granting %s on the whole table instead",
            relation,
            whole,
        )
        conn.execute(grant.format(sql.SQL(whole), table, who))


def _privileges(role: str, relation: str) -> str:
    if role == FEEDS:
        return "SELECT" if relation in FEEDS_READS else ""
    if role == DASHBOARD and relation not in DASHBOARD_WRITES:
        return "" if relation in INTERNAL else "SELECT"
    writes = _writes(role, relation)
    return f"SELECT, {writes}" if writes else "SELECT"


def _writes(role: str, relation: str) -> str:
    if role == DASHBOARD:
        return DASHBOARD_WRITES[relation]
    if role == ALERTS:
        return "INSERT, UPDATE, DELETE" if relation in ALERTS_WRITES else ""
    if role == INGEST:
        return INGEST_WRITES.get(relation, "")
    if role == FLEET:
        return (
            "INSERT, UPDATE, DELETE" if relation in FLEET_TABLES else FLEET_WRITES.get(relation, "")
        )
    if relation in ANALYTICS_CONSUMES:
        return ANALYTICS_CONSUMES[relation]
    derived = (
        relation not in REGISTRY_TABLES
        and relation not in INGEST_WRITES
        and relation not in DASHBOARD_WRITES
        and relation not in ALERTS_WRITES
        and relation not in FLEET_TABLES
    )
    return "INSERT, UPDATE, DELETE, TRUNCATE" if derived else ""

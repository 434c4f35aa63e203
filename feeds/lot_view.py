"""Build the public view of one lot: counts checked, categories, opening status, forecast."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final

from feeds.forecast_view import Curve, lot_forecast, only_later
from feeds.live import GENERAL, LiveLot
from feeds.model import HORIZONS_MIN, CategoryView, Forecast, LotView, Unavailable, trend_of
from store.feeds_reads import LotRow, PublicOverride
from streetsense.config import CitySettings
from streetsense.hours import OpeningStatus
from streetsense.lot_checks import Check, checked_category, checked_occupied
from streetsense.lot_status import lot_status
from streetsense.registry import SpaceCategory

CLOSED_AHEAD = Unavailable("closed", "the lot is closed then")
_ORDER: Final = {category.value: index for index, category in enumerate(SpaceCategory)}


def build_lot_view(
    lot: LotRow,
    live: LiveLot | None,
    now: datetime,
    *,
    override: PublicOverride | None,
    stale: bool,
    baseline: float | None,
    curve: Curve | None,
    forecast_reason: Unavailable,
    city: CitySettings,
) -> LotView:
    """Return the lot as every feed publishes it (its forecast re-anchored on its count)."""
    status = lot_status(lot.opening_hours, override, now, city.timezone, city.country)
    closed = status.status is OpeningStatus.CLOSED
    occupied: int | None = None
    checks: tuple[Check, ...] = ()
    if live is not None:
        occupied, checks = checked_occupied(lot.capacity, live)
    categories, category_checks = _categories(lot, live, closed)
    return LotView(
        id=lot.lot_id,
        name=lot.name,
        kind=lot.kind,
        area=lot.area,
        lat=lot.lat,
        lon=lot.lon,
        capacity=lot.capacity,
        occupied=occupied,
        observed_at=None if live is None else live.observed_at,
        stale=stale,
        trend=trend_of(occupied, baseline, lot.capacity),
        forecast=_forecast_ahead(
            lot,
            override,
            lot_forecast(curve, forecast_reason, lot.capacity, occupied, now, stale=stale),
            now,
            city,
        ),
        status=status.status,
        status_source=status.source.value,
        status_reason=status.reason,
        status_until=status.next_change,
        opening_hours=lot.opening_hours,
        categories=categories,
        facts=lot.facts,
        checks=checks + category_checks,
    )


def _categories(
    lot: LotRow, live: LiveLot | None, closed: bool
) -> tuple[tuple[CategoryView, ...], tuple[Check, ...]]:
    """Return each category's capacity and, where spot sensors watch it, its occupancy."""
    if not lot.spaces and (live is None or set(live.categories) <= {GENERAL}):
        return (), ()  # a lot without categories publishes its total only
    # jsonb keeps its own key order: publish categories in the registry's order
    capacities = dict(sorted(lot.spaces.items(), key=lambda item: _ORDER[item[0]]))
    general = lot.capacity - sum(capacities.values())
    ordered = {GENERAL: general, **capacities} if general > 0 else capacities
    views, checks = [], []
    for name, capacity in ordered.items():
        raw = None if live is None else live.categories.get(name)
        if lot.sensed_spaces.get(name, 0) < capacity:
            raw = None  # sensors watch only some of these spaces: how many are free is unknown
        occupied, check = (None, None) if raw is None else checked_category(name, capacity, raw)
        if check is not None:
            checks.append(check)
        views.append(CategoryView(name, capacity, occupied, closed))
    return tuple(views), tuple(checks)


def steady(old: LotView | None, new: LotView, now: datetime) -> LotView:
    """Return `old` when the only news in `new` is its forecast counted from a later moment
    (same count, status and everything else; see `only_later`)."""
    if old is None or not only_later(old.forecast, new.forecast, now):
        return new
    return old if replace(new, forecast=old.forecast) == old else new


def _forecast_ahead(
    lot: LotRow,
    override: PublicOverride | None,
    forecast: Forecast,
    now: datetime,
    city: CitySettings,
) -> Forecast:
    """Blank the horizons at which the lot is closed: it will not be full then, it is shut."""
    statuses = tuple(
        lot_status(
            lot.opening_hours, override, now + timedelta(minutes=m), city.timezone, city.country
        ).status
        for m in HORIZONS_MIN
    )
    if OpeningStatus.CLOSED not in statuses:
        return replace(forecast, statuses=statuses)

    def open_only(values: tuple[float | None, ...]) -> tuple[float | None, ...]:
        if not values:
            return values
        return tuple(
            None if s is OpeningStatus.CLOSED else v for s, v in zip(statuses, values, strict=True)
        )

    reason, code = forecast.reason, forecast.reason_code
    if all(s is OpeningStatus.CLOSED for s in statuses):
        reason, code = CLOSED_AHEAD.reason, CLOSED_AHEAD.code
    return replace(
        forecast,
        values=open_only(forecast.values),
        low=open_only(forecast.low),
        high=open_only(forecast.high),
        statuses=statuses,
        reason=reason,
        reason_code=code,
    )

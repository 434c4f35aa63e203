"""Bring the demo city up, keep an eye on it, and take it down cleanly."""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import re
import sys
import time
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from streetsense.config import Settings, load_settings
from streetsense.config_cli import mask_credentials
from streetsense.demo import discovery, field, plan, ports, state
from streetsense.demo.broker import EmbeddedBroker
from streetsense.demo.database import EmbeddedPostgres, default_data_dir
from streetsense.demo.ports import free_port
from streetsense.demo.summary import (
    Snapshot,
    SummaryScreen,
    readings_total,
    summary_lines,
    take_snapshot,
)
from streetsense.demo.supervisor import ChildFailedError, ChildSpec, Supervisor
from streetsense.errors import ServiceUnavailableError
from streetsense.lifecycle import StopSignal

log = logging.getLogger(__name__)
SERVICE_START_TIMEOUT_S: Final = 120.0
SUMMARY_EVERY_S: Final = 2.0
RATE_WINDOW_S: Final = 60.0
METRICS_WAIT_S: Final = 20.0
LATE_MARGIN_S: Final = 86_400
# How often the demo notes how far its city has run (a restart fills the gap from there on),
# and the smallest gap worth a backfill.
LIVE_MARK_EVERY_S: Final = 10.0
MIN_GAP_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """The demo's command-line options."""

    lots: int
    segments: int
    history_s: float
    speed: float
    duration_s: float | None
    open_browser: bool
    fresh: bool
    dashboard_port: int
    feeds_port: int
    data_dir: Path
    seed: int
    config: str | None
    agent_lots: int = 0
    agent_segments: int = 0
    port_notes: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DemoOptions:
        """Build the options from parsed arguments.

        Raises:
            ConfigError: a port given on the command line is taken.
        """
        dashboard_port, dashboard_note = ports.choose(
            "dashboard", args.dashboard_port, ports.DASHBOARD, "--dashboard-port"
        )
        feeds_port, feeds_note = ports.choose("feeds API", args.feeds_port, ports.FEEDS,
                                              "--feeds-port")  # fmt: skip
        return cls(
            lots=args.lots,
            segments=args.segments,
            history_s=args.history,
            speed=args.speed,
            duration_s=args.duration,
            open_browser=not args.no_browser,
            fresh=args.fresh,
            dashboard_port=dashboard_port,
            feeds_port=feeds_port,
            data_dir=Path(args.data_dir) if args.data_dir else default_data_dir(),
            seed=args.seed,
            config=args.config,
            agent_lots=min(args.agent_lots, args.lots),
            agent_segments=min(args.agent_segments, args.segments),
            port_notes=tuple(note for note in (dashboard_note, feeds_note) if note),
        )


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the demo's services answer."""

    dashboard: str
    feeds: str
    metrics: str | None

    def lines(self) -> list[str]:
        """Return the URLs worth printing."""
        lines = [
            f"dashboard     {self.dashboard}",
            f"feeds         {self.feeds}/v1/parking/lots",
            f"OpenAPI docs  {self.feeds}/docs",
        ]
        if self.metrics:
            lines.append(f"metrics       {self.metrics}")
        return lines


def run_demo(options: DemoOptions) -> int:
    """Run the demo until Ctrl-C or `duration`; return the exit code."""
    settings = load_settings(options.config)
    stop = StopSignal().install()
    with contextlib.ExitStack() as services:
        env = _service_env(settings, options, services)
        supervisor = Supervisor(options.data_dir / "logs", env, stop)
        services.callback(supervisor.stop_all)
        try:
            code = _run(supervisor, settings, options, env, stop)
        except ChildFailedError as exc:
            # a Ctrl-C during startup stops the step in hand: that is a clean stop too
            code = 0 if stop.stopping else 1
            if not stop.stopping:
                log.error("%s", exc)
    _say(
        f"\nstopped. Data and logs are in {options.data_dir}"
        + ("" if settings.database.url else " (run with --fresh to start over)")
        + "\n"
    )
    return code


def _service_env(
    settings: Settings, options: DemoOptions, services: contextlib.ExitStack
) -> dict[str, str]:
    """Start the embedded services that are not configured; return the children's environment."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if options.config:
        env["STREETSENSE_CONFIG"] = str(Path(options.config).resolve())
    if not settings.mqtt.url:
        broker = services.enter_context(EmbeddedBroker())
        # amqtt speaks MQTT 3.1.1 only and has no shared subscriptions
        env |= {
            "STREETSENSE_MQTT_URL": broker.url,
            "STREETSENSE_MQTT_PROTOCOL": "3.1.1",
            "STREETSENSE_MQTT_SHARED_GROUP": "",
        }
    if not settings.database.url:
        database = services.enter_context(EmbeddedPostgres(options.data_dir, fresh=options.fresh))
        env["STREETSENSE_DATABASE_URL"] = database.url()
    elif options.fresh:
        log.warning("--fresh only resets the embedded database; %s is left as it is", "yours")
    env["STREETSENSE_FEEDS_PORT"] = str(options.feeds_port)
    env["STREETSENSE_DASHBOARD_PORT"] = str(options.dashboard_port)
    # ingest refuses readings older than its late window; the backfill must fit in it
    late_window_s = max(settings.ingest.late_window_s, int(options.history_s) + LATE_MARGIN_S)
    env["STREETSENSE_INGEST_LATE_WINDOW_S"] = str(late_window_s)
    if settings.ingest.metrics_port:
        env["STREETSENSE_INGEST_METRICS_PORT"] = str(free_port())
    if settings.alerts.metrics_port:
        env["STREETSENSE_ALERTS_METRICS_PORT"] = str(free_port())
    return env


def _run(
    supervisor: Supervisor,
    settings: Settings,
    options: DemoOptions,
    env: dict[str, str],
    stop: StopSignal,
) -> int:
    city = plan.CityPlan(
        registry_path=options.data_dir / "city.toml",
        state_dir=options.data_dir / "devices",
        lots=options.lots,
        segments=options.segments,
        seed=options.seed,
        history_s=options.history_s,
        speed=options.speed,
        agent_lots=options.agent_lots,
        agent_segments=options.agent_segments,
    )
    started = time.monotonic()
    if city.catch_up_s > 0:
        log.info(
            "--speed %g: the last %.1f h play at that speed, then the city runs in real time",
            city.speed, city.catch_up_s / 3600,
        )  # fmt: skip
    _say("preparing the database and the city...\n")
    supervisor.run(plan.migrate_step())
    identity = _city_state(city, env)
    if not state.is_prepared(options.data_dir, identity) or not city.registry_path.is_file():
        supervisor.run(plan.city_step(city))
    site = field.add_to_registry(city.registry_path)
    supervisor.run(plan.registry_step(city))
    supervisor.run(plan.keys_step(city))  # as an installer provisions each device
    supervisor.start(plan.ingest_step())
    _backfill(supervisor, city, options.data_dir, identity)
    endpoints = _endpoints(options, env)
    # what ingest wrote before the devices go live, so the summary counts live readings only
    baseline = _first_reading_count(endpoints.metrics, stop) if endpoints.metrics else None
    for spec in plan.service_steps(city, options.feeds_port, options.dashboard_port):
        supervisor.start(spec)
    supervisor.run(plan.closure_step(city))
    _wait_ready(supervisor, endpoints, stop)
    running = _running(options, endpoints, env, city, site)
    running.write()
    _say("\n".join(banner(running, city, options.port_notes)) + "\n")
    log.info("demo ready %.1f s after start", time.monotonic() - started)
    if options.open_browser and _has_desktop():
        webbrowser.open(endpoints.dashboard)
    try:
        return _watch(supervisor, endpoints, options, stop, baseline)
    finally:
        discovery.clear(options.data_dir)
        state.mark_live(options.data_dir)


def _backfill(
    supervisor: Supervisor, city: plan.CityPlan, data_dir: Path, identity: dict[str, object]
) -> None:
    """Backfill the whole history of a new city, or the time since a prepared one last ran."""
    if not state.is_prepared(data_dir, identity) or not city.registry_path.is_file():
        if city.history_s > 0:
            _say(f"backfilling {city.history_s / 86_400:g} days of history...\n")
            supervisor.run(plan.backfill_step(city), echo=sys.stderr, timeout_s=3600)
        state.mark_prepared(data_dir, identity)
        return
    gap = state.gap_s(data_dir)
    if city.history_s > 0 and gap >= MIN_GAP_S:
        span = min(gap, city.history_s)
        _say(f"filling the {_span(span)} since the demo last ran...\n")
        supervisor.run(plan.backfill_step(city, span), echo=sys.stderr, timeout_s=3600)
    state.mark_live(data_dir)


def _span(seconds: float) -> str:
    if seconds >= 2 * 86_400:
        return f"{seconds / 86_400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"


def _running(
    options: DemoOptions,
    endpoints: Endpoints,
    env: dict[str, str],
    city: plan.CityPlan,
    site: str,
) -> discovery.RunningDemo:
    """Describe the running demo, and write the field engineer's agent config."""
    mqtt = {
        "url": env["STREETSENSE_MQTT_URL"],
        "protocol": env.get("STREETSENSE_MQTT_PROTOCOL", "5"),
        "topic_prefix": env.get("STREETSENSE_MQTT_TOPIC_PREFIX", "streetsense/v1"),
    }
    config = field.write_agent_config(
        options.data_dir / field.CONFIG_FILE, site, mqtt, plan.agent_keys(city.state_dir),
        options.data_dir / "field-agent",
    )  # fmt: skip
    shared = ("STREETSENSE_DATABASE_URL", "STREETSENSE_MQTT_URL", "STREETSENSE_MQTT_PROTOCOL",
              "STREETSENSE_MQTT_SHARED_GROUP", "STREETSENSE_MQTT_TOPIC_PREFIX")  # fmt: skip
    return discovery.RunningDemo(
        pid=os.getpid(),
        data_dir=str(options.data_dir),
        dashboard=endpoints.dashboard,
        feeds=endpoints.feeds,
        broker=mqtt["url"],
        database=env["STREETSENSE_DATABASE_URL"],
        agent_config=str(config),
        settings={key: env[key] for key in shared if key in env},
        metrics=endpoints.metrics or "",
    )


def _shown(url: str) -> str:
    """Return a URL fit to print: no password, and no empty one pretending to be hidden."""
    return mask_credentials(re.sub(r"^([a-z]+://[^:/@]*):@", r"\1@", url))


def banner(
    running: discovery.RunningDemo, city: plan.CityPlan, notes: tuple[str, ...]
) -> list[str]:
    """Return what the demo says once it runs: every URL, and how to add an agent of your own."""
    protocol = running.settings.get("STREETSENSE_MQTT_PROTOCOL", "5")
    agents = city.agent_lots + city.agent_segments
    return [
        "",
        "streetsense demo is running:",
        f"dashboard     {running.dashboard}",
        f"feeds         {running.feeds}/v1/parking/lots",
        f"OpenAPI docs  {running.feeds}/docs",
        f"broker        {_shown(running.broker)} (MQTT {protocol})",
        f"database      {_shown(running.database)}",
        *([f"metrics       {running.metrics}"] if running.metrics else []),
        f"devices       {agents} real edge agents (MQTT), the rest simulated",
        f"your agent    streetsense-edge run --config {running.agent_config}",
        *(f"note          {note}" for note in notes),
        "",
    ]


def _first_reading_count(metrics_url: str, stop: StopSignal) -> float | None:
    """Wait briefly for ingest's metrics to answer; return its written-readings count."""
    deadline = time.monotonic() + METRICS_WAIT_S
    while time.monotonic() < deadline and not stop.stopping:
        count = readings_total(metrics_url)
        if count is not None:
            return count
        stop.wait(0.25)
    return None


def _has_desktop() -> bool:
    """Tell whether a graphical browser can open (a console browser would take the terminal)."""
    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def _endpoints(options: DemoOptions, env: dict[str, str]) -> Endpoints:
    metrics_port = env.get("STREETSENSE_INGEST_METRICS_PORT")
    return Endpoints(
        dashboard=f"http://127.0.0.1:{options.dashboard_port}",
        feeds=f"http://127.0.0.1:{options.feeds_port}",
        metrics=f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else None,
    )


def _wait_ready(supervisor: Supervisor, endpoints: Endpoints, stop: StopSignal) -> None:
    """Wait until the feeds serve the city (their first snapshot read: before it they answer
    503 `starting`) and the dashboard answers, or a child dies."""
    from streetsense.demo.summary import get_json  # noqa: PLC0415

    deadline = time.monotonic() + SERVICE_START_TIMEOUT_S
    while time.monotonic() < deadline and not stop.stopping:
        _raise_if_dead(supervisor)
        if get_json(f"{endpoints.feeds}/v1/parking/lots?limit=1") is not None and _answers(
            endpoints.dashboard
        ):
            return
        stop.wait(0.5)
    if not stop.stopping:
        raise ServiceUnavailableError(
            f"the feeds API ({endpoints.feeds}) or the dashboard ({endpoints.dashboard}) did "
            f"not answer within {SERVICE_START_TIMEOUT_S:.0f} s; see the logs in "
            f"{supervisor.log_dir}"
        )


def _answers(url: str) -> bool:
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310
            return True
    except OSError:
        return False


def _watch(
    supervisor: Supervisor,
    endpoints: Endpoints,
    options: DemoOptions,
    stop: StopSignal,
    baseline: float | None,
) -> int:
    """Show the summary until a stop, the duration or a dead child."""
    screen = SummaryScreen(sys.stdout)
    live_since = time.monotonic()
    # devices report in bursts (a pack per interval): the rate is taken over a minute
    recent: collections.deque[Snapshot] = collections.deque()
    marked = time.monotonic()
    while not stop.stopping:
        if time.monotonic() - marked >= LIVE_MARK_EVERY_S:
            marked = time.monotonic()
            state.mark_live(options.data_dir)
        elapsed = time.monotonic() - live_since
        if options.duration_s is not None and elapsed >= options.duration_s:
            log.info("--duration %.0f s reached: stopping", options.duration_s)
            break
        _raise_if_dead(supervisor)
        now = take_snapshot(endpoints.feeds, endpoints.metrics)
        while recent and now.at - recent[0].at > RATE_WINDOW_S:
            recent.popleft()
        screen.show(summary_lines(now, recent[0] if recent else None, elapsed, baseline))
        recent.append(now)
        stop.wait(SUMMARY_EVERY_S)
    last = take_snapshot(endpoints.feeds, endpoints.metrics)
    elapsed = time.monotonic() - live_since
    log.info("final: %s", " | ".join(summary_lines(last, None, elapsed, baseline)))
    return 0


def _raise_if_dead(supervisor: Supervisor) -> None:
    dead = supervisor.dead()
    if dead:
        raise ChildFailedError("\n".join(child.describe_exit() for child in dead))


def _city_state(city: plan.CityPlan, env: dict[str, str]) -> dict[str, object]:
    """What identifies a prepared city in its data folder."""
    return {
        "database": env.get("STREETSENSE_DATABASE_URL", ""),
        "lots": city.lots,
        "segments": city.segments,
        "seed": city.seed,
        "history_s": city.history_s,
    }


def _say(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


__all__ = ["ChildSpec", "DemoOptions", "run_demo"]

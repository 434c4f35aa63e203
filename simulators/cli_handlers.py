"""What the `streetsense simulate` sub-commands do (imported only when one runs)."""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from simulators import runner
from simulators import scenario as scenarios
from simulators.city import City, CitySpec, agent_devices, generate_city
from simulators.demand import Calendar
from simulators.load import LoadSpec, run_load
from simulators.load import registry_tables as load_registry_tables
from simulators.mqtt import PacedPublisher
from simulators.packs import Packer, SequenceBook
from simulators.registry_file import to_toml, write_registry
from simulators.replay import read_recording, registry_tables, shifted_readings
from streetsense.config import Settings, load_settings
from streetsense.errors import ConfigError
from streetsense.lifecycle import StopSignal
from streetsense.registry import parse_registry
from streetsense.topics import Topics

log = logging.getLogger(__name__)
CATCH_UP_S = 3_600.0


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")


def _city(args: argparse.Namespace, settings: Settings) -> tuple[City, Calendar]:
    spec = CitySpec(
        seed=args.seed, lots=args.lots, segments=args.segments, site=args.site,
        name=settings.city.name,
    )  # fmt: skip
    city = generate_city(spec)
    if args.registry:
        registry = write_registry(city, args.registry)
        _write(f"registry {registry.version} written to {args.registry}")
    return city, Calendar(seed=args.seed, timezone=settings.city.timezone)


def _book(args: argparse.Namespace) -> SequenceBook:
    return SequenceBook(Path(args.state_dir) / f"sequences-{args.site}.json")


def city(args: argparse.Namespace) -> int:
    """Generate the city and write its registry file."""
    settings = load_settings(args.config)
    if not args.registry:
        args.registry = "city-registry.toml"
    generated, _ = _city(args, settings)
    street = sum(len(lot.sensors) for lot in generated.lots)
    _write(
        f"{len(generated.lots)} lots ({street} spot sensors), {len(generated.segments)} segments, "
        f"{len(generated.devices())} devices; load it with: streetsense registry load "
        f"{args.registry}"
    )
    return 0


def _check_late_window(settings: Settings, history_s: float) -> None:
    window = settings.ingest.late_window_s
    if history_s > window:
        raise ConfigError(
            f"ingest rejects readings older than ingest.late_window_s = {window} s, but the "
            f"backfill reaches {history_s:.0f} s back; run ingest with "
            f"STREETSENSE_INGEST_LATE_WINDOW_S={int(history_s + CATCH_UP_S)} (and the same "
            "for this command) or backfill less"
        )


def run(args: argparse.Namespace) -> int:
    """Publish history (if asked), then the live city until stopped or the duration ends."""
    settings = load_settings(args.config)
    generated, calendar = _city(args, settings)
    topics = Topics(settings.mqtt.topic_prefix)
    book = _book(args)
    stop = StopSignal().install()
    if args.speed <= 0 or (args.speed != 1.0 and args.catch_up <= 0):
        raise ConfigError(
            f"--speed {args.speed:g}: live readings cannot run ahead of the real clock (ingest "
            "refuses the future), so speed only applies to a past stretch; give --catch-up "
            "(e.g. --catch-up 6h --speed 60) or leave --speed at 1"
        )
    agents = frozenset(agent_devices(generated, args.agent_lots, args.agent_segments))
    if args.window < 1:
        raise ConfigError(f"--window {args.window}: give at least 1 unacknowledged message")
    window = args.window
    with PacedPublisher(settings, window, role="city", stop=stop.event) as publisher:
        if args.backfill > args.catch_up:
            _check_late_window(settings, args.backfill)
            end = time.time() - args.catch_up
            tally = runner.backfill(
                generated, calendar, topics, publisher, book,
                start=end - (args.backfill - args.catch_up), end=end, stop=stop,
            )  # fmt: skip
            _report("backfill", tally)
        if (args.duration is None or args.duration > 0) and not stop.stopping:
            _check_late_window(settings, args.catch_up)
            tally = runner.live(
                generated, calendar, topics, publisher, book, stop, duration_s=args.duration,
                catch_up_s=args.catch_up, speed=args.speed, exclude=agents,
            )  # fmt: skip
            left_out = f", {len(agents)} devices left to real agents" if agents else ""
            _report(f"live{left_out}", tally)
    book.save()
    return 0


def _report(what: str, tally: runner.Tally) -> None:
    span = ""
    if math.isfinite(tally.first_observed):
        first = datetime.fromtimestamp(tally.first_observed, UTC).isoformat(timespec="minutes")
        last = datetime.fromtimestamp(tally.last_observed, UTC).isoformat(timespec="minutes")
        span = f", observed {first} to {last}"
    _write(
        f"{what}: {tally.messages} messages, {tally.readings} readings in "
        f"{tally.seconds:.1f} s ({tally.rate:.0f} msg/s){span}"
    )


def scenario(args: argparse.Namespace) -> int:
    """Publish a stretch of city time with the faults asked for."""
    settings = load_settings(args.config)
    try:
        orders = [scenarios.parse_fault(text) for text in args.fault]
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    generated, calendar = _city(args, settings)
    topics = Topics(settings.mqtt.topic_prefix)
    book = _book(args)
    end = time.time()
    start = end - args.length
    messages = scenarios.build(generated, calendar, topics, book, orders, start=start, end=end)
    pacing = None
    if args.speed > 0:
        pacing = runner.Pacing(sim_start=start, wall_start=time.time(), speed=args.speed)
    tally = runner.Tally()
    began = time.monotonic()
    stop = StopSignal().install()
    with PacedPublisher(settings, role="scenario", stop=stop.event) as publisher:
        runner.deliver(messages, publisher, tally, pacing=pacing, stop=stop, book=book)
    tally.seconds = time.monotonic() - began
    book.save()
    _report(f"scenario ({', '.join(args.fault) or 'no faults'})", tally)
    return 0


def load(args: argparse.Namespace) -> int:
    """Publish benchmark load and report the achieved rate."""
    settings = load_settings(args.config)
    spec = LoadSpec(
        sensors=args.sensors, rate=args.rate, messages=args.messages,
        sensors_per_gateway=args.per_gateway,
    )  # fmt: skip
    if args.registry:
        tables = load_registry_tables(spec, (56.1572, 10.2107))
        parse_registry(tables)
        Path(args.registry).write_text(to_toml(tables, "Load-test devices"), encoding="utf-8")
        _write(f"registry of {len(tables['device'])} load devices written to {args.registry}")
    topics = Topics(settings.mqtt.topic_prefix)
    stop = StopSignal().install()
    with PacedPublisher(settings, window=args.window, role="load", stop=stop.event) as publisher:
        result = run_load(spec, topics, publisher, stop)
    _write(
        f"load: {result.messages} messages ({result.readings} readings) from "
        f"{args.sensors} sensors in {result.seconds:.1f} s: {result.rate:.0f} msg/s "
        f"achieved, {args.rate:.0f} asked"
    )
    return 0


def replay(args: argparse.Namespace) -> int:
    """Publish a recording's last days as counter readings, shifted to end by now."""
    settings = load_settings(args.config)
    recording = read_recording(args.file, args.timezone)
    tables = registry_tables(recording, args.site, (56.1572, 10.2107))
    if args.registry:
        parse_registry(tables)
        Path(args.registry).write_text(to_toml(tables, f"Lots replayed from {args.file}"))
        _write(f"registry of {len(tables['lot'])} lots written to {args.registry}")
    align = 7 if args.keep_weekdays else 1
    readings, refused = shifted_readings(recording, args.days, datetime.now(UTC), align_days=align)
    if readings:
        _check_late_window(settings, time.time() - readings[0].observed_at.timestamp())
    sites = {str(device["id"]): args.site for device in tables["device"]}
    packer = Packer(Topics(settings.mqtt.topic_prefix), sites, window_s=6 * 3_600.0)
    book = SequenceBook(Path(".streetsense-sim") / f"sequences-{args.site}.json")
    tally = runner.Tally()
    began = time.monotonic()
    stop = StopSignal().install()
    with PacedPublisher(settings, role="replay", stop=stop.event) as publisher:
        messages = packer.pack(readings, book)
        runner.deliver(messages, publisher, tally, stop=stop, book=book)
    tally.seconds = time.monotonic() - began
    book.save()
    runner.observe(tally, readings)
    _report(f"replay ({recording.skipped} rows unreadable, {refused} refused)", tally)
    return 0


def agents(args: argparse.Namespace) -> int:
    """Run real edge agents for a few devices of the city until stopped."""
    from simulators.agents import AgentFleet, CityDriver, agent_config  # noqa: PLC0415

    settings = load_settings(args.config)
    generated, calendar = _city(args, settings)
    chosen = agent_devices(generated, args.agent_lots, args.agent_segments)
    devices = args.device or chosen or _one_of_each_kind(generated)
    state = Path(args.state_dir) / "agents"
    state.mkdir(parents=True, exist_ok=True)
    members = [
        (
            agent_config(settings, generated.site, device, state),
            CityDriver(generated, calendar, device, speed=args.speed),
        )
        for device in devices
    ]
    stop = StopSignal().install()
    with AgentFleet(members) as fleet:
        _write(f"agents running for {', '.join(devices)}; buffers in {state}")
        stop.wait(args.duration if args.duration is not None else 1e9)
        accepted = sum(agent.accepted for agent in fleet.agents)
    _write(f"agents stopped; {accepted} readings accepted into their buffers")
    return 0


def _one_of_each_kind(city: City) -> list[str]:
    chosen: dict[str, str] = {}
    for device, kind in city.devices():
        chosen.setdefault(kind.value, device)
    return list(chosen.values())

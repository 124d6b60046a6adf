"""`manage.py simulate_chargers --count N --url ws://127.0.0.1:8000`: a simulated charger fleet."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.ocpp.simulator import SimConfig, run_charger


def _span(text: str) -> tuple[float, float]:
    """`MIN,MAX` seconds (or one number for both)."""
    parts = [float(p) for p in text.split(",")]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or not 0 <= parts[0] <= parts[1]:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX seconds with 0 <= MIN <= MAX, got {text!r}")
    return parts[0], parts[1]


class Command(BaseCommand):
    help = "Run simulated OCPP 1.6 chargers against a central system (boot, heartbeat, status, transactions)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="ws://host:port or http://host:port of the platform")
        parser.add_argument("--count", type=int, default=1, help="chargers named <prefix>001.. (unless --ids)")
        parser.add_argument("--prefix", default="SIM-")
        parser.add_argument("--ids", default="", help="comma-separated charge point ids (overrides --count)")
        parser.add_argument("--password", default=None, help="HTTP Basic password (same for all)")
        parser.add_argument("--id-tags", default="SIM-TAG", help="comma-separated id tags used for sessions")
        parser.add_argument(
            "--id-tag-template",
            default=None,
            help="one tag per connector instead of --id-tags, e.g. 'DEMO-{identity}-{connector}'",
        )
        parser.add_argument(
            "--id-tags-of",
            action="append",
            default=[],
            metavar="ID=TAG,TAG",
            help="the tags of one charger, one per connector (repeatable), e.g. a roaming partner's drivers' cards",
        )
        parser.add_argument("--connectors", type=int, default=2)
        parser.add_argument("--heartbeat", type=float, default=None, help="seconds (default: server's interval)")
        parser.add_argument("--meter-interval", type=float, default=15.0)
        parser.add_argument("--session-seconds", type=_span, default=(60.0, 180.0), help="MIN,MAX of a session")
        parser.add_argument("--idle-seconds", type=_span, default=(20.0, 90.0), help="MIN,MAX between sessions")
        parser.add_argument("--power-w", type=int, default=11_000, help="what a connector draws without profiles")
        parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("apps.ocpp.simulator").setLevel(logging.INFO)
        url = options["url"].replace("http://", "ws://").replace("https://", "wss://")
        ids = [i for i in options["ids"].split(",") if i] or [
            f"{options['prefix']}{n:03d}" for n in range(1, options["count"] + 1)
        ]
        config = SimConfig(
            url=url,
            password=options["password"],
            id_tags=[t for t in options["id_tags"].split(",") if t],
            connectors=options["connectors"],
            heartbeat=options["heartbeat"],
            meter_interval=options["meter_interval"],
            id_tag_template=options["id_tag_template"],
            session_seconds=options["session_seconds"],
            idle_seconds=options["idle_seconds"],
            power_w=options["power_w"],
        )
        self.stdout.write(
            f"Simulating {len(ids)} chargers against {url}: {', '.join(ids[:10])}{' …' if len(ids) > 10 else ''}"
        )
        configs = dict.fromkeys(ids, config)
        for item in options["id_tags_of"]:
            identity, _, tags = item.partition("=")
            if identity not in configs or not tags:
                raise CommandError(f"--id-tags-of {item!r}: expected ID=TAG[,TAG] with an ID of --ids")
            configs[identity] = dataclasses.replace(config, connector_tags=[t for t in tags.split(",") if t])
        asyncio.run(self._run(configs, options["duration"]))

    async def _run(self, configs: dict[str, SimConfig], duration: float | None) -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(run_charger(identity, config, stop)) for identity, config in configs.items()]
        try:
            if duration is None:
                await asyncio.gather(*tasks)
            else:
                await asyncio.sleep(duration)
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

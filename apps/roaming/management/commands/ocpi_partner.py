"""Run the OCPI 2.2.1 partner simulator (a small eMSP) on this machine, optionally registering with a CPO."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.roaming.partner_sim import PartnerSimulator


class Command(BaseCommand):
    help = "Run a simulated OCPI 2.2.1 eMSP (apps/roaming/partner_sim.py) until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9411)
        parser.add_argument("--country-code", default="NL")
        parser.add_argument("--party-id", default="SIM")
        parser.add_argument("--token-a", default="", help="The CREDENTIALS_TOKEN_A we issue to the CPO.")
        parser.add_argument("--register-with", default="", help="A CPO's versions URL to register with.")
        parser.add_argument("--cpo-token-a", default="", help="The CREDENTIALS_TOKEN_A the CPO issued to us.")
        parser.add_argument("--raw-tokens", action="store_true", help="2.1.1-style: do not Base64 the tokens.")
        parser.add_argument("--seconds", type=float, default=0, help="Stop after this long (0: run until Ctrl-C).")

    def handle(self, *args: Any, **options: Any) -> None:
        sim = PartnerSimulator(
            host=options["host"],
            port=options["port"],
            country_code=options["country_code"],
            party_id=options["party_id"],
            encode_tokens=not options["raw_tokens"],
        )
        if options["token_a"]:
            sim.server_token = options["token_a"]
        sim.start()
        self.stdout.write(f"eMSP {sim.country_code}*{sim.party_id} versions: {sim.versions_url}")
        self.stdout.write(f"CREDENTIALS_TOKEN_A for the CPO: {sim.server_token}")
        if options["register_with"]:
            answer = sim.register_with(options["register_with"], options["cpo_token_a"])
            self.stdout.write(
                f"registration: HTTP {answer['http_status']} status {answer.get('status_code')} "
                f"{answer.get('status_message', '')}"
            )
        try:
            deadline = time.monotonic() + options["seconds"] if options["seconds"] else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            sim.stop()

"""`llc-phone call +1…`: place an outbound call through the running server (the same POST /calls path).

The warm session must live in the server that will receive the media stream, so the CLI is
a client of ``llc-phone serve``: it sends what an API user would send, with LLC_API_TOKEN.
"""

from __future__ import annotations

import argparse
import string
import sys

import httpx
import orjson

from llc.config import E164_HINT, Settings, is_e164, load_settings


def _variables(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"llc-phone call: --var {pair!r} must look like name=value")
        out[key] = value
    return out


def missing_variables(settings: Settings, scenario_name: str, given: dict[str, str]) -> list[str]:
    """The ``{placeholders}`` of the scenario (from the same LLC_SCENARIOS the server reads) that
    ``given`` leaves unfilled; [] when this machine does not know the scenario (the server decides)."""
    from llc.modes.scenario import load_scenario_set

    scenario = load_scenario_set(settings.scenarios_path).scenarios.get(scenario_name)
    if scenario is None:
        return []
    templates = [scenario.instructions] + ([scenario.voicemail] if scenario.on_machine == "voicemail" else [])
    names = {name for template in templates for _, name, _, _ in string.Formatter().parse(template) if name}
    return sorted(names - set(given))


def run(args: argparse.Namespace) -> int:
    if not is_e164(args.number):
        print(f"llc-phone call: {args.number!r} is not {E164_HINT}", file=sys.stderr)
        return 2
    settings = load_settings()
    if not settings.api_token:
        print("llc-phone call: LLC_API_TOKEN is not set; set the same token the server uses", file=sys.stderr)
        return 2
    variables = _variables(args.var)
    missing = missing_variables(settings, args.scenario, variables)
    if missing:
        wanted = " ".join(f"--var {name}=VALUE" for name in missing)
        print(f"llc-phone call: scenario {args.scenario!r} needs {wanted} (its prompt says {{{missing[0]}}})", file=sys.stderr)
        return 2
    server = (args.server or f"http://{settings.host}:{settings.port}").rstrip("/")
    body: dict[str, object] = {"to": args.number, "scenario": args.scenario, "variables": variables}
    if args.no_prewarm:
        body["prewarm"] = False
    if args.amd is not None:
        body["machine_detection"] = args.amd
    try:
        resp = httpx.post(server + "/calls", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {settings.api_token}"})
    except httpx.HTTPError as exc:
        print(f"llc-phone call: no llc server at {server} ({exc}); start `llc-phone serve` or pass --server", file=sys.stderr)
        return 1
    try:
        data = resp.json()
    except ValueError:
        data = {"error": resp.text[:300]}
    if resp.status_code != 201:
        # The server speaks to API users ("variables"); here the same values are --var options.
        error = str(data.get("error", data)).replace('pass them in "variables"', "pass each as --var NAME=VALUE")
        print(f"llc-phone call: HTTP {resp.status_code}: {error}", file=sys.stderr)
        return 1
    print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("call", help="place an outbound call through the running server (POST /calls)")
    p.add_argument("number", help="who to call, E.164 (+15551234567)")
    p.add_argument("--scenario", default="default", help="outbound scenario (LLC_SCENARIOS)")
    p.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                   help="a prompt variable the scenario's {placeholders} need (repeatable), e.g. --var name=Ann")
    p.add_argument("--no-prewarm", action="store_true", help="connect OpenAI only when the callee answers")
    p.add_argument("--amd", action=argparse.BooleanOptionalAction, default=None,
                   help="override the scenario's answering-machine detection")
    p.add_argument("--server", help="the llc server's base URL (default http://LLC_HOST:PORT)")
    p.set_defaults(func=run)

"""The ``modelgate`` command: parses arguments and calls functions that tests call too."""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys


def _check(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, load

    try:
        deployment = load(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.load:
        import asyncio

        from gateway.check import load_problems

        problems = asyncio.run(load_problems(deployment))
        if problems:
            print(ConfigError(args.config, problems), file=sys.stderr)
            return 1
    versions = sum(len(m.versions) for m in deployment.models.values())
    loaded = ", every script loaded" if args.load else ""
    print(f"{args.config}: OK ({len(deployment.models)} models, {versions} versions{loaded})")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from gateway.server import serve

    return serve(args.config, listen=args.listen, json_logs=args.json_logs)


def _token_new(args: argparse.Namespace) -> int:
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    print(f"token (shown once, keep it secret): {token}")
    print("add under `tokens:` in the config:")
    print(f"  {args.name}: {{sha256: \"{digest}\"}}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelgate",
                                     description="Serve Python and R functions as REST models.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway and its worker pools")
    p.add_argument("config")
    p.add_argument("--listen", help="HOST:PORT, overrides gateway.listen")
    p.add_argument("--json-logs", action=argparse.BooleanOptionalAction, default=None,
                   help="JSON log lines (default: unless stdout is a terminal)")
    p.set_defaults(run=_serve)

    p = sub.add_parser("check", help="validate a config file and load its scripts")
    p.add_argument("config")
    p.add_argument("--load", action=argparse.BooleanOptionalAction, default=True,
                   help="also run every published script once, as serving would (default)")
    p.set_defaults(run=_check)

    p = sub.add_parser("token", help="access tokens")
    token_sub = p.add_subparsers(dest="token_command", required=True)
    t = token_sub.add_parser("new", help="print a new random token and its config line")
    t.add_argument("name")
    t.set_defaults(run=_token_new)

    p = sub.add_parser("bench", help="run the benchmark harness (see bench/)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(run=lambda a: __import__("bench.__main__").__main__.main(a.rest))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())

"""The ``modelgate`` command: parses arguments and calls functions that tests call too.

Each command imports what it needs when it runs, so that ``modelgate token new`` or ``--help``
do not load aiohttp, ZeroMQ or the YAML editor.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys


def _check(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, load
    from gateway.snapshots import prepare

    try:
        deployment, _ = prepare(load(args.config), take_missing=False)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.load:
        import asyncio

        from gateway.cli.check import load_problems

        problems = asyncio.run(load_problems(deployment))
        if problems:
            print(ConfigError(args.config, problems), file=sys.stderr)
            return 1
    versions = sum(len(m.versions) for m in deployment.models.values())
    loaded = ", every script loaded" if args.load else ""
    print(f"{args.config}: OK ({len(deployment.models)} models, {versions} versions{loaded})")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from gateway.cli.serve import serve

    return serve(args.config, listen=args.listen, json_logs=args.json_logs,
                 worker_user=args.worker_user)


def _token_new(args: argparse.Namespace) -> int:
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    print(f"token (shown once, keep it secret): {token}")
    print("add under `tokens:` in the config:")
    print(f"  {args.name}: {{sha256: \"{digest}\"}}")
    return 0


def _keys_new(args: argparse.Namespace) -> int:
    import os

    import zmq.auth

    os.makedirs(args.dir, exist_ok=True)
    public_file, secret_file = zmq.auth.create_certificates(args.dir, args.name)
    os.chmod(secret_file, 0o600)
    print(f"public key:  {public_file}  (give it to the other side: the gateway's "
          "workers_curve.authorized_keys directory, or a worker's --server-key)")
    print(f"secret key:  {secret_file}  (keep it on this host only)")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from gateway.cli.worker import run

    return run(args.config, args.model, args.version, args.connect, workers=args.workers,
               key=args.key, server_key=args.server_key, json_logs=args.json_logs)


def _promote(args: argparse.Namespace) -> int:
    from gateway import edits
    from gateway.cli import control

    return control.run_action(args.command, args.config, args.url, args.wait,
                              lambda audit_log: edits.promote(args.model, args.version))


def _rollback(args: argparse.Namespace) -> int:
    from gateway import audit, edits
    from gateway.cli import control

    return control.run_action(args.command, args.config, args.url, args.wait,
                              lambda audit_log: edits.rollback(args.model,
                                                               audit.read_from(audit_log)))


def _unpublish(args: argparse.Namespace) -> int:
    from gateway import edits
    from gateway.cli import control

    return control.run_action(args.command, args.config, args.url, args.wait,
                              lambda audit_log: edits.unpublish(args.model, args.version)
                              if args.version is not None else edits.unpublish_model(args.model))


def _republish(args: argparse.Namespace) -> int:
    from gateway import edits
    from gateway.cli import control

    return control.run_action(args.command, args.config, args.url, args.wait,
                              lambda audit_log: edits.republish(args.model, args.version,
                                                                args.config))


def _gc(args: argparse.Namespace) -> int:
    from gateway.cli.gc import run

    return run(args.config, keep_days=args.keep_days, dry_run=args.dry_run)


def _publish(args: argparse.Namespace) -> int:
    from gateway import edits
    from gateway.cli import control

    return control.run_action(args.command, args.config, args.url, args.wait,
                              lambda audit_log: edits.publish(
                                  args.model, script=args.script, function=args.function,
                                  language=args.language, workers=args.workers,
                                  config_path=args.config, project=args.project,
                                  requirements=args.requirements))


def _run(args: argparse.Namespace) -> int:
    from gateway.cli.run import run

    command = args.training[1:] if args.training[:1] == ["--"] else args.training
    return run(args.publish, args.config, command, promote=args.promote,
               check_body=args.check_body, script=args.script, function=args.function,
               url=args.url, wait=args.wait, api=args.api)


def _reload(args: argparse.Namespace) -> int:
    from gateway.cli import control

    return control.reload(args.config, args.url, args.wait)


def _edit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="the deployment file to edit")
    p.add_argument("--url", help="reload through this gateway's admin API (an admin token in "
                                 "MODELGATE_TOKEN) instead of SIGHUP to <config>.pid")
    p.add_argument("--wait", type=float, default=120.0, metavar="SECONDS",
                   help="how long to wait for the gateway's reload (0: do not wait)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelgate",
                                     description="Serve Python and R functions as REST models.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway and its worker pools")
    p.add_argument("config")
    p.add_argument("--listen", help="HOST:PORT, overrides gateway.listen")
    p.add_argument("--worker-user", metavar="USER",
                   help="as root: the user the pools run as, overrides gateway.worker_user")
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

    p = sub.add_parser("keys", help="CURVE key pairs for remote workers")
    keys_sub = p.add_subparsers(dest="keys_command", required=True)
    k = keys_sub.add_parser("new", help="write NAME.key (public) and NAME.key_secret")
    k.add_argument("name")
    k.add_argument("--dir", default=".", help="where to write the two files (default: here)")
    k.set_defaults(run=_keys_new)

    p = sub.add_parser("worker", help="run a remote pool that joins a gateway's version")
    p.add_argument("--connect", required=True, help="the gateway's workers_listen address")
    p.add_argument("--model", required=True)
    p.add_argument("--version", required=True, type=int)
    p.add_argument("--workers", type=int, default=0, help="default: the version's workers")
    p.add_argument("-c", "--config", required=True,
                   help="the deployment file (the same scripts must be on this host)")
    p.add_argument("--key", help="this worker's secret certificate (modelgate keys new)")
    p.add_argument("--server-key", help="the gateway's public certificate")
    p.add_argument("--json-logs", action=argparse.BooleanOptionalAction, default=None)
    p.set_defaults(run=_worker)

    p = sub.add_parser("promote", help="send production traffic to version N (advanced routing)")
    p.add_argument("model")
    p.add_argument("version", type=int)
    _edit_options(p)
    p.set_defaults(run=_promote)

    p = sub.add_parser("rollback", help="promote again the version promoted before this one")
    p.add_argument("model")
    _edit_options(p)
    p.set_defaults(run=_rollback)

    p = sub.add_parser("unpublish", help="stop serving version N, or without N the whole "
                                         "model (404 afterwards)")
    p.add_argument("model")
    p.add_argument("version", type=int, nargs="?")
    _edit_options(p)
    p.set_defaults(run=_unpublish)

    p = sub.add_parser("republish", help="serve an unpublished version N again, from its "
                                         "snapshot")
    p.add_argument("model")
    p.add_argument("version", type=int)
    _edit_options(p)
    p.set_defaults(run=_republish)

    p = sub.add_parser("gc", help="remove snapshots nothing refers to any more")
    p.add_argument("-c", "--config", required=True, help="the deployment file")
    p.add_argument("--keep-days", type=float, help="keep what the audit log named within "
                                                   "this many days (default: gateway.gc_keep_days)")
    p.add_argument("--dry-run", action="store_true", help="say what would be removed")
    p.set_defaults(run=_gc)

    p = sub.add_parser("publish", help="add the next version of a model")
    p.add_argument("model")
    p.add_argument("--script", required=True,
                   help="the script (from here, or relative to the config file)")
    p.add_argument("--function", required=True, help="the function to call")
    p.add_argument("--language", choices=("python", "r"),
                   help="default: from the script's suffix (.py, .R)")
    p.add_argument("--workers", type=int, help="default: those of the latest version")
    p.add_argument("--project", help="the directory the version snapshots (default: the "
                                     "model's `project`, else the script's directory)")
    p.add_argument("--requirements", help="a requirements (or lock) file in the project: the "
                                          "version runs in an environment of its own (default: "
                                          "the latest version's environment)")
    _edit_options(p)
    p.set_defaults(run=_publish)

    p = sub.add_parser("run", help="run a training command in a model's project; publish the "
                                   "project as the next version if it succeeds")
    p.add_argument("--publish", required=True, metavar="MODEL", help="the model to publish")
    p.add_argument("--promote", action="store_true",
                   help="then promote the new version, if a check call answers 200 "
                        "(advanced routing)")
    p.add_argument("--check-body", metavar="JSON",
                   help="the check call's body (default: the model's `example`)")
    p.add_argument("--script", help="default: the latest published version's")
    p.add_argument("--function", help="default: the latest published version's")
    p.add_argument("--api", metavar="URL",
                   help="publish (and promote) through this gateway's HTTP API, an admin "
                        "token in MODELGATE_TOKEN; CONFIG is only read")
    _edit_options(p)
    p.add_argument("training", nargs=argparse.REMAINDER,
                   help="-- COMMAND ARGS...: the training command")
    p.set_defaults(run=_run)

    p = sub.add_parser("reload", help="make the gateway serving CONFIG reload it")
    p.add_argument("config")
    p.add_argument("--url", help="through this gateway's admin API (token in MODELGATE_TOKEN)")
    p.add_argument("--wait", type=float, default=120.0, metavar="SECONDS")
    p.set_defaults(run=_reload)

    p = sub.add_parser("bench", help="run the benchmark harness (see bench/)")
    p.add_argument("options", nargs=argparse.REMAINDER, help="see `modelgate bench -h`")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its options are the harness's own (see `modelgate bench -h`)
        from bench.__main__ import main as bench

        return bench(argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.run(args))


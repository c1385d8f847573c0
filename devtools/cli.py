"""manage_all.py's command line: one short function per command over the devtools modules."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from devtools import (
    access,
    backup,
    contracts,
    health,
    instance,
    local_gateway,
    local_monitoring,
    logs,
    packages,
    programs,
    provision,
    replica,
    restore,
    suites,
    supervisor,
)
from devtools.bootstrap import bootstrap, running_in_virtualenv, was_reexecuted
from devtools.console import PlatformError, display, step


def cmd_up(args: argparse.Namespace) -> int:
    """Provision, migrate and seed, (re)start the processes, then wait until every service is healthy.

    Run again, it converges: supervisord adds, changes and removes programs to match the new rendering
    (web instances included, as `--scale` or topology.toml ask), and leaves unchanged ones running.
    """
    platform = instance.load_platform(scale=instance.parse_scale(args.scale))
    local_monitoring.render_monitoring(platform)  # first: a missing Prometheus fails before any change
    provision.provision(platform)
    # Every service's queues must exist before any seed publishes: catalog's product.created events
    # become inventory's stock rows, and an event published before its queue is bound is unroutable.
    provision.run_management_commands(platform, provision.MIGRATE_COMMANDS)
    provision.run_management_commands(platform, provision.SEED_COMMANDS)
    provision.ensure_rabbitmq_plugins(platform)
    platform = replica.prepare(platform, turned_off=args.no_replica)  # after seeding: the copy has it all
    local_gateway.render_gateway(platform)
    step(f"Rendering {display(platform.instance.supervisor_conf)}")
    supervisor.write_conf(
        platform.instance, supervisor.render_conf(platform.instance, programs.all_programs(platform))
    )
    instance.record_instances(platform)
    daemon = supervisor.Supervisor(platform.instance)
    daemon.start()
    health.wait_until_healthy(platform)
    daemon.wait_until_running()
    replica.wait_until_streaming(platform)
    local_monitoring.wait_until_ready(platform)
    access.print_access(platform)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    current = instance.load_platform().instance
    instance.forget_instances(current)
    stopped = supervisor.Supervisor(current).shutdown()
    replica.remove(current)  # after its standby stopped with the rest
    print(f"Instance {current.name!r} is {'stopped' if stopped else 'not running'}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    platform = instance.load_platform()
    daemon = supervisor.Supervisor(platform.instance)
    if daemon.pid() is None:
        print(f"Instance {platform.instance.name!r} is not running: start it with `python3 manage_all.py up`")
        return 3
    states = daemon.states()
    print("Processes:")
    for name, state in states.items():
        print(f"  {name:<24} {state}")
    print("Readiness:")
    all_healthy = True
    for target in health.health_targets(platform):
        status, answer = health.readiness(target.port, target.path)
        all_healthy &= status == "healthy"
        print(f"  {target.label}: {answer}")
    for name, answer in local_monitoring.answers(platform).items():
        all_healthy &= answer == "ok"
        print(f"  {name}: {answer}")
    replica_healthy, replica_answer = replica.describe(platform)
    all_healthy &= replica_healthy
    print(f"  read replica: {replica_answer}")
    return 0 if all_healthy and all(state == "RUNNING" for state in states.values()) else 1


def cmd_logs(args: argparse.Namespace) -> int:
    if args.correlation is None and args.json:
        raise PlatformError("--json goes with --correlation ID")
    if args.correlation is not None and (args.follow or args.service):
        raise PlatformError("--correlation reads every process's logs as they are: no service, no -f")
    platform = instance.load_platform()
    if args.correlation is not None:
        return logs.print_correlated_lines(platform.instance.log_dir, args.correlation, raw=args.json)
    if args.service is None:
        names = [program.name for program in programs.all_programs(platform)]
    elif args.service == "flower":
        names = ["flower"]
    else:
        service = platform.service(args.service)
        web = [name for name, _ in programs.web_instances(platform, service)]
        names = [
            *web,
            programs.program_name(service.name, "worker"),
            programs.program_name(service.name, "beat"),
        ]
    files = [str(path) for name in names if (path := platform.instance.log_dir / f"{name}.log").exists()]
    if not files:
        raise PlatformError(
            f"no logs in {display(platform.instance.log_dir)} yet: run `python3 manage_all.py up`"
        )
    command = ["tail", "-n", str(args.lines), *(["-F"] if args.follow else []), *files]
    return provision.exit_status(subprocess.run(command, check=False).returncode)


def cmd_migrate(args: argparse.Namespace) -> int:
    provision.run_management_commands(instance.load_platform(), provision.MIGRATE_COMMANDS)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    provision.run_management_commands(instance.load_platform(), provision.SEED_COMMANDS)
    return 0


def cmd_manage(args: argparse.Namespace) -> int:
    platform = instance.load_platform()
    if not args.arguments:
        raise PlatformError("name the manage.py command to run, e.g. `manage_all.py manage identity check`")
    services = platform.topology.services if args.service == "all" else (platform.service(args.service),)
    return max(provision.run_manage(platform, service, args.arguments) for service in services)


def cmd_test(args: argparse.Namespace) -> int:
    platform = instance.load_platform()
    chosen = suites.select_suites(suites.all_suites(platform), args.suites)
    names = {suite.name for suite in chosen}
    if names & suites.PLATFORM_SUITES:  # they start an instance, and check nginx's and promtool's files
        packages.ensure_nginx()
        local_monitoring.ensure_binaries()
    if "browser" in names:
        packages.ensure_chromium()
    if args.full:
        chosen = [suites.with_full_sets(suite) for suite in chosen]
    provision.provision(platform)
    reports = platform.instance.var_dir / "test-reports"
    results = [suites.run_suite(suite, args.pytest_arguments, reports) for suite in chosen]
    suites.print_summary(results)
    return 0 if all(result.ok for result in results) else 1


def cmd_backup(args: argparse.Namespace) -> int:
    """Dump the instance's databases and broker definitions; the manifest, as JSON, on stdout."""
    platform = instance.load_platform()
    with contextlib.redirect_stdout(sys.stderr):  # progress on stderr: stdout is the JSON alone
        folder, manifest = backup.take_backup(platform, args.output and args.output.resolve())
    print(json.dumps({"backup": str(folder), **manifest.to_json()}, indent=2))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore a backup into the instance; what was done, as JSON, on stdout."""
    if args.jobs < 1 or args.replay_window < 0:
        raise PlatformError("--jobs is at least 1 and --replay-window at least 0")
    platform = instance.load_platform()
    with contextlib.redirect_stdout(sys.stderr):
        report = restore.restore(
            platform,
            args.backup_dir.resolve(),
            force=args.force,
            jobs=args.jobs,
            replay_window=timedelta(minutes=args.replay_window),
        )
    print(json.dumps(dataclasses.asdict(report), indent=2))
    return 0


def cmd_contracts(args: argparse.Namespace) -> int:
    """Compare the committed contract snapshots (contracts/) with the code: `check`, or `update` them."""
    if args.allow_breaking and args.action != "update":
        raise PlatformError("--allow-breaking goes with `contracts update`")
    current = contracts.current_contracts(instance.load_platform())
    reviews = contracts.review_all(contracts.stored_contracts(), current)
    if args.action == "update":
        return contracts.update(reviews, allow_breaking=args.allow_breaking)
    return contracts.check(reviews)


# --- the command line ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="manage_all.py",
        description="Run, inspect and test the order platform (services from topology.toml). "
        "PLATFORM_INSTANCE=<name> selects an isolated instance (ports + 1000).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, handler, help_text, venv_need="require", needs_infrastructure=False):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(
            handler=handler, venv=venv_need, needs_infrastructure=needs_infrastructure, no_install=False
        )
        return sub

    up_help = "check infrastructure, install, provision, migrate, seed, start and wait until healthy"
    up = add("up", cmd_up, up_help, venv_need="install", needs_infrastructure=True)
    up.add_argument("--no-install", action="store_true", help="do not create or update .venv")
    up.add_argument(
        "--no-replica", action="store_true",
        help="run without the streaming read replica (also PLATFORM_REPLICA=off): every read on the primary",
    )  # fmt: skip
    up.add_argument(
        "--scale", action="append", default=[], metavar="SERVICE=N",
        help="run N web instances of SERVICE behind the gateway for this run (repeatable; "
        "overrides topology.toml's `instances`)",
    )  # fmt: skip

    add("down", cmd_down, "stop every process of the instance (supervisord shuts down)", venv_need="optional")
    add("status", cmd_status, "every process's state and each service's readiness answer")

    log_command = add(
        "logs", cmd_logs, "print or follow the process logs of one service, or of all", "optional"
    )
    log_command.add_argument(
        "service", nargs="?", help="a service from topology.toml, or flower (default: all)"
    )
    log_command.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    log_command.add_argument(
        "-n", "--lines", type=int, default=50, metavar="N", help="lines to show (default 50)"
    )
    log_command.add_argument(
        "--correlation", metavar="ID",
        help="every process's lines of one flow (a request's X-Request-ID), merged in time order",
    )  # fmt: skip
    log_command.add_argument("--json", action="store_true", help="with --correlation: the raw JSON lines")

    add("migrate", cmd_migrate, "run migrate and setup_messaging in every service")
    add("seed", cmd_seed, "load the idempotent demo data of every service that has a seed command")

    manage = add("manage", cmd_manage, "run `python manage.py ARGS` in one service or in all of them")
    manage.add_argument("service", help="a service from topology.toml, or all")
    manage.add_argument("arguments", nargs=argparse.REMAINDER, metavar="ARGS", help="manage.py arguments")

    backup_help = "dump each service's database and the broker's definitions with a manifest (JSON on stdout)"
    backup_command = add("backup", cmd_backup, backup_help)
    backup_command.add_argument(
        "--output", type=Path, metavar="DIR", help="where (default var/backups/<instance>/<UTC time>/)"
    )
    restore_help = "restore a backup into the instance (stopped first); JSON on stdout (docs/data.md)"
    restore_command = add("restore", cmd_restore, restore_help)
    restore_command.add_argument("backup_dir", type=Path, metavar="BACKUP_DIR", help="a folder backup wrote")
    restore_command.add_argument(
        "--force", action="store_true", help="replace databases and queues that hold data"
    )
    restore_command.add_argument(
        "--jobs", type=int, default=2, metavar="N", help="pg_restore's parallel jobs per database (default 2)"
    )
    restore_command.add_argument(
        "--replay-window", type=int, default=60, metavar="MINUTES",
        help="republish events published up to this long before the backup that a consumer had not "
        "recorded (default 60; 0: none; keep it under INBOX_RETENTION_SECONDS)",
    )  # fmt: skip

    contracts_help = (
        "check (default) that the code still honours the committed OpenAPI and AsyncAPI snapshots "
        "(contracts/), or update them (docs/contracts.md)"
    )
    contract_command = add("contracts", cmd_contracts, contracts_help)
    contract_command.add_argument("action", nargs="?", choices=("check", "update"), default="check")
    contract_command.add_argument(
        "--allow-breaking",
        action="store_true",
        help="with update: write a snapshot even over a breaking change",
    )

    test_help = "run the test suites and summarize; -- ARGS go to pytest"
    test = add("test", cmd_test, test_help, venv_need="install", needs_infrastructure=True)
    test.add_argument(
        "suites",
        nargs="*",
        metavar="SUITE",
        help="shared, sandbox, a service, system, browser, security, contracts, chaos (default: all)",
    )
    test.add_argument("--no-install", action="store_true", help="do not create or update .venv")
    test.add_argument(
        "--full",
        action="store_true",
        help="the slow full sets (outside CI): every chaos scenario; the contract fuzzing with a random seed",
    )
    return parser


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """Parse the command line; for `test`, everything after `--` is passed to pytest untouched."""
    pytest_arguments: list[str] = []
    if argv[:1] == ["test"] and "--" in argv:
        cut = argv.index("--")
        argv, pytest_arguments = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    args.pytest_arguments = pytest_arguments
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        if not was_reexecuted():
            bootstrap(
                venv_need=args.venv,
                install=not args.no_install,
                needs_infrastructure=args.needs_infrastructure,
            )
        elif not running_in_virtualenv():
            raise PlatformError(
                "the virtualenv in .venv is broken: remove .venv and run `python3 manage_all.py up`"
            )
        return args.handler(args)
    except PlatformError as problem:
        print(problem, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

"""The `haetae` command."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from haetae.config import MaintenanceWindow, Settings
from haetae.consortium.cli import app as consortium_app
from haetae.safety_report.cli import report_app

app = typer.Typer(
    help="Haetae: customer protection for digital banks and payment companies.",
    no_args_is_help=True,
)
keys_app = typer.Typer(
    help="API keys for merchants and the bank's own services.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
vault_app = typer.Typer(help="The card vault's encryption keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(vault_app, name="vault")
risk_app = typer.Typer(help="The fraud engine's data.", no_args_is_help=True)
app.add_typer(risk_app, name="risk")
certs_app = typer.Typer(help="Customers' authentication certificates.", no_args_is_help=True)
app.add_typer(certs_app, name="certs")
app.add_typer(consortium_app, name="consortium")
app.add_typer(report_app, name="report")
console = Console(stderr=True)
REJECTS_SHOWN = 50


def _settings() -> Settings:
    return Settings()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate every table (Alembic)."""
    from haetae.db.migrate import upgrade

    settings = _settings()
    upgrade(settings.effective_database_url)
    console.print(f"database at head: {settings.effective_database_url}")


@keys_app.command("create")
def keys_create(
    merchant: Annotated[str | None, typer.Option(help="Merchant name (created if new)")] = None,
    service: Annotated[str | None, typer.Option(help="Name of one of the bank's systems")] = None,
    scope: Annotated[
        list[str] | None, typer.Option(help="Scope for a service key (repeat)")
    ] = None,
    card_policy: Annotated[
        str | None, typer.Option(help="Card policy of a new merchant, or a change: none or vault")
    ] = None,
) -> None:
    """Create an API key; its secret is printed once, as the last line."""
    from haetae.db.engine import Database
    from haetae.db.migrate import upgrade
    from haetae.merchants.models import CardPolicy
    from haetae.merchants.service import get_or_create_merchant
    from haetae.security.api_keys import ALL_SCOPES, create_api_key

    if (merchant is None) == (service is None):
        raise typer.BadParameter("give exactly one of --merchant or --service")
    if card_policy not in (None, "none", "vault"):
        raise typer.BadParameter("--card-policy must be none or vault")
    scopes = list(scope or [])
    if service is not None and not scopes:
        raise typer.BadParameter(f"a service key needs --scope ({', '.join(ALL_SCOPES)})")
    unknown = set(scopes) - set(ALL_SCOPES)
    if unknown:
        raise typer.BadParameter(f"unknown scope(s): {', '.join(sorted(unknown))}")
    settings = _settings()
    upgrade(settings.effective_database_url)

    async def _create() -> str:
        db = Database(settings.effective_database_url)
        try:
            async with db.transaction() as session:
                if merchant is not None:
                    policy: CardPolicy | None = (
                        "vault" if card_policy == "vault" else "none" if card_policy else None
                    )
                    row = await get_or_create_merchant(session, merchant, card_policy=policy)
                    return await create_api_key(
                        session,
                        kind="merchant",
                        name=merchant,
                        scopes=["payments"],
                        merchant_id=row.id,
                    )
                assert service is not None
                return await create_api_key(session, kind="service", name=service, scopes=scopes)
        finally:
            await db.dispose()

    key = asyncio.run(_create())
    console.print("API key created; it is shown only now. Keep it secret.")
    typer.echo(key)


@vault_app.command("rotate")
def vault_rotate() -> None:
    """Make a new data key and re-encrypt every stored card under it."""
    from haetae.db.engine import Database
    from haetae.db.migrate import upgrade
    from haetae.payments.vault import CardVault
    from haetae.security.card_crypto import CardSecrets

    settings = _settings()
    upgrade(settings.effective_database_url)

    async def _rotate() -> tuple[str, int]:
        db = Database(settings.effective_database_url)
        vault = CardVault(CardSecrets.from_settings(settings))
        try:
            with Progress(
                TextColumn("re-encrypting cards"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("rotate", total=None)

                def _advance(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                async with db.transaction() as session:
                    return await vault.rotate(session, _advance)
        finally:
            await db.dispose()

    key_id, count = asyncio.run(_rotate())
    console.print(f"new data key {key_id}; {count} card(s) re-encrypted; old keys retired")


@vault_app.command("rewrap")
def vault_rewrap(
    new_master_key: Annotated[
        str, typer.Option(help="The new master key: 32 bytes, base64 (keep a copy!)")
    ],
) -> None:
    """Re-wrap every data key under a new master key."""
    import base64
    import binascii

    from haetae.db.engine import Database
    from haetae.db.migrate import upgrade
    from haetae.payments.vault import CardVault
    from haetae.security.card_crypto import CardSecrets, master_key_path, replace_key_file

    settings = _settings()
    try:
        new_key = base64.b64decode(new_master_key, validate=True)
        current = CardSecrets.from_settings(settings)
        new_secrets = current.with_master_key(new_key)
    except (binascii.Error, ValueError) as exc:
        raise typer.BadParameter(f"--new-master-key: {exc}") from exc
    upgrade(settings.effective_database_url)

    async def _rewrap() -> int:
        db = Database(settings.effective_database_url)
        try:
            async with db.transaction() as session:
                return await CardVault(current).rewrap(session, new_secrets)
        finally:
            await db.dispose()

    count = asyncio.run(_rewrap())
    if settings.master_key:
        console.print(
            f"{count} data key(s) re-wrapped. Set HAETAE_MASTER_KEY to the new key before the "
            "platform starts again: the old one no longer opens the vault."
        )
    else:
        replace_key_file(master_key_path(settings), new_key)
        console.print(f"{count} data key(s) re-wrapped; {master_key_path(settings)} replaced.")


@certs_app.command("import")
def certs_import(
    path: Annotated[Path, typer.Argument(help="A CSV file, or a folder of PEM files")],
    kind: Annotated[
        str, typer.Option(help="Kind of the certificates in a PEM folder: joint or financial")
    ] = "joint",
    batch: Annotated[int, typer.Option(min=1, help="Certificates per transaction")] = 2000,
) -> None:
    """Import certificates and plan their reminders; rejected rows are listed with reasons.

    A CSV has the columns customer_id, device_id, kind (joint or financial), issued_at (ISO
    8601 with offset) and optionally device_name. A folder holds one certificate per file,
    named <customer_id>.pem or <customer_id>__<device_id>.pem.
    """
    from haetae.certificates import importer
    from haetae.certificates.settings import CertificateSettings
    from haetae.db.base import utcnow
    from haetae.db.engine import Database
    from haetae.db.migrate import upgrade

    if kind not in ("joint", "financial"):
        raise typer.BadParameter("--kind must be joint or financial")
    if not path.exists():
        raise typer.BadParameter(f"{path} does not exist")
    settings = _settings()
    upgrade(settings.effective_database_url)
    total = importer.count_items(path)

    async def _import() -> importer.ImportSummary:
        db = Database(settings.effective_database_url)
        try:
            with Progress(
                TextColumn("importing certificates"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("import", total=total)
                return await importer.import_certificates(
                    db,
                    CertificateSettings.from_settings(settings),
                    importer.read_any(path, "financial" if kind == "financial" else "joint"),
                    utcnow(),
                    batch=batch,
                    on_progress=lambda done: progress.advance(task, done),
                )
        finally:
            await db.dispose()

    summary = asyncio.run(_import())
    console.print(
        f"imported {summary.imported} certificate(s), planned {summary.reminders_planned} "
        f"reminder(s); rejected {len(summary.rejected)}"
    )
    if summary.rejected:
        reasons = Table("reason", "rows", title="Rejected, by reason")
        for reason, count in Counter(r.reason for r in summary.rejected).most_common():
            reasons.add_row(reason, str(count))
        console.print(reasons)
        rows = Table("where", "reason", "detail", title=f"Rejected rows (first {REJECTS_SHOWN})")
        for rejected in summary.rejected[:REJECTS_SHOWN]:
            rows.add_row(rejected.where, rejected.reason, rejected.detail)
        console.print(rows)
    if summary.rejected and not summary.imported:
        raise typer.Exit(1)


@app.command("issuer-sim")
def issuer_sim(
    host: str = "127.0.0.1",
    port: int = 8583,
    latency_ms: Annotated[float, typer.Option(help="Added to every answer")] = 0.0,
    drop_rate: Annotated[float, typer.Option(help="Share of requests dropped unanswered")] = 0.0,
    maintenance: Annotated[
        list[str] | None, typer.Option(help="Daily window in Asia/Seoul, e.g. 23:30-00:30")
    ] = None,
) -> None:
    """Run the issuer simulator (ISO 8583 over TCP) with its test cards."""
    from haetae.issuer_sim.cards import describe_test_cards
    from haetae.issuer_sim.server import main as sim_main
    from haetae.logging import configure_logging

    configure_logging(cache=True)
    windows = [MaintenanceWindow.parse(w) for w in maintenance or []]
    table = Table("card", "brand", "behaviour", title=f"issuer simulator on {host}:{port}")
    for card in describe_test_cards():
        table.add_row(card["number"], card["brand"], card["behaviour"])
    console.print(table)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            sim_main(host, port, latency_ms, drop_rate, [(w.start, w.end) for w in windows])
        )


@app.command("notify-worker")
def notify_worker() -> None:
    """Run the notification dispatcher and the certificate reminders alone (scale it out:
    workers never send one delivery or reminder twice; one killed mid-send is taken over
    after the lease)."""
    from haetae.db.migrate import upgrade
    from haetae.logging import configure_logging
    from haetae.services import build_services, settle_heap

    settings = _settings()
    configure_logging(settings.log_level, json=settings.log_json, cache=True)
    upgrade(settings.effective_database_url)

    async def _run() -> None:
        services = build_services(settings, scores=False)  # it sends; it never decides
        settle_heap()
        try:
            await asyncio.gather(
                services.dispatcher.run_forever(settings.notify_poll_seconds),
                services.reminders.run_forever(settings.certificate_poll_seconds),
            )
        finally:
            await services.stop()

    _run_until_interrupted(_run())


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    demo: Annotated[bool, typer.Option(help="Seed demo data and run the issuer simulator")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="API processes on one port (PostgreSQL and Redis only; see operations)"
        ),
    ] = 1,
) -> None:
    """Start the API and console (and, with --demo, demo data and the issuer simulator)."""
    import uvicorn

    from haetae.app import create_app
    from haetae.db.migrate import upgrade
    from haetae.logging import configure_logging
    from haetae.services import build_services

    settings = _settings()
    if demo:
        settings = settings.model_copy(update={"demo": True})
    configure_logging(settings.log_level, json=settings.log_json, cache=True)
    if workers > 1:
        refusal = _why_not_several_processes(settings)
        if refusal:
            console.print(f"[red]--workers {workers}: {refusal}[/red]")
            raise typer.Exit(2)
    upgrade(settings.effective_database_url)
    server_options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,  # ours (structlog), set up above
        "access_log": False,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.trusted_proxies,  # whose X-Forwarded-For to believe
    }
    if workers > 1:
        # Each process builds its own services from the environment (app.create_worker_app).
        uvicorn.run("haetae.app:create_worker_app", factory=True, workers=workers, **server_options)
        return
    if demo:
        _ensure_demo_model(settings)
    services = build_services(settings)  # Services.start settles the heap

    async def _run() -> None:
        simulator = None
        if demo:
            from haetae.demo import seed_demo
            from haetae.issuer_sim.server import IssuerSimulator

            issuer = settings.issuer_list()[0]
            simulator = IssuerSimulator(issuer.host, issuer.port)
            await simulator.start()
            keys = await seed_demo(services)
            console.rule("Haetae demo")
            lines = [
                f"console:  http://{host}:{port}/   checkout: http://{host}:{port}/checkout",
                f"API docs: http://{host}:{port}/docs",
                f"certificates: http://{host}:{port}/console/certificates   "
                f"customer inbox: http://{host}:{port}/demo/inbox/demo-kim",
                f"issuer simulator: {issuer.host}:{simulator.port}",
                f"admin (service) key:   {keys.admin_key}",
                f"vault merchant key:    {keys.vault_merchant_key}",
                f"demo merchant API key: {keys.merchant_key}",
            ]
            for line in lines:  # unwrapped, so that a key can be copied whole
                console.print(line, soft_wrap=True, highlight=False)
        config = uvicorn.Config(create_app(settings, services), **server_options)
        try:
            await uvicorn.Server(config).serve()
        finally:
            if simulator is not None:
                await simulator.stop()

    _run_until_interrupted(_run())


@risk_app.command("export-history")
def risk_export_history(
    out: Annotated[Path, typer.Option(help="Parquet file to write")],
) -> None:
    """Write every decided event with its label (analysts' labels; unlabelled = genuine) as
    a Parquet history, for `haetae train --data OUT`: labels flow back into the model."""
    from haetae.db.engine import Database
    from haetae.risk.decisions.service import Decisions

    settings = _settings()

    async def _export() -> tuple[int, int]:
        db = Database(settings.effective_database_url)
        try:
            history = await Decisions(db).training_history()
        finally:
            await db.dispose()
        out.parent.mkdir(parents=True, exist_ok=True)
        history.write_parquet(out)
        return history.height, int(history["label"].sum() or 0)

    events, frauds = asyncio.run(_export())
    console.print(f"wrote {events} event(s), {frauds} labelled fraud, to {out}")


def _ensure_demo_model(settings: Settings) -> None:
    """The demo comes up with a fraud model trained on simulated data (once, ~15 s)."""
    from haetae.risk.bootstrap import ensure_demo_model

    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("fraud model: first start", total=None)
        made = ensure_demo_model(settings, lambda phase: bar.update(task, description=phase))
    if made is not None:
        figures = ", ".join(f"{k} {v:.3f}" for k, v in made.metrics.items())
        console.print(f"fraud model trained on simulated data: {made.model_path} ({figures})")


def _register_domain_commands() -> None:
    """Commands that live beside their domain (each module keeps its heavy imports lazy)."""
    from haetae.risk.features.offline import OfflineFeatures
    from haetae.risk.model.command import register as register_model
    from haetae.risk.replay_command import register as register_replay
    from haetae.simulate.command import register as register_simulate

    register_simulate(app)
    register_model(app, OfflineFeatures)
    register_replay(risk_app, _settings)


_register_domain_commands()


def _why_not_several_processes(settings: Settings) -> str | None:
    """What several API processes would get wrong with these settings, if anything."""
    from haetae.db.engine import is_sqlite

    if settings.demo:
        return "the demo runs in one process (its issuer simulator and data live there)"
    if is_sqlite(settings.effective_database_url):
        return (
            "SQLite has one writer per file: several API processes need PostgreSQL "
            "(HAETAE_DATABASE_URL=postgresql://...)"
        )
    if not settings.redis_url:
        return (
            "each process would keep its own feature history and step-up cards: set "
            "HAETAE_REDIS_URL so that they share them"
        )
    if "redis" not in settings.rate_limit_storage:
        return (
            "each process would count rate limits on its own (N times the limit): set "
            "HAETAE_RATE_LIMIT_STORAGE=async+redis://..."
        )
    return None


def _run_until_interrupted(main: Coroutine[Any, Any, None]) -> None:
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=_loop_factory()) as runner,
    ):
        runner.run(main)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (uvicorn[standard] brings it on Linux): uvicorn only picks
    it by itself when it starts the loop, and here we start it to run the simulator too."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    app()

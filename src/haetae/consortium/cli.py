"""``haetae consortium``: this institution's side of the affiliates' configuration."""

from __future__ import annotations

import typer

app = typer.Typer(help="Joint response with affiliate institutions.", no_args_is_help=True)


@app.command("key")
def key() -> None:
    """Print this institution's public key (base64), for the affiliates' configuration
    (their HAETAE_CONSORTIUM_PEERS). Unset, the signing key is generated on first use."""
    from haetae.config import Settings
    from haetae.consortium.settings import ConsortiumSettings

    try:
        settings = ConsortiumSettings.from_settings(Settings())
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(settings.public_key_b64)

"""Operator commands: `flask --app web lumi <command>` (plans, data inventory, purge)."""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup

from runtime.data import inventory, purge_shop
from shopify.domains import valid_shop_domain
from web.extensions import get_services

lumi = AppGroup("lumi", help="Lumi operator commands.")


def _shop(value: str) -> str:
    shop = valid_shop_domain(value)
    if shop is None:
        raise click.BadParameter("must be a shop domain like your-store.myshopify.com")
    return shop


@lumi.command("set-plan")
@click.argument("shop")
@click.argument("plan", required=False)
def set_plan(shop: str, plan: str | None) -> None:
    """Set SHOP's plan (omit PLAN to return it to the default plan)."""
    try:
        record = get_services().shops.set_plan(_shop(shop), plan)
    except (ValueError, LookupError) as err:
        raise click.ClickException(str(err)) from None
    chosen = get_services().shops.plan(record)
    click.echo(f"{record.domain}: plan {chosen.name} (chat kept {chosen.retention_days} days)")


@lumi.command("inventory")
@click.argument("shop")
def show_inventory(shop: str) -> None:
    """Print what Lumi holds for SHOP (key names and counts, no values)."""
    click.echo(json.dumps(inventory(get_services(), _shop(shop)), indent=2))


@lumi.command("purge")
@click.argument("shop")
@click.option("--category", "categories", multiple=True, help="products, settings, chat, operational (default all)")
@click.confirmation_option(prompt="Delete this shop's data?")
def purge(shop: str, categories: tuple[str, ...]) -> None:
    """Delete SHOP's data now and print the receipt."""
    receipt = purge_shop(get_services(), _shop(shop), categories=categories or None, reason="operator")
    click.echo(json.dumps(receipt, indent=2))


def init_app(app: Flask) -> None:
    app.cli.add_command(lumi)


@lumi.command("sync")
@click.argument("shop")
@click.option("--watch/--no-watch", default=True, help="follow the sync with a progress bar (default)")
def sync(shop: str, watch: bool) -> None:
    """Start (or join) a full catalogue sync for SHOP and show its progress."""
    import time

    from jobs.sync import progress, read_record, request_sync

    services = get_services()
    domain = _shop(shop)
    record = request_sync(services, domain, reason="operator")
    click.echo(f"{domain}: sync {record.get('status')} (generation {record.get('generation')})")
    if not watch:
        return
    shown = 0
    with click.progressbar(length=1, label="indexing", show_eta=True, show_pos=True) as bar:
        while True:
            state = progress(read_record(services.redis, domain))
            if state["total"] and bar.length != state["total"]:
                bar.length = state["total"]
            if state["done"] > shown:
                bar.update(state["done"] - shown)
                shown = state["done"]
            bar.label = f"{state['phase'] or 'queued'}"
            if state["state"] in ("completed", "failed"):
                break
            time.sleep(0.5)
    final = progress(read_record(services.redis, domain))
    if final["state"] == "failed":
        raise click.ClickException(f"sync failed: {final['error']}")
    click.echo(f"{domain}: {final['done']} products indexed")

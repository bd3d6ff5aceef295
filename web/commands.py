"""Operator commands: `flask --app web lumi <command>` (plans, data inventory, purge)."""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup

from core.purge import inventory, purge_shop
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

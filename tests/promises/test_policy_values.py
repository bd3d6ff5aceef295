"""Each data promise's check (checks.py) on the code as it is: every one must pass."""

from __future__ import annotations

import pytest

from tests.promises import checks
from tests.promises.checks import Lumi


def test_job_records_expire_within_7_days(lumi: Lumi) -> None:
    checks.check_job_records_expire_within_7_days(lumi)


def test_chat_retention_per_plan(lumi: Lumi) -> None:
    checks.check_chat_retention_per_plan(lumi)


def test_chat_expiry_is_absolute_and_nothing_brings_it_back(lumi: Lumi) -> None:
    checks.check_chat_expiry_is_absolute_and_nothing_brings_it_back(lumi)


def test_uninstall_deletes_config_and_token_at_once_and_chat_follows_its_retention(lumi: Lumi) -> None:
    checks.check_uninstall_deletes_config_and_token_at_once_and_chat_follows_its_retention(lumi)


@pytest.mark.parametrize("category", sorted(checks.CATEGORY_STORES))
def test_deleting_one_category_deletes_exactly_that_category(lumi: Lumi, category: str) -> None:
    checks.check_deleting_one_category_deletes_exactly_that_category(lumi, category)


def test_receipts_are_the_only_thing_kept_for_400_days(lumi: Lumi) -> None:
    checks.check_receipts_are_the_only_thing_kept_for_400_days(lumi)

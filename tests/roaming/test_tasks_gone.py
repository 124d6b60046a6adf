"""Roaming tasks outliving their rows."""

import pytest

from apps.roaming import tasks

pytestmark = pytest.mark.django_db


def test_a_command_task_whose_row_is_gone_is_dropped_not_failed() -> None:
    """A queue kept across a database reset (the demo's persistent Redis) hands the worker ids that no longer exist:
    the task ends quietly instead of raising DoesNotExist at every start."""
    assert tasks.command_run.apply(args=[987654321]).get() == "gone"


def test_an_emsp_command_expiry_whose_row_is_gone_is_dropped_not_failed() -> None:
    assert tasks.emsp_command_expire.apply(args=[987654321]).get() == "gone"

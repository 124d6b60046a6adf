from __future__ import annotations

from pathlib import Path

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper


@pytest.fixture(autouse=True)
def export_dir(tmp_path: Path, settings: SettingsWrapper) -> Path:
    folder = tmp_path / "exports"
    settings.REPORTS_EXPORT_DIR = folder
    return folder

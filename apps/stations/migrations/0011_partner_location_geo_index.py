"""The spatial index of partner locations in the driver station search: the same GiST on `geo_ecef(latitude,
longitude)` as our own locations (migration 0007, whose function it reuses), over the published partner locations
(the rows the driver search reads). `apps/sessions/selectors.py` (`partner_stations_near`) writes its SQL against
exactly this expression and predicate."""

from __future__ import annotations

from django.db import migrations

CREATE = """
CREATE INDEX partnerlocation_geo ON stations_partnerlocation
    USING gist (geo_ecef(latitude::float8, longitude::float8))
    WHERE publish;
"""

DROP = "DROP INDEX IF EXISTS partnerlocation_geo;"


class Migration(migrations.Migration):
    dependencies = [("stations", "0010_partner_stations")]

    operations = [migrations.RunSQL(CREATE, DROP)]

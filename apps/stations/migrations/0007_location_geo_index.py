"""The spatial index of the driver station search, without PostGIS (PostgreSQL's contrib `cube` only).

- `geo_ecef(lat, lon)`: the point on a sphere of the mean Earth radius (6371.0088 km) as a 3-D `cube` point in km
  (earth-centred x, y, z). IMMUTABLE, cube functions named with their schema, so an expression index can use it
  whatever the `search_path` (earthdistance's own `ll_to_earth` calls `earth()` unqualified and breaks restores
  and autovacuum analyze of such indexes).
- `location_geo`: GiST on `geo_ecef(latitude, longitude)` over the published locations in service, the rows the
  driver search reads. Not `(tenant_id, geo)` with btree_gist: Django binds the tenant id as an `integer` literal
  and btree_gist's `int8` operator class has no cross-type `=`, so the tenant would never be an index condition. The straight-line (chord) distance in 3-D
  grows with the great-circle distance, so `ORDER BY geo <-> point` is nearest first on the sphere, from the
  index (KNN); a radius or a map box is a cube the index answers with `@>`, then checked exactly.

`apps/sessions/selectors.py` (`stations_near`) writes its SQL against exactly this expression and predicate.
"""

from __future__ import annotations

from django.contrib.postgres.operations import CreateExtension
from django.db import migrations

FUNCTION = r"""
DO $do$
DECLARE s text;
BEGIN
    SELECT n.nspname INTO STRICT s FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'cube';
    EXECUTE format(
        $f$CREATE OR REPLACE FUNCTION geo_ecef(lat float8, lon float8) RETURNS %1$I.cube
           LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $b$
           SELECT %1$I.cube(ARRAY[
               6371.0088 * cos(radians(lat)) * cos(radians(lon)),
               6371.0088 * cos(radians(lat)) * sin(radians(lon)),
               6371.0088 * sin(radians(lat))]::float8[]) $b$$f$,
        s);
END
$do$;
CREATE INDEX location_geo ON stations_location
    USING gist (geo_ecef(latitude::float8, longitude::float8))
    WHERE publish AND decommissioned_at IS NULL;
"""

DROP = """
DROP INDEX IF EXISTS location_geo;
DROP FUNCTION IF EXISTS geo_ecef(float8, float8);
"""


class Migration(migrations.Migration):
    dependencies = [("stations", "0006_alter_chargepoint_status_alter_evse_status")]

    operations = [
        CreateExtension("cube"),
        migrations.RunSQL(FUNCTION, DROP),
    ]

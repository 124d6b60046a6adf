"""The search's GIN indexes without a long pending list: a search reads every entry of an index's pending list
(GIN's `fastupdate`, up to `gin_pending_list_limit`, 4 MB by default, until a vacuum or the insert that overflows it
merges them), and on the search benchmark's freshly written data that was most of a search's time.

Measured on the benchmark's database (220k drivers, 110k charge points; `EXPLAIN (ANALYZE)` of the generic plans and
`pgstatginindex`): 455 pending pages on the drivers' `search_document` index (the second tenant's 20k rows, written
after autovacuum's last pass) made its bitmap index scan take 51 ms for a query whose merged entries it answers in
0.24 ms (the invoices' index, vacuumed: 0 pending pages); 186 pending pages on the charge points' took 21-24 ms. With
every pending list merged (`gin_clean_pending_list`), on the same data and queries (`search_bench.py --reuse
--queries 10 --repeat 5`, the search as it was): addresses p50/p95 9.9/16.3 ms (load 3.1) instead of 23.5/29.7
(load 0.9, before the merge), misspelt names (the trigram tier) 56.3/68.6 instead of 103.8/128.3.

- Drivers, business customers, invoices and locations (and the words table of 0004): `fastupdate = off` (what PostgreSQL's GIN
  tips advise when "consistent response time is more important than update speed"). Written at a human pace; the
  cost measured: 10,000 drivers in one INSERT took 836 ms instead of 379 ms + 133 ms to merge the pending list later.
- Charge points: written on the OCPP path (324k updates, 607 of them HOT, in one ocpp_bench run: nearly every update
  writes both search indexes), so their pending list stays, capped at 128 kB (~16 pages, ~2 ms of a search) instead
  of 4 MB. Measured: 2,000 single-row non-HOT updates 281 + 3 ms (merge) instead of 233 + 22 ms with 4 MB, and
  437 ms with `fastupdate = off`; 5,000 rows in one UPDATE 494 + 7 ms instead of 285 + 67 ms (713 ms off).

Changing the parameter does not merge what is pending: `gin_clean_pending_list` does it here.
"""

from __future__ import annotations

from django.db import migrations

OFF = (
    "search_location_document",
    "search_location_names",
    "search_driver_document",
    "search_driver_names",
    "search_businesscustomer_document",
    "search_businesscustomer_names",
    "search_invoice_document",
    "search_invoice_names",
)
CAPPED = ("search_chargepoint_document", "search_chargepoint_names")
CAP_KB = 128

FORWARD = "\n".join(
    [f"ALTER INDEX {index} SET (fastupdate = off);" for index in OFF]
    + [f"ALTER INDEX {index} SET (gin_pending_list_limit = {CAP_KB});" for index in CAPPED]
    + [f"SELECT gin_clean_pending_list('{index}'::regclass);" for index in OFF + CAPPED]
)
BACKWARD = "\n".join(
    [f"ALTER INDEX {index} RESET (fastupdate);" for index in OFF]
    + [f"ALTER INDEX {index} RESET (gin_pending_list_limit);" for index in CAPPED]
)


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0002_globalsearch"),
    ]

    operations = [
        migrations.RunSQL(FORWARD, BACKWARD),
    ]

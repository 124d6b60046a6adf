"""Extensions the platform relies on: trigram search and GiST exclusion constraints."""

from django.contrib.postgres.operations import BtreeGistExtension, TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [TrigramExtension(), BtreeGistExtension()]

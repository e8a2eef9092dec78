"""On Postgres, the ledger refuses UPDATE at the database: history is corrected by new rows.

DELETE stays possible for retention jobs; TRUNCATE (used by tests) fires no row triggers.
"""

from django.db import migrations

CREATE = """
CREATE FUNCTION billing_ledger_refuse_update() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: add an adjustment entry instead of updating %', OLD.request_id;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_ledger_append_only BEFORE UPDATE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_refuse_update();
"""
DROP = """
DROP TRIGGER IF EXISTS billing_ledger_append_only ON billing_ledgerentry;
DROP FUNCTION IF EXISTS billing_ledger_refuse_update();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)  # None: the % in RAISE is not a placeholder


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]

"""An index for rebuilding a key's budget from its period's ledger rows.

On Postgres it is built CONCURRENTLY, so a large ledger keeps taking rows while it builds (a plain
CREATE INDEX would block every insert until done); that needs a migration outside a transaction.
"""

from django.db import migrations, models

INDEX = models.Index(fields=["api_key", "created_at"], name="billing_led_api_key_5a0b89_idx")


class AddIndexWithoutLocking(migrations.AddIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(model, self.index, concurrently=True)
        else:
            schema_editor.remove_index(model, self.index)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("billing", "0004_admission_limits")]

    operations = [AddIndexWithoutLocking(model_name="ledgerentry", index=INDEX)]

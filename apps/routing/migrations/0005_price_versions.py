"""Prices with effective dates: each deployment's prices become its first version, effective from its
creation, so every request already in the ledger falls in a version with the numbers it was costed with
(ledger rows keep no version id of their own: they were written before versions existed)."""

import django.core.validators
import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models


PRICE_FIELDS = ("input_usd_per_mtok", "output_usd_per_mtok", "cached_input_usd_per_mtok", "cache_write_usd_per_mtok")


def initial_versions(apps, schema_editor):
    Deployment = apps.get_model("routing", "Deployment")
    PriceVersion = apps.get_model("routing", "PriceVersion")
    PriceVersion.objects.bulk_create(
        PriceVersion(
            deployment_id=deployment.pk, effective_from=deployment.created_at, note="prices before versions existed",
            **{name: getattr(deployment, name) for name in PRICE_FIELDS},
        )
        for deployment in Deployment.objects.all().iterator()
    )


class Migration(migrations.Migration):

    dependencies = [
        ('routing', '0004_admission_limits'),
        ('billing', '0006_rollups'),  # LedgerEntry.price_version_id, which names these rows
    ]

    operations = [
        migrations.CreateModel(
            name='PriceVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('effective_from', models.DateTimeField(help_text='Requests received from this moment on pay these prices.')),
                ('input_usd_per_mtok', models.DecimalField(decimal_places=6, max_digits=14, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                ('output_usd_per_mtok', models.DecimalField(decimal_places=6, max_digits=14, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                ('cached_input_usd_per_mtok', models.DecimalField(blank=True, decimal_places=6, help_text='Blank: cached input tokens cost the input price.', max_digits=14, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                ('cache_write_usd_per_mtok', models.DecimalField(blank=True, decimal_places=6, help_text="Blank: prompt tokens written to the provider's cache cost the input price.", max_digits=14, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                ('note', models.TextField(blank=True, help_text="Why the prices changed (a provider's announcement, a contract).")),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('deployment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='price_versions', to='routing.deployment')),
            ],
            options={
                'ordering': ['deployment', 'effective_from'],
                'constraints': [models.UniqueConstraint(fields=('deployment', 'effective_from'), name='unique_price_version')],
            },
        ),
        migrations.RunPython(initial_versions, migrations.RunPython.noop),
    ]

"""The Celery app (cookiecutter-django's shape): `celery -A edge_project worker` and `celery -A edge_project beat`.

Its settings are Django's ``CELERY_*`` (edge_project/settings/base.py): Redis as the broker, the
beat schedule from edge_project.schedule. Tasks live in each app's ``tasks.py`` and only call
services. Without a broker (``REDIS_URL`` unset, as under `make run`) tasks run eagerly in the
calling process, and the gateway runs the schedule itself (edge_project.periodic).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edge_project.settings.base")

app = Celery("edge_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

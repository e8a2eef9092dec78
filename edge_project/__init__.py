# The Celery app is loaded with Django so that tasks (@shared_task) bind to it in every process:
# workers, beat, and the gateway that calls them eagerly when there is no broker.
from edge_project.celery import app as celery_app

__all__ = ("celery_app",)

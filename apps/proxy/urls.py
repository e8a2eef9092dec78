from django.urls import path

from apps.proxy import health
from apps.proxy.views import ChatCompletionsView, ModelsView

urlpatterns = [
    path("v1/chat/completions", ChatCompletionsView.as_view()),
    path("v1/models", ModelsView.as_view()),
    path("health", health.health),
    path("health/ready", health.ready),
    path("health/live", health.live),
]

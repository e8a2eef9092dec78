from django.urls import path

from apps.proxy import health
from apps.proxy.anthropic_inbound.view import MessagesView
from apps.proxy.completions import CompletionsView
from apps.proxy.embeddings import EmbeddingsView
from apps.proxy.views import ChatCompletionsView, ModelsView

urlpatterns = [
    path("v1/chat/completions", ChatCompletionsView.as_view()),
    path("v1/completions", CompletionsView.as_view()),
    path("v1/embeddings", EmbeddingsView.as_view()),
    path("v1/messages", MessagesView.as_view()),
    path("v1/models", ModelsView.as_view()),
    path("health", health.health),
    path("health/ready", health.ready),
    path("health/live", health.live),
]

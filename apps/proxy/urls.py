from django.urls import path, re_path

from apps.proxy import health
from apps.proxy.anthropic_inbound.count_tokens import CountTokensView
from apps.proxy.anthropic_inbound.endpoint import Messages
from apps.proxy.chat import ChatCompletions
from apps.proxy.completions import Completions
from apps.proxy.embeddings import Embeddings
from apps.proxy.metrics.view import metrics
from apps.proxy.organization import OrganizationUsageView
from apps.proxy.responses.endpoint import Responses
from apps.proxy.responses.views import InputItemsView, StoredResponseView
from apps.proxy.views import EndpointView, ModelsView, ModelView


def api(route: str) -> str:
    """``v1/<route>`` with or without a trailing slash: many clients join base URL and path into
    ``…/chat/completions/``; serving it beats a redirect they would not follow with their body."""
    return rf"^v1/{route}/?$"


urlpatterns = [
    re_path(api("chat/completions"), EndpointView.for_endpoint(ChatCompletions())),
    re_path(api("completions"), EndpointView.for_endpoint(Completions())),
    re_path(api("embeddings"), EndpointView.for_endpoint(Embeddings())),
    re_path(api("messages"), EndpointView.for_endpoint(Messages())),
    re_path(api("messages/count_tokens"), CountTokensView.as_view()),
    re_path(api("models"), ModelsView.as_view()),
    re_path(api("models/(?P<model_id>.+?)"), ModelView.as_view()),  # ids may hold slashes (org/model)
    # --- Responses API (apps.proxy.responses) ---
    re_path(api("responses"), EndpointView.for_endpoint(Responses())),
    re_path(api("responses/(?P<response_id>[^/]+)"), StoredResponseView.as_view()),
    re_path(api("responses/(?P<response_id>[^/]+)/input_items"), InputItemsView.as_view()),
    # Usage and costs in OpenAI's shapes, for keys with the reports scope.
    re_path(api("organization/costs"), OrganizationUsageView.for_kind("costs", "organization.costs")),
    re_path(api("organization/usage/completions"),
            OrganizationUsageView.for_kind("completions", "organization.usage.completions")),
    re_path(api("organization/usage/embeddings"),
            OrganizationUsageView.for_kind("embeddings", "organization.usage.embeddings")),
    path("health", health.health),
    path("health/ready", health.ready),
    path("health/live", health.live),
    path("metrics", metrics),
]

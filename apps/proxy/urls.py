from django.urls import path

from apps.proxy import health
from apps.proxy.anthropic_inbound.endpoint import Messages
from apps.proxy.chat import ChatCompletions
from apps.proxy.completions import Completions
from apps.proxy.embeddings import Embeddings
from apps.proxy.organization import OrganizationUsageView
from apps.proxy.views import EndpointView, ModelsView

urlpatterns = [
    path("v1/chat/completions", EndpointView.for_endpoint(ChatCompletions())),
    path("v1/completions", EndpointView.for_endpoint(Completions())),
    path("v1/embeddings", EndpointView.for_endpoint(Embeddings())),
    path("v1/messages", EndpointView.for_endpoint(Messages())),
    path("v1/models", ModelsView.as_view()),
    # Usage and costs in OpenAI's shapes, for keys with the reports scope.
    path("v1/organization/costs", OrganizationUsageView.for_kind("costs", "organization.costs")),
    path("v1/organization/usage/completions",
         OrganizationUsageView.for_kind("completions", "organization.usage.completions")),
    path("v1/organization/usage/embeddings",
         OrganizationUsageView.for_kind("embeddings", "organization.usage.embeddings")),
    path("health", health.health),
    path("health/ready", health.ready),
    path("health/live", health.live),
]

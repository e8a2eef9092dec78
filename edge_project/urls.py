from django.contrib import admin
from django.urls import include, path, re_path

from apps.proxy.unknown_paths import unknown_endpoint

admin.site.site_header = "LLM Edge"
admin.site.site_title = "LLM Edge admin"
admin.site.index_title = "Gateway administration"

urlpatterns = [
    path("", include("apps.proxy.urls")),
    path("admin/", admin.site.urls),
    # Last: any other path under /v1/ is a JSON 404 in its API's shape, DEBUG on or off.
    re_path(r"^v1/", unknown_endpoint),
]

handler404 = "edge_project.views.not_found"
handler500 = "edge_project.views.server_error"

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "LLM Edge"
admin.site.site_title = "LLM Edge admin"
admin.site.index_title = "Gateway administration"

urlpatterns = [
    path("", include("apps.proxy.urls")),
    path("admin/", admin.site.urls),
]

handler404 = "edge_project.views.not_found"
handler500 = "edge_project.views.server_error"

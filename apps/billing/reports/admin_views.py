"""Admin's report pages (staff with view permission on tenants): one tenant's, in its time zone, and
every tenant's together, in a chosen zone; each with its CSVs, and a tenant's FOCUS export."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from apps.billing.models import Tenant
from apps.billing.reports.focus import FocusForm, focus_response
from apps.billing.reports.page import ReportForm, csv_response, page_context, run


def report_urls(model_admin: admin.ModelAdmin[Tenant]) -> list[URLPattern]:
    wrap = model_admin.admin_site.admin_view
    return [
        path("reports/", wrap(lambda request: report_view(model_admin, request, None)), name="billing_tenant_reports"),
        path("<int:tenant_id>/report/", wrap(lambda request, tenant_id: report_view(model_admin, request, tenant_id)),
             name="billing_tenant_report"),
        path("<int:tenant_id>/focus/", wrap(lambda request, tenant_id: focus_view(model_admin, request, tenant_id)),
             name="billing_tenant_focus"),
    ]


def report_view(model_admin: admin.ModelAdmin[Tenant], request: HttpRequest, tenant_id: int | None) -> HttpResponse:
    tenant = _allowed(model_admin, request, tenant_id)
    form = ReportForm(request.GET, tenant=tenant)
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": f"Costs of {tenant.slug}" if tenant else "Costs of every tenant",
        "opts": model_admin.opts, "tenant": tenant, "form": form,
        "all_url": reverse("admin:billing_tenant_reports"),
    }
    if form.is_valid():
        report = run(form)
        export = request.GET.get("export")
        if export in ("periods", "rows", "keys"):
            query = report.query
            name = f"costs-{tenant.slug if tenant else 'all'}-{query.start}-{query.end}-{query.period}-{query.group}"
            return csv_response(report, export, name)
        context.update(page_context(report), report=report, query_string=request.GET.urlencode())
    if tenant is not None:
        context["focus_form"] = FocusForm(initial={"month": form.initial_month()})
    return TemplateResponse(request, "admin/billing/tenant/report.html", context)


def focus_view(model_admin: admin.ModelAdmin[Tenant], request: HttpRequest, tenant_id: int) -> HttpResponseBase:
    tenant = _allowed(model_admin, request, tenant_id)
    assert tenant is not None
    form = FocusForm(request.GET)
    if not form.is_valid():
        errors = form.errors.as_text()
        return HttpResponse(f"Choose a month as YYYY-MM: {errors}", status=400, content_type="text/plain")
    return focus_response(tenant, form.cleaned_data["month"])


def _allowed(model_admin: admin.ModelAdmin[Tenant], request: HttpRequest, tenant_id: int | None) -> Tenant | None:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    if tenant_id is None:
        return None
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        raise Http404("No such tenant.")
    return tenant

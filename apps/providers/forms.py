"""The provider form: the upstream API key is write-only, so a page can never leak it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms

from apps.providers.models import Provider

if TYPE_CHECKING:  # django-stubs makes ModelForm generic; Django itself cannot subscript it
    ProviderModelForm = forms.ModelForm[Provider]
else:
    ProviderModelForm = forms.ModelForm


class ProviderForm(ProviderModelForm):
    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        # render_value=False: the stored key never goes back to a browser, not even after a failed
        # POST. "new-password" stops browsers from autofilling the admin's own login password here.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "class": "vTextField"}),
        help_text="Stored encrypted and never shown again.",
    )
    clear_api_key = forms.BooleanField(
        label="Remove the stored API key", required=False, help_text="For providers that need no key."
    )

    class Meta:
        model = Provider
        fields = ["name", "kind", "base_url", "enabled", "timeout_s", "api_key", "clear_api_key", "extra_headers",
                  "api_version"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.has_api_key:
            self.fields["api_key"].help_text = "A key is stored. Leave blank to keep it; type a new one to replace it."
        else:
            del self.fields["clear_api_key"]  # nothing to clear

    def clean_extra_headers(self) -> dict[str, str]:
        headers = self.cleaned_data.get("extra_headers") or {}
        # The gateway sends these verbatim on every request: a list or a nested object would only
        # fail later, on the request path, so refuse it here.
        if not isinstance(headers, dict) or not all(
            isinstance(value, str | int | float) and not isinstance(value, bool) for value in headers.values()
        ):
            raise forms.ValidationError('Give a JSON object of header names to text values, e.g. {"X-Team": "ml"}.')
        return {str(name): str(value) for name, value in headers.items()}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("api_key") and cleaned.get("clear_api_key"):
            raise forms.ValidationError("Either type a new API key or remove the stored one, not both.")
        return cleaned

    def save(self, commit: bool = True) -> Provider:
        provider: Provider = super().save(commit=False)
        if self.cleaned_data.get("api_key"):
            provider.set_api_key(self.cleaned_data["api_key"])
        elif self.cleaned_data.get("clear_api_key"):
            provider.set_api_key("")
        # Blank and not cleared: api_key_encrypted is not a form field, so the stored key stays.
        if commit:
            provider.save()
        return provider

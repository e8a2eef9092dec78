"""The Vercel AI SDK's default OpenAI provider (its models speak the Responses API) through the gateway.

``ai_sdk/check.mjs`` runs ``generateText`` and ``streamText`` against a model the gateway serves and
prints what they returned; the packages come from the committed lock file (``npm ci``, once).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from apps.providers.fake_upstream import BackgroundFakeUpstream
from tests.harness.gateway import GatewayProcess
from tests.harness.served import serve_kind

pytestmark = pytest.mark.usefixtures("live_db")
PACKAGE = Path(__file__).parent / "ai_sdk"


@pytest.fixture(scope="module")
def ai_sdk() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js is not installed")
    if not (PACKAGE / "node_modules" / "ai").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PACKAGE, check=True, timeout=300,
                       capture_output=True)
    return PACKAGE / "check.mjs"


def run_check(script: Path, gateway: GatewayProcess, raw_key: str, model: str) -> dict[str, Any]:
    environment = {**os.environ, "EDGE_BASE_URL": f"{gateway.url}/v1", "EDGE_API_KEY": raw_key, "EDGE_MODEL": model}
    done = subprocess.run(["node", str(script)], env=environment, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_generate_text_and_stream_text_work_through_the_gateway(
    ai_sdk: Path, gateway: GatewayProcess, fake: BackgroundFakeUpstream, kind: str
):
    served = serve_kind(gateway, fake.base_url, kind)

    result = run_check(ai_sdk, gateway, served.raw_key, served.model)

    generated, streamed = result["generated"], result["streamed"]
    assert generated["text"].startswith("Mock reply to: hello there friend") and generated["finishReason"] == "stop"
    assert generated["responseId"].startswith("resp_")
    assert (generated["usage"]["inputTokens"], generated["usage"]["outputTokens"]) == (6, 12)
    assert streamed["text"] == generated["text"] and streamed["deltas"] > 1 and streamed["finishReason"] == "stop"
    assert (streamed["usage"]["inputTokens"], streamed["usage"]["outputTokens"]) == (6, 12)
    wire = {"openai": "/v1/responses", "gemini": f"/v1beta/models/{served.upstream_model}:streamGenerateContent"}
    assert fake.requests()[-1]["path"] == wire[kind]  # OpenAI's own API, or the translation

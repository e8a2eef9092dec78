"""``POST /v1/messages``: Anthropic's Messages API as an inbound endpoint.

The official ``anthropic`` SDK points at the gateway and reaches any provider: the request is
translated into the gateway's OpenAI-shaped ``ChatRequest``, served through the normal route,
and the answer (or the stream) translated back. That path serves every upstream kind; an
Anthropic deployment is instead sent the request as it is (``view.py`` chooses per attempt), so
nothing OpenAI's format cannot carry is lost on the way.
"""

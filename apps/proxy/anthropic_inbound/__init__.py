"""``POST /v1/messages``: Anthropic's Messages API as an inbound endpoint.

The official ``anthropic`` SDK points at the gateway and reaches any provider: the request is
translated into the gateway's OpenAI-shaped ``ChatRequest``, served through the normal route,
and the answer (or the stream) translated back. One translation path serves every upstream kind,
Anthropic's included.
"""

"""``/v1/responses``: OpenAI's Responses API as an inbound endpoint, on any provider.

An ``openai`` deployment gets the request as sent (only ``model`` replaced, and a previous response's
conversation written out as input items); every other kind gets it translated into a chat completion
and the answer, or the stream, translated back into Responses output items and events. Conversations
the gateway stores (``store.py``) continue on whichever provider serves the next turn.
"""

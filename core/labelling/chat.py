"""Chat-message helpers shared by the LLM backends."""

from __future__ import annotations

from collections.abc import Callable, Sequence

Message = dict[str, str]
PROBE = "R2L-SYSTEM-PROBE"


def fold_system(messages: Sequence[Message]) -> list[Message]:
    """Move a leading system message into the first user turn (for templates without a system role)."""
    if not messages or messages[0]["role"] != "system":
        return list(messages)
    system, rest = messages[0]["content"], list(messages[1:])
    if rest and rest[0]["role"] == "user":
        rest[0] = {"role": "user", "content": f"{system}\n\n{rest[0]['content']}"}
    else:
        rest.insert(0, {"role": "user", "content": system})
    return rest


def supports_system(render: Callable[[list[Message]], str]) -> bool:
    """Whether a chat template keeps a system message: it must render it, not reject or drop it."""
    try:
        text = render([{"role": "system", "content": PROBE}, {"role": "user", "content": "x"}])
    except Exception:  # templates reject with their own exception types (jinja2, raise_exception)
        return False
    return PROBE in text

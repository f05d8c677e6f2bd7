"""Redaction by value: any long-enough stretch of the key or a prompt goes, nothing else.

The window scan (`Shingles`) is checked against a brute-force reference, and `Redactor`
against random keys, prompts and error texts that embed a random stretch of them.
"""

from __future__ import annotations

import json

from hypothesis import assume, example, given, settings, strategies as st

from audit_core._logging import (
    SECRET_WINDOW,
    Shingles,
    forget_secret,
    mask_spans,
    redact_text,
    register_secret,
    shared_runs,
)
from audit_core.llm._classify import _messages
from audit_core.llm._errors_map import _PROMPT_WINDOW, Redactor

# No "[", "]" or "*": a stretch of a secret can then not reappear across a mask.
SECRET_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/ "
keys = st.text(SECRET_CHARS, min_size=SECRET_WINDOW, max_size=80)
prompts = st.text(SECRET_CHARS + "\n,;", min_size=_PROMPT_WINDOW, max_size=200)
noise = st.text(max_size=60)


def brute_force_mask(text: str, secret: str, k: int, marker: str) -> str:
    """Mask every position inside some substring of ``text`` of length >= k found in
    ``secret`` (quadratic; the definition the window scan must agree with)."""
    covered = [False] * len(text)
    for i in range(len(text)):
        for j in range(i + k, len(text) + 1):
            if text[i:j] in secret:
                covered[i:j] = [True] * (j - i)
    out, masking = [], False
    for char, hidden in zip(text, covered, strict=True):
        if hidden and not masking:
            out.append(marker)
        elif not hidden:
            out.append(char)
        masking = hidden
    return "".join(out)


def shares_a_window(text: str, secret: str, k: int) -> bool:
    return any(text[i : i + k] in secret for i in range(len(text) - k + 1))


@settings(deadline=None, max_examples=300)
@given(st.text("ab", max_size=14), st.text("abc", max_size=30), st.integers(1, 6))
def test_the_window_scan_agrees_with_brute_force(secret: str, text: str, k: int) -> None:
    """Differential: both window scans mask exactly the runs of k or more found in the secret."""
    assume(len(secret) >= k)
    expected = brute_force_mask(text, secret, k, "#")
    assert mask_spans(text, Shingles(k, [secret]).spans(text), "#") == expected
    assert mask_spans(text, shared_runs(text, ["zz", secret], k), "#") == expected


@settings(deadline=None)
@given(keys, st.data(), noise, noise)
def test_no_stretch_of_the_key_of_8_or_more_survives(
    key: str, data: st.DataObject, before: str, after: str
) -> None:
    """Key: any substring of 8+ characters, whatever surrounds it, is masked."""
    start = data.draw(st.integers(0, len(key) - SECRET_WINDOW))
    end = data.draw(st.integers(start + SECRET_WINDOW, len(key)))
    stretch = key[start:end]
    out = Redactor(key)(f"{before}{stretch}{after} for key {stretch}****")
    assert stretch not in out


@settings(deadline=None)
@given(st.text(SECRET_CHARS, min_size=4, max_size=SECRET_WINDOW - 1), noise)
def test_a_key_shorter_than_the_window_is_masked_whole(key: str, before: str) -> None:
    """Key: one of 4 to 7 characters goes whole."""
    assert key not in Redactor(key)(f"{before}{key}")


@settings(deadline=None)
@given(prompts, st.data(), noise, noise)
def test_no_run_of_the_prompt_of_12_or_more_survives(
    prompt: str, data: st.DataObject, before: str, after: str
) -> None:
    """Prompt: any substring of 12+ characters (a clipped or partial echo) is masked."""
    start = data.draw(st.integers(0, len(prompt) - _PROMPT_WINDOW))
    end = data.draw(st.integers(start + _PROMPT_WINDOW, len(prompt)))
    stretch = prompt[start:end]
    out = Redactor("test-key-0123456789", ["other", prompt])(
        f"{before}invalid input '{stretch}...'{after}"
    )
    assert stretch not in out


@settings(deadline=None)
@given(prompts, noise)
@example(prompt="pin 98\nfor bob\nowes 250", before="")  # lines too short to go alone
def test_an_echo_escaped_as_json_is_masked(prompt: str, before: str) -> None:
    """Prompt: echoed inside a JSON dump of the request (newlines as \\n), it still goes."""
    echoed = json.dumps({"content": prompt})
    out = Redactor(None, [prompt])(f"{before}bad request body {echoed}")
    assert not shares_a_window(out, json.dumps(prompt)[1:-1], _PROMPT_WINDOW)


@settings(deadline=None)
@given(
    st.text("abcdef0123-", min_size=SECRET_WINDOW, max_size=40),
    st.text("abcdefgh xyz", min_size=_PROMPT_WINDOW, max_size=60),
    st.text("abcxyz 01-", max_size=40),
    st.data(),
)
def test_text_sharing_no_window_is_unchanged(
    key: str, prompt: str, text: str, data: st.DataObject
) -> None:
    """No false positives: text sharing no 8-run with the key, no 12-run with the
    prompt, and none of its 8+ words or lines, comes out exactly as it went in (even
    with a stretch of each just under the window in it)."""
    near_key = data.draw(st.integers(0, len(key) - SECRET_WINDOW + 1))
    near_prompt = data.draw(st.integers(0, len(prompt) - _PROMPT_WINDOW + 1))
    text = (
        f"{text}{key[near_key : near_key + SECRET_WINDOW - 1]}"
        f"|{prompt[near_prompt : near_prompt + _PROMPT_WINDOW - 1]}|{text}"
    )
    assume(not shares_a_window(text, key, SECRET_WINDOW))
    assume(not shares_a_window(text, prompt, _PROMPT_WINDOW))
    pieces = [prompt.strip(), *prompt.split(), *prompt.splitlines()]
    assume(not any(len(p) >= 8 and p in text for p in pieces))
    assume(redact_text(text) == text)
    assert Redactor(key, [prompt])(text) == text


PROVIDER_MESSAGES = [
    "This endpoint's maximum context length is 128000 tokens. However, you requested "
    "about 130512 tokens (129512 of text input, 1000 in the output). Please reduce the "
    'length of either one, or use the "middle-out" transform to compress your prompt.',
    "Invalid schema for response_format 'classification': In context=('properties', "
    "'answers', 'items'), 'additionalProperties' is required to be supplied and to be false.",
    "No endpoints found that support the requested parameters: response_format",
    "The model `openai/gpt-4o-mini` does not exist or you do not have access to it.",
    "Your request was rejected as a result of our safety system.",
]


def test_generic_provider_messages_survive_the_library_s_own_prompts() -> None:
    """No false positives in practice: classify()'s prompts hide no word of these errors."""
    messages = _messages(
        "You audit corporate card transactions: business or personal expense?",
        ["business", "personal"],
        ["Uber ride to the airport for a client meeting", "Hotel, 3 nights, sales conference"],
    )
    redact = Redactor("sk-or-v1-" + "0a1b2c3d" * 8, [str(m["content"]) for m in messages])
    for message in PROVIDER_MESSAGES:
        assert redact(message) == message


def test_a_registered_secret_is_masked_in_redacted_text_until_forgotten() -> None:
    """Registry: 8 characters of a registered key go from redact_text (so from every log
    event), as long as one holder still has it registered."""
    key = "corp-gateway-token-7f3a9b2c4d5e6f708192"
    text = f"request id {key[5:20]} failed"
    register_secret(key)
    register_secret(key)  # two clients sharing a key
    try:
        assert key[5:20] not in redact_text(text)
        forget_secret(key)
        assert key[5:20] not in redact_text(text)
    finally:
        forget_secret(key)
    assert redact_text(text) == text
    register_secret("abc")  # too short to mask without hiding ordinary words
    try:
        assert redact_text("abcdef") == "abcdef"
    finally:
        forget_secret("abc")

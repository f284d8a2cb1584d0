"""LlmResponder against a real HTTP server on 127.0.0.1: streaming, memory, faults, the
circuit breaker, cancellation, TLS and secrecy of the API key."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from harness import wait_until
from llm_fake_server import FakeLlm, chunk, endless, hang, raw, refused_url, sse, status
from loguru import logger
from pydantic import SecretStr

from firmware_app.config.settings import LlmSettings, Settings
from firmware_app.core.messages import Notice, ReplyEnd, ReplySentence
from firmware_app.system.store import Store
from firmware_app.understand.llm import build_responder
from firmware_app.understand.llm.responder import (
    FALLBACK_BROKEN,
    FALLBACK_CUT_OFF,
    FALLBACK_SPEECHLESS,
    FALLBACK_UNREACHABLE,
    LlmResponder,
)

KEY = "sk-test-SECRET-1234567890abcdef"
WAIT = 15.0  # generous: machines are noisy


class Posts:
    """What the responder posted to the assistant, with arrival times."""

    def __init__(self) -> None:
        self.items: list[tuple[float, object]] = []
        self._cond = threading.Condition()

    def __call__(self, message: object) -> None:
        with self._cond:
            self.items.append((time.monotonic(), message))
            self._cond.notify_all()

    def messages(self) -> list[object]:
        with self._cond:
            return [m for _, m in self.items]

    def wait_for(self, predicate: Any, timeout: float = WAIT) -> tuple[float, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, m in self.items:
                    if predicate(m):
                        return t, m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"nothing matched; got {self.items}")
                self._cond.wait(left)

    def end(self, request: int, timeout: float = WAIT) -> ReplyEnd:
        _, m = self.wait_for(lambda m: isinstance(m, ReplyEnd) and m.request == request, timeout)
        return m

    def sentences(self, request: int) -> list[str]:
        return [
            m.text for m in self.messages() if isinstance(m, ReplySentence) and m.request == request
        ]

    def breaker_states(self) -> list[str]:
        return [
            m.fields["state"]
            for m in self.messages()
            if isinstance(m, Notice) and m.kind == "breaker"
        ]


def settings(url: str, **overrides: Any) -> LlmSettings:
    values: dict[str, Any] = {
        "url": url,
        "model": "test-model",
        "api_key": SecretStr(KEY),
        "connect_timeout_s": 1.0,
        "read_timeout_s": 3.0,
        "total_timeout_s": 10.0,
        "deadline_s": 4.0,
        "retries": 2,
        "breaker_failures": 2,
        "breaker_reset_s": 0.4,
    }
    values.update(overrides)
    return LlmSettings(**values)


@pytest.fixture
def server() -> Iterator[FakeLlm]:
    fake = FakeLlm()
    yield fake
    fake.close()


@pytest.fixture
def store(tmp_path: Any) -> Iterator[Store]:
    s = Store(tmp_path / "store.sqlite")
    yield s
    s.close()


@pytest.fixture
def make(store: Store) -> Iterator[Any]:
    made: list[LlmResponder] = []

    def build(url: str, **overrides: Any) -> LlmResponder:
        responder = LlmResponder(settings(url, **overrides), store, SecretStr(KEY))
        made.append(responder)
        return responder

    yield build
    for responder in made:
        responder.close()


@pytest.fixture
def logs() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message}")
    yield lines
    logger.remove(sink)


def test_first_sentence_is_posted_before_the_stream_ends(server: FakeLlm, make: Any) -> None:
    tokens = ["The sky", " is blue", " because", " air", " scatters", " blue", " light."]
    tokens += [" Red", " light", " passes", " straight", " through", " it."]
    server.then(sse(tokens, delay=0.08))
    posts = Posts()
    r = make(server.url)
    r.respond(1, "why is the sky blue", posts)
    end = posts.end(1)

    assert end.error is None and end.fallback is None
    assert posts.sentences(1) == [
        "The sky is blue because air scatters blue light.",
        "Red light passes straight through it.",
    ]
    first_sentence_t, _ = posts.wait_for(lambda m: isinstance(m, ReplySentence))
    wait_until(lambda: bool(server.stream_ends), what="the server's record of the stream's end")
    assert first_sentence_t < server.stream_ends[0]  # spoken while the rest streams in
    # Only text goes out: the system prompt and the transcript, never audio.
    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "test-model" and sent.body["stream"] is True
    assert set(sent.body) == {"model", "messages", "stream"}
    assert [m["role"] for m in sent.body["messages"]] == ["system", "user"]
    assert sent.body["messages"][1]["content"] == "why is the sky blue"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"


def test_markup_and_code_are_not_read_aloud(server: FakeLlm, make: Any) -> None:
    tokens = ["**Sure!**", " Here", " is `ls`:\n", "```bash\n", "rm -rf /tmp/x\n", "```\n"]
    tokens += ["- see https://example.com/docs?a=1 🚀", "\x07\x1b[31m done."]
    server.then(sse(tokens))
    posts = Posts()
    make(server.url).respond(1, "how do I list files", posts)
    assert posts.end(1).error is None
    spoken = posts.sentences(1)
    assert spoken == ["Sure!", "Here is ls", "see example.com done."]


def test_memory_of_the_previous_turn_is_sent_with_the_next(
    server: FakeLlm, make: Any, store: Store
) -> None:
    server.then(sse(["Paris is the capital."]), sse(["About 2 million."]))
    r = make(server.url, memory_turns=3)
    posts = Posts()
    r.respond(1, "what is the capital of France", posts)
    posts.end(1)
    r.respond(2, "how many people live there", posts)
    posts.end(2)
    messages = server.requests[1].body["messages"]
    assert messages[1:] == [
        {"role": "user", "content": "what is the capital of France"},
        {"role": "assistant", "content": "Paris is the capital."},
        {"role": "user", "content": "how many people live there"},
    ]
    # Kept in the store, so a restart does not lose the conversation.
    assert store.get("conversation", "llm")["turns"][-1] == [
        "how many people live there",
        "About 2 million.",
    ]


def test_memory_is_forgotten_after_idle_time(server: FakeLlm, make: Any) -> None:
    server.then(sse(["One."]), sse(["Two."]))
    r = make(server.url, memory_idle_s=0.3)
    posts = Posts()
    r.respond(1, "first", posts)
    posts.end(1)
    time.sleep(0.6)
    r.respond(2, "second", posts)
    posts.end(2)
    assert [m["role"] for m in server.requests[1].body["messages"]] == ["system", "user"]


def test_connection_refused_gives_the_calm_fallback(make: Any) -> None:
    posts = Posts()
    r = make(refused_url())
    r.respond(1, "hello", posts)
    end = posts.end(1)
    assert end.fallback == FALLBACK_UNREACHABLE
    assert "cannot connect to 127.0.0.1" in end.error
    assert posts.sentences(1) == []


def test_500s_are_retried_then_the_breaker_opens(server: FakeLlm, make: Any) -> None:
    server.default = status(500, b'{"error": {"message": "boom"}}')
    r = make(server.url, retries=2, breaker_failures=2, breaker_reset_s=60)
    posts = Posts()
    r.respond(1, "a", posts)
    assert "HTTP 500" in posts.end(1).error
    assert len(server.requests) == 3  # one try and two retries
    # The breaker is still closed, but the last attempt failed: not available.
    assert r.status()["state"] == "closed" and not r.available()
    assert r.status()["last_attempt"]["ok"] is False
    assert "HTTP 500" in r.status()["last_attempt"]["error"]
    r.respond(2, "b", posts)
    assert posts.end(2).fallback == FALLBACK_UNREACHABLE
    assert len(server.requests) == 6
    posts.wait_for(lambda m: isinstance(m, Notice) and m.fields == {"state": "open"})
    assert not r.available()
    assert r.status()["state"] == "open"

    # Open: the fallback is posted before respond() returns, with no network attempt.
    r.respond(3, "c", posts)
    ends = [m for m in posts.messages() if isinstance(m, ReplyEnd) and m.request == 3]
    assert len(ends) == 1 and ends[0].fallback == FALLBACK_UNREACHABLE
    assert "circuit breaker open" in ends[0].error
    assert len(server.requests) == 6


def test_half_open_probe_closes_the_breaker_when_the_server_is_back(
    server: FakeLlm, make: Any
) -> None:
    server.then(status(503), status(503))
    r = make(server.url, retries=0, breaker_failures=2, breaker_reset_s=0.4)
    posts = Posts()
    for request in (1, 2):
        r.respond(request, "hi", posts)
        posts.end(request)
    assert not r.available()
    time.sleep(0.6)
    # Half-open: one probe may go, but nothing has worked yet.
    assert r.status()["state"] == "half_open" and not r.available()
    server.then(sse(["I'm", " back."], first_delay=0.5))
    r.respond(3, "are you there", posts)
    # While the probe is in flight, others get the fallback at once.
    r.respond(4, "and now", posts)
    assert posts.end(4, timeout=0.01).fallback == FALLBACK_UNREACHABLE
    assert posts.end(3).error is None
    assert posts.sentences(3) == ["I'm back."]
    assert posts.breaker_states() == ["open", "half_open", "closed"]
    assert r.available() and r.status()["failures"] == 0
    assert len(server.requests) == 3


def test_failed_probe_opens_the_breaker_again(server: FakeLlm, make: Any) -> None:
    server.default = status(502)
    r = make(server.url, retries=0, breaker_failures=1, breaker_reset_s=0.3)
    posts = Posts()
    r.respond(1, "hi", posts)
    posts.end(1)
    time.sleep(0.5)
    r.respond(2, "hi", posts)
    posts.end(2)
    assert posts.breaker_states() == ["open", "half_open", "open"]
    assert not r.available()


def test_a_cancelled_probe_does_not_hold_the_breaker(server: FakeLlm, make: Any) -> None:
    server.then(status(500))
    r = make(server.url, retries=0, breaker_failures=1, breaker_reset_s=0.3)
    posts = Posts()
    r.respond(1, "hi", posts)
    posts.end(1)
    time.sleep(0.5)
    r.respond(2, "hi", posts)  # the probe...
    r.cancel(2)  # ...cancelled at once, maybe before it ever ran
    server.default = sse(["Back."])  # the server is back, whichever request reaches it first
    request = 3
    while request < 100 and posts.breaker_states()[-1] != "closed":
        r.respond(request, "hi", posts)
        posts.end(request)
        request += 1
        time.sleep(0.05)
    assert posts.sentences(request - 1) == ["Back."]
    assert posts.breaker_states()[-1] == "closed"


def test_429_falls_back_at_once_and_holds_the_next_request(server: FakeLlm, make: Any) -> None:
    """Waiting for Retry-After inside the request would leave the user in silence: the
    fallback comes at once, and the next request respects it instead."""
    server.then(status(429, headers={"Retry-After": "30"}))
    posts = Posts()
    responder = make(server.url, deadline_s=20)
    responder.respond(1, "hi", posts)
    end = posts.end(1, timeout=10)  # long before the 30 s the server asked for
    assert "HTTP 429" in end.error and "Retry-After" in end.error
    assert end.fallback == FALLBACK_UNREACHABLE
    assert responder.status()["retry_after_s"] > 20 and not responder.available()

    responder.respond(2, "and now?", posts)
    held = posts.end(2, timeout=10)
    assert held.fallback == FALLBACK_UNREACHABLE and "Retry-After" in held.error
    assert len(server.requests) == 1  # the second question never went out


def test_after_retry_after_the_next_request_goes_out(server: FakeLlm, make: Any) -> None:
    server.then(status(429, headers={"Retry-After": "1"}), sse(["Fine."]))
    posts = Posts()
    responder = make(server.url, deadline_s=5)
    responder.respond(1, "hi", posts)
    assert posts.end(1).fallback == FALLBACK_UNREACHABLE
    assert len(server.requests) == 1
    time.sleep(1.2)
    responder.respond(2, "hi again", posts)
    assert posts.end(2).error is None
    assert posts.sentences(2) == ["Fine."]
    first, second = server.requests
    assert second.t - first.t >= 0.95


def test_503_with_retry_after_is_not_waited_for_either(server: FakeLlm, make: Any) -> None:
    server.then(status(503, headers={"Retry-After": "30"}))
    posts = Posts()
    make(server.url, deadline_s=20).respond(1, "hi", posts)
    end = posts.end(1, timeout=10)
    assert "HTTP 503" in end.error and end.fallback == FALLBACK_UNREACHABLE
    assert len(server.requests) == 1


def test_401_is_not_retried_and_says_what_to_fix(server: FakeLlm, make: Any) -> None:
    body = json.dumps(
        {
            "error": {
                "message": f"Incorrect API key provided: {KEY[:8]}***",
                "code": "invalid_api_key",
            }
        }
    ).encode()
    server.default = status(401, body)
    posts = Posts()
    make(server.url).respond(1, "hi", posts)
    end = posts.end(1)
    assert end.error == "127.0.0.1 refused the API key (HTTP 401); check llm.api_key"
    assert end.fallback == FALLBACK_BROKEN
    assert len(server.requests) == 1


def test_a_hung_server_hits_the_first_word_deadline(server: FakeLlm, make: Any) -> None:
    server.default = hang()
    posts = Posts()
    start = time.monotonic()
    make(server.url, deadline_s=1.0, read_timeout_s=30).respond(1, "hi", posts)
    end = posts.end(1)
    assert end.error == "no answer within 1 s" and end.fallback == FALLBACK_UNREACHABLE
    assert time.monotonic() - start >= 0.95


def test_slow_first_token_within_the_deadline_is_fine(server: FakeLlm, make: Any) -> None:
    server.then(sse(["Slow", " but", " sure."], first_delay=0.7))
    posts = Posts()
    make(server.url, deadline_s=4).respond(1, "hi", posts)
    assert posts.end(1).error is None
    assert posts.sentences(1) == ["Slow but sure."]


def test_first_token_after_the_deadline_times_out(server: FakeLlm, make: Any) -> None:
    server.then(sse(["Too", " late."], first_delay=3))
    posts = Posts()
    make(server.url, deadline_s=0.8).respond(1, "hi", posts)
    end = posts.end(1)
    assert end.error == "no answer within 0.8 s" and end.fallback == FALLBACK_UNREACHABLE
    assert posts.sentences(1) == []


def test_keepalive_comments_do_not_extend_the_deadline(server: FakeLlm, make: Any) -> None:
    server.then(raw([b": ping\n\n"] * 100, delay=0.1))
    posts = Posts()
    make(server.url, deadline_s=1.0).respond(1, "hi", posts)
    assert posts.end(1).error == "no answer within 1 s"


def test_malformed_events_are_skipped(server: FakeLlm, make: Any) -> None:
    from llm_fake_server import chunk

    server.then(
        raw(
            [
                b"garbage without a colon\n\n",
                b"data: {not json}\n\n",
                b"data: " + b"[" * 5000 + b"]" * 5000 + b"\n\n",  # deep nesting
                b'data: {"choices": "nope"}\n\n',
                b'data: {"choices": [{"delta": {"content": 42}}]}\n\n',
                b"data: \xff\xfe\n\n",
                chunk("Still "),
                b"event: message\r\n",
                b'data: {"choices": [{"delta": {"content": "here."}}]}\r\n\r\n',
                b"data: [DONE]\n\n",
            ]
        )
    )
    posts = Posts()
    make(server.url).respond(1, "hi", posts)
    assert posts.end(1).error is None
    assert posts.sentences(1) == ["Still here."]


def test_only_garbage_gives_the_fallback(server: FakeLlm, make: Any) -> None:
    server.then(raw([b"data: {oops\n\n", b"data: 12\n\n"]))
    posts = Posts()
    make(server.url).respond(1, "hi", posts)
    end = posts.end(1)
    assert end.error == "malformed reply from 127.0.0.1" and end.fallback == FALLBACK_BROKEN


def test_a_web_page_is_not_an_answer(server: FakeLlm, make: Any) -> None:
    page = b"<html><body>Please log in to the hotel wifi</body></html>"
    server.then(status(200, page, {"Content-Type": "text/html"}))
    posts = Posts()
    make(server.url).respond(1, "hi", posts)
    end = posts.end(1)
    assert "web page" in end.error and end.fallback == FALLBACK_BROKEN


def test_a_non_streamed_json_answer_is_accepted(server: FakeLlm, make: Any) -> None:
    body = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Yes. No."}}]})
    server.then(status(200, body.encode()))
    posts = Posts()
    make(server.url).respond(1, "hi", posts)
    assert posts.end(1).error is None
    assert posts.sentences(1) == ["Yes.", "No."]


def test_a_huge_reply_is_cut_at_max_reply_chars(server: FakeLlm, make: Any) -> None:
    server.default = endless("Words go on and on. ")
    posts = Posts()
    make(server.url, max_reply_chars=300).respond(1, "talk forever", posts)
    end = posts.end(1)
    assert end.error is None
    spoken = posts.sentences(1)
    assert 0 < sum(len(s) for s in spoken) <= 300
    assert all(s == "Words go on and on." for s in spoken[:-1])
    # The client hung up rather than reading on.
    deadline = time.monotonic() + WAIT
    while not server.disconnects and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.disconnects


def test_a_10_mb_line_is_bounded(server: FakeLlm, make: Any) -> None:
    server.then(raw([b"data: " + b"x" * (10 * 1024 * 1024)]))
    posts = Posts()
    make(server.url).respond(1, "hi", posts)
    end = posts.end(1)
    assert end.error == "reply from 127.0.0.1 has an over-long line"
    assert end.fallback == FALLBACK_BROKEN


def test_a_never_ending_stream_is_cut_by_the_total_timeout(server: FakeLlm, make: Any) -> None:
    server.default = endless("and ", delay=0.005)  # never a sentence end, never done
    posts = Posts()
    make(server.url, total_timeout_s=1.5, max_reply_chars=100000).respond(1, "hi", posts)
    end = posts.end(1)
    assert end.error == "answer cut off after 1.5 s" and end.fallback == FALLBACK_CUT_OFF
    assert posts.sentences(1)  # long runs are cut into bounded pieces and spoken
    assert all(len(s) <= 240 for s in posts.sentences(1))


def test_a_stream_cut_before_a_whole_sentence_still_gets_the_fallback(
    server: FakeLlm, make: Any
) -> None:
    server.default = endless("and ", delay=0.2)
    posts = Posts()
    make(server.url, total_timeout_s=1.0).respond(1, "hi", posts)
    end = posts.end(1)
    assert end.error == "answer cut off after 1 s" and end.fallback == FALLBACK_UNREACHABLE
    assert posts.sentences(1) == []


def test_only_code_has_nothing_to_say(server: FakeLlm, make: Any) -> None:
    server.then(sse(["```python\n", "print(1)\n", "```"]))
    posts = Posts()
    make(server.url).respond(1, "hi", posts)
    end = posts.end(1)
    assert end.fallback == FALLBACK_SPEECHLESS


def test_cancel_stops_sentences_and_closes_the_stream(server: FakeLlm, make: Any) -> None:
    server.default = endless("More words. ", delay=0.1)
    posts = Posts()
    r = make(server.url)
    r.respond(7, "go on", posts)
    posts.wait_for(lambda m: isinstance(m, ReplySentence))
    r.cancel(7)
    # ReplyEnd is already posted when cancel() returns, and nothing follows it.
    ends = [m for m in posts.messages() if isinstance(m, ReplyEnd)]
    assert ends == [ReplyEnd(7, error="cancelled", fallback=None)]
    count = len(posts.sentences(7))
    deadline = time.monotonic() + WAIT
    while not server.disconnects and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.disconnects  # the server saw the connection close
    time.sleep(0.3)
    assert len(posts.sentences(7)) == count
    assert len([m for m in posts.messages() if isinstance(m, ReplyEnd)]) == 1
    assert r.available()  # a barge-in is not a provider failure


def test_tls_is_verified_and_a_private_ca_can_be_trusted(tmp_path: Any, make: Any) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = FakeLlm(default=sse(["Secure."]), tls=context)
    try:
        posts = Posts()
        make(server.url).respond(1, "hi", posts)
        end = posts.end(1)
        assert end.error == "TLS certificate of localhost is not trusted"
        assert end.fallback == FALLBACK_UNREACHABLE
        make(server.url, tls_ca=cert).respond(2, "hi", posts)
        assert posts.end(2).error is None
        assert posts.sentences(2) == ["Secure."]
    finally:
        server.close()


def test_the_api_key_never_reaches_logs_or_messages(
    server: FakeLlm, make: Any, logs: list[str]
) -> None:
    leak = json.dumps({"error": {"message": f"bad key {KEY}", "code": KEY}}).encode()
    server.then(
        sse(["Fine."]),
        status(401, leak),
        status(500, leak),
        raw([b'data: {"error": {"message": "' + KEY.encode() + b'", "code": "x"}}\n\n']),
        hang(),
    )
    posts = Posts()
    r = make(server.url, retries=0, breaker_failures=10, deadline_s=1)
    for request in range(1, 6):
        r.respond(request, f"question {request}", posts)
        posts.end(request)
    refused = make(refused_url())
    refused.respond(6, "hi", posts)
    posts.end(6)
    assert len(server.requests) == 5
    assert any("401" in line for line in logs)  # the failures were logged...
    text = "\n".join(logs) + repr(posts.messages()) + repr(r.status())
    assert KEY not in text  # ...without the key
    assert "sk-test" not in text


def test_build_responder_reads_the_key_file(tmp_path: Any, store: Store) -> None:
    assert build_responder(Settings(data_dir=tmp_path), store) is None
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    server = FakeLlm(default=sse(["Ok."]))
    try:
        s = Settings(data_dir=tmp_path, llm={"url": server.url, "api_key_file": str(key_file)})
        responder = build_responder(s, store)
        assert responder is not None
        posts = Posts()
        responder.respond(1, "hi", posts)
        assert posts.end(1).error is None
        assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"
        responder.close()
    finally:
        server.close()


def test_respond_after_close_gives_the_fallback(server: FakeLlm, make: Any) -> None:
    r = make(server.url)
    r.close()
    posts = Posts()
    r.respond(1, "hi", posts)
    assert posts.end(1, timeout=0.01).fallback == FALLBACK_UNREACHABLE
    assert server.requests == []


def _self_signed(tmp_path: Any) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def stalled(tokens: list[str], stall_s: float) -> Any:
    """A stream that sends ``tokens`` at once and then goes silent for ``stall_s``."""

    def run(h: Any) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        for token in tokens:
            h.send(chunk(token))
        h.sleep(stall_s)

    return run


def test_a_complete_sentence_before_a_stall_is_spoken_at_once_then_the_fallback(
    server: FakeLlm, make: Any
) -> None:
    server.default = stalled(["The sky is blue.", " Because"], stall_s=5)
    posts = Posts()
    r = make(server.url, read_timeout_s=1.5, total_timeout_s=10, retries=0)
    start = time.monotonic()
    r.respond(1, "why", posts)
    t, first = posts.wait_for(lambda m: isinstance(m, ReplySentence))
    assert first.text == "The sky is blue."
    assert t - start < 1.0  # spoken when it was complete, not when the stream failed
    end = posts.end(1)
    assert end.fallback == FALLBACK_CUT_OFF  # then it says the rest was lost
    assert "timed out" in end.error
    assert posts.sentences(1) == ["The sky is blue."]  # the fragment "Because" is not said
    assert not r.available()
    assert r.status()["last_attempt"]["ok"] is False


def test_available_follows_the_last_attempt(server: FakeLlm, make: Any) -> None:
    server.then(status(503), sse(["Fine."]))
    posts = Posts()
    r = make(server.url, retries=0, breaker_failures=5)
    assert r.available() and r.status()["last_attempt"] is None
    r.respond(1, "a", posts)
    posts.end(1)
    assert not r.available() and r.status()["state"] == "closed"
    r.respond(2, "b", posts)
    assert posts.end(2).error is None
    assert r.available() and r.status()["last_attempt"]["ok"] is True

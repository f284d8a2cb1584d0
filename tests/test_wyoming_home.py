"""The Wyoming recognizer learns the home's names from Home Assistant: names checked and
bounded, asked for over a real websocket served on 127.0.0.1 (with replies that are
huge, not JSON, slow, refused), the sentences Home Assistant's own sentence data
matches, and spoken commands heard with them."""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import silence, speech
from ha_fake_ws import TOKEN, FakeHomeAssistant, Home, small_home
from mqtt_broker import free_port
from pydantic import SecretStr
from wyoming_support import transcribe

from firmware_app.config.settings import Settings, WyomingSettings
from firmware_app.edges.wyoming import home_names
from firmware_app.edges.wyoming.home_api import HomeApiError, fetch_home, websocket_url
from firmware_app.edges.wyoming.home_names import build_home, spoken_name
from firmware_app.edges.wyoming.home_sentences import SENTENCES, HomeSentences, home_intents
from firmware_app.understand.intents.numbers import number_words

TIMEOUT_S = 5.0


@pytest.fixture
def fake() -> Iterator[FakeHomeAssistant]:
    server = FakeHomeAssistant(small_home())
    yield server
    server.close()


def fetch(url: str, token: str = TOKEN, max_names: int = 100, timeout_s: float = TIMEOUT_S):  # type: ignore[no-untyped-def]
    return asyncio.run(fetch_home(url, SecretStr(token), max_names, timeout_s))


# -- names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ("Kitchen Light", "kitchen light"),
        ("  living_room-lamp ", "living room lamp"),
        ("Café Lamp", "cafe lamp"),
        ("Kid's Lamp", "kid's lamp"),
        ("Kid’s Lamp", "kid's lamp"),
        ("Lamp 2", None),  # no dictionary word for the digit
        ("{name} [x] <rule>", None),  # template syntax never reaches the grammar
        ("Küchenlicht", "kuchenlicht"),  # spoken later only if the dictionary has it
        ("Лампа", None),
        ("a b c d e f g", None),  # too many words
        ("x" * 300, None),
        ("", None),
        (None, None),
        (42, None),
        (["Kitchen"], None),
    ],
)
def test_a_name_is_kept_only_as_plain_words(raw: object, said: str | None) -> None:
    assert spoken_name(raw) == said


def test_the_home_is_capped_areas_first_and_disabled_entities_left_out() -> None:
    ids = [f"light.l{i:03d}" for i in range(50)] + ["fan.off"]
    registry = {i: ("lamp", ["reading lamp"]) for i in ids[:50]}
    registry["fan.off"] = home_names.DISABLED
    friendly = {i: f"lamp {number_words(n)}" for n, i in enumerate(ids[:50])}
    friendly["fan.off"] = "fan"
    home = build_home(ids, registry, friendly, ["kitchen", "hall"], ["upstairs"], max_names=20)
    assert home.areas == ("kitchen", "hall") and home.floors == ("upstairs",)
    assert home.size <= 20
    assert home.entities[0].names == ("lamp zero", "reading lamp")  # friendly name, alias
    assert all(e.domain == "light" for e in home.entities)
    assert home.left_out == sum(2 for _ in range(50 - len(home.entities)))


def test_replies_of_the_wrong_shape_give_nothing_rather_than_fail() -> None:
    for junk in (None, 3, "x", [], [1, 2], {"exposed_entities": [1]}, {"a": "b"}):
        assert home_names.exposed_ids(junk) == []
        assert home_names.registry_names(junk) == {}
        assert home_names.state_names(junk) == {}
        assert home_names.place_names(junk) == []
    assert home_names.exposed_ids({"exposed_entities": {"../etc": {"conversation": True}}}) == []
    assert home_names.place_names([{"name": 5, "aliases": "Lounge"}, "x"]) == []


def test_the_same_aliases_in_another_order_are_the_same_home() -> None:
    """Home Assistant keeps aliases as a set: their order must not make a new grammar."""
    one = home_names.registry_names({"light.a": {"name": "Lamp", "aliases": ["Desk", "Reading"]}})
    two = home_names.registry_names({"light.a": {"name": "Lamp", "aliases": ["Reading", "Desk"]}})
    assert build_home(["light.a"], one, {}, [], [], 10) == build_home(
        ["light.a"], two, {}, [], [], 10
    )
    many = [f"alias {chr(97 + i)}" for i in range(20)]
    kept = home_names.registry_names({"light.a": {"aliases": many[::-1]}})["light.a"]
    assert kept == (None, many[: home_names.MAX_ALIASES])


def test_the_websocket_address_follows_the_http_one() -> None:
    assert websocket_url("http://ha.local:8123") == "ws://ha.local:8123/api/websocket"
    assert websocket_url("https://ha.example/") == "wss://ha.example/api/websocket"


# -- asked for over a real websocket ---------------------------------------------------


def test_names_aliases_areas_and_floors_are_learned(fake: FakeHomeAssistant) -> None:
    home = fetch(fake.url)
    by_domain = {e.domain: e.names for e in home.entities}
    assert {n for e in home.entities for n in e.names} == {
        "kitchen light",
        "living room lamp",
        "reading lamp",  # an alias ("Lamp #2" has a digit: left out)
        "hall thermostat",
        "porch light",  # no state: the registry's name
    }
    assert "fan" not in by_domain  # disabled
    assert set(home.areas) == {"kitchen", "living room", "lounge"}
    assert set(home.floors) == {"downstairs", "ground floor"}
    # only exposed entities were asked about, and the subscription was ended
    asked = next(r for r in fake.requests if r["type"] == "subscribe_entities")
    assert "sensor.hidden" not in asked["entity_ids"]
    assert "unsubscribe_events" in fake.types()


def test_a_huge_home_is_asked_about_only_up_to_the_cap() -> None:
    exposed = {f"light.lamp_{i}": True for i in range(20_000)}
    server = FakeHomeAssistant(
        Home(exposed=exposed, names={e: "lamp" for e in exposed}, registry={})
    )
    try:
        home = fetch(server.url, max_names=50)
    finally:
        server.close()
    entries = next(r for r in server.requests if r["type"] == "config/entity_registry/get_entries")
    assert len(entries["entity_ids"]) == 50
    assert home.size <= 50 and home.left_out >= 20_000 - 50


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("bad-json", "not JSON"),
        ("not-json-object", "not a JSON object"),
        ("huge", "connection failed"),
        ("http-401", "did not open a websocket"),
        ("silent", "did not answer within"),
        ("flood", "never answered"),
        ("not-admin", "must be an administrator's"),
    ],
)
def test_a_hostile_or_broken_reply_is_one_clear_error(fault: str, said: str) -> None:
    server = FakeHomeAssistant(small_home(), fault=fault)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    try:
        with pytest.raises(HomeApiError) as caught:
            fetch(server.url, timeout_s=10.0 if fault == "flood" else 2.0)
    finally:
        server.close()
    assert said in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert time.monotonic() - started < 10.0 + 3.0
    # the 6 MB reply was refused, not kept: the process grew by far less than it
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert fault != "huge" or grown_kb < 60_000


def test_a_wrong_token_is_refused_and_never_shown(fake: FakeHomeAssistant) -> None:
    with pytest.raises(HomeApiError, match="refused the access token") as caught:
        fetch(fake.url, token="wrong-token-abcdef")
    assert "wrong-token-abcdef" not in str(caught.value)


def test_the_address_and_the_token_are_checked_before_anything_is_asked(tmp_path: Path) -> None:
    from loguru import logger
    from pydantic import ValidationError

    from firmware_app.edges.wyoming.home_refresh import home_link

    with pytest.raises(ValidationError, match="homeassistant_url"):
        WyomingSettings(homeassistant_url="http://owner:secret@ha.local:8123")
    with pytest.raises(ValidationError, match="homeassistant_url"):
        WyomingSettings(homeassistant_url="ha.local:8123")
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        url = "http://ha.local:8123"
        assert home_link(Settings(wyoming=WyomingSettings())) is None
        assert home_link(Settings(wyoming=WyomingSettings(homeassistant_url=url))) is None
        missing = WyomingSettings(
            homeassistant_url=url, homeassistant_token_file=tmp_path / "absent.token"
        )
        assert home_link(Settings(wyoming=missing)) is None
        token = tmp_path / "ha.token"
        token.write_text(TOKEN + "\n")
        given = WyomingSettings(homeassistant_url=url, homeassistant_token_file=token)
        assert home_link(Settings(wyoming=given)) is not None
    finally:
        logger.remove(sink)
    assert any("no token" in w for w in warnings) and any("absent.token" in w for w in warnings)
    assert not any(TOKEN in w for w in warnings)


def test_no_home_assistant_at_the_address_is_one_clear_error() -> None:
    with pytest.raises(HomeApiError, match=r"cannot be reached|connection failed"):
        fetch(f"http://127.0.0.1:{free_port()}")


# -- the sentences are Home Assistant's -------------------------------------------------

FAMILY = {
    "turn_on_off": {"HassTurnOn", "HassTurnOff"},
    "lights_in": {"HassTurnOn", "HassTurnOff"},
    "brightness": {"HassLightSet"},
    "state": {"HassGetState"},
    "temperature": {"HassClimateGetTemperature"},
    "open_close": {"HassTurnOn", "HassTurnOff"},
}
SAMPLE_HOME = home_names.Home(
    entities=(
        home_names.Entity("light", ("kitchen light",)),
        home_names.Entity("switch", ("coffee maker",)),
        home_names.Entity("climate", ("hall thermostat",)),
        home_names.Entity("sensor", ("outdoor temperature",)),
        home_names.Entity("cover", ("garage door",)),
        home_names.Entity("lock", ("front door",)),
        home_names.Entity("scene", ("movie night",)),
        home_names.Entity("script", ("bedtime routine",)),
    ),
    areas=("living room",),
    floors=("upstairs",),
)


def _said(text: str) -> str:
    """A sampled sentence as the recognizer says it: numbers in words."""
    return " ".join(number_words(int(w)) if w.isdigit() else w for w in text.split())


@pytest.mark.parametrize("family", sorted(SENTENCES))
def test_every_sentence_is_one_home_assistants_agent_matches(family: str) -> None:
    """Each sentence shape, with a home's names, is matched by Home Assistant's own
    English sentence data (the ``home-assistant-intents`` package) to the intent it
    stands for, numbers spoken as words."""
    hai = pytest.importorskip("home_assistant_intents")
    from hassil import Intents, recognize_all
    from hassil.intents import RangeSlotList, TextSlotList
    from hassil.sample import sample_intents

    ha = Intents.from_dict(json.loads((Path(hai.__file__).parent / "data" / "en.json").read_text()))
    names = [(n, n, {"domain": e.domain}) for e in SAMPLE_HOME.entities for n in e.names]
    lists = {
        "name": TextSlotList.from_tuples(names, allow_template=False),
        "area": TextSlotList.from_tuples([(a, a) for a in SAMPLE_HOME.areas], allow_template=False),
        "floor": TextSlotList.from_tuples(
            [(f, f) for f in SAMPLE_HOME.floors], allow_template=False
        ),
    }
    ours = home_intents(SAMPLE_HOME)
    ours = Intents(
        language="en",
        intents={family: ours.intents[family]},
        slot_lists={**ours.slot_lists, "home_brightness": RangeSlotList("home_brightness", 35, 35)},
        expansion_rules=ours.expansion_rules,
    )
    texts = [_said(t) for _, t in sample_intents(ours, language="en")]
    assert texts
    missed = {}
    for text in texts:
        found = {r.intent.name for r in recognize_all(text, ha, slot_lists=lists, language="en")}
        if not found & FAMILY[family]:
            missed[text] = sorted(found)
    assert missed == {}


# -- heard: the grammar with the home's names ----------------------------------------


def _pcm(text: str) -> bytes:
    return np.concatenate([silence(0.3), speech(text), silence(0.6)]).astype("<i2").tobytes()


@pytest.mark.slow
def test_a_spoken_command_for_the_home_is_heard_once_its_names_are_learned() -> None:
    from firmware_app.recognize.phrases import PhraseTranscriber
    from firmware_app.recognize.stt import phrase_grammar_sources

    sentences = HomeSentences()
    stt = PhraseTranscriber(phrase_grammar_sources(Settings(), sentences.intents))

    def heard(text: str) -> str:
        stt.start()
        stt.feed(_pcm(text))
        return stt.finish()

    assert heard("turn on the kitchen light") != "turn on the kitchen light"
    assert sentences.update(SAMPLE_HOME)
    stt.rebuild()
    assert heard("turn on the kitchen light") == "turn on the kitchen light"
    assert heard("turn off the lights in the living room") == (
        "turn off the lights in the living room"
    )
    assert heard("set the kitchen light to fifty percent") == (
        "set the kitchen light to fifty percent"
    )
    assert heard("what is the temperature in the living room") == (
        "what is the temperature in the living room"
    )
    assert heard("what time is it") == "what time is it"  # the speaker's own, still
    assert not sentences.update(SAMPLE_HOME)  # the same names: nothing to rebuild


@pytest.mark.slow
def test_the_wyoming_server_learns_and_keeps_the_names_when_home_assistant_goes(
    tmp_path: Path,
) -> None:
    """``[wyoming] homeassistant_url``: the server asks the (fake) Home Assistant, its
    transcripts then hold the home's names; when Home Assistant is gone the last names
    stay and the server goes on serving."""
    from firmware_app.edges.wyoming.server import BackgroundWyoming, load_service

    fake = FakeHomeAssistant(small_home())
    token_file = tmp_path / "ha.token"
    token_file.write_text(TOKEN + "\n")
    cfg = WyomingSettings(
        host="127.0.0.1",
        port=free_port(),
        homeassistant_url=fake.url,
        homeassistant_token_file=token_file,
        homeassistant_refresh_s=10,
    )
    service = load_service(Settings(data_dir=tmp_path / "data", wyoming=cfg))
    assert service.home is not None
    background = BackgroundWyoming(service, cfg)
    background.start()
    try:
        deadline = time.monotonic() + 60
        while service.home.updates == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert service.home.updates == 1
        assert (
            transcribe(cfg.port, _pcm("turn on the kitchen light")) == "turn on the kitchen light"
        )
        fake.close()  # Home Assistant goes away
        assert not asyncio.run(service.home.refresh_once())
        assert (
            transcribe(cfg.port, _pcm("turn off the reading lamp")) == "turn off the reading lamp"
        )
        assert service.home.updates == 1
    finally:
        background.close()

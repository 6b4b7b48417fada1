#!/usr/bin/env python3
"""Generate a labelled answering-machine-detection corpus, reproducibly.

    scripts/amd_corpus.py --out DIR --seed N --count K [--split tune|heldout|recorded|othertts]

Speech comes from espeak-ng (Russian and English, several voice variants, speeds and pitches)
through sox (8 kHz, telephone band 300-3400 Hz). Each file is a call as the caller hears it
after the answer:

* HUMAN: 0.2-1.5 s of silence, a short answer ("Алло?", "Да, слушаю", "Hello?"; sometimes a
  longer phrase, a breath, or a second "Алло?" after a pause), then silence to the end while
  the person waits for the operator. ``greeting_end_s`` is when the first answer ends.
* MACHINE: a voicemail greeting of 3-8 s (continuous sentences), some ending in a beep; some
  a carrier announcement preceded by a Special Information Tone (reason "sit"); a few just a
  beep.
* SILENCE: line noise only (white, pink, hum; clicks), or digital silence.

Then line noise, a random gain and a G.711 mu-law round trip. The ``tune`` and ``heldout``
splits use disjoint voices, phrases and speed/pitch ranges, so tuning on one says something
about the other. Two more splits check the detector on speech made another way (the
parameters were not fitted to them): ``recorded`` builds the same kinds of calls from the real recorded voices of
Debian's asterisk-core-sounds-{en,ru}-wav, ``othertts`` has flite and Festival (Russian unit
selection, English HTS) say the held-out phrases.

Writes DIR/*.wav (8 kHz mono 16-bit) and DIR/labels.csv (file,class,kind,voice,text,
greeting_end_s,speech_end_s).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import shlex
import subprocess
import sys
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 8000
SIT_TONES = ((913.8, 985.2), (1370.6, 1428.5), (1776.7,))
# espeak-ng's WAV on stdin to raw 8 kHz 16-bit mono in the telephone band on stdout.
# -D: no dither, so that the corpus is the same bytes on every run.
SOX_TO_PHONE = shlex.split("sox -D -t wav - -t raw -e signed -b 16 -c 1 -r 8000 - sinc 300-3400")


@dataclass(frozen=True)
class Split:
    voices: tuple[str, ...]
    speeds: tuple[tuple[int, int], ...]
    pitches: tuple[tuple[int, int], ...]
    human: tuple[str, ...]
    human_long: tuple[str, ...]
    again: tuple[str, ...]
    machine: tuple[str, ...]
    announce: tuple[str, ...]


TUNE = Split(
    voices=("ru", "ru+m3", "ru+f3", "ru+Denis", "en-us", "en-us+m3", "en+f2", "en-gb+m1"),
    speeds=((95, 114), (140, 175), (201, 230)),
    pitches=((5, 19), (35, 65), (86, 99)),
    human=(
        "Алло?",
        "Да, слушаю",
        "Слушаю вас",
        "Да?",
        "Алло, да",
        "Hello?",
        "Yes, hello?",
        "Hi, who is it?",
    ),
    human_long=("Да, я слушаю, кто это?", "Hello, yes, I can hear you"),
    again=("Алло?", "Hello?"),
    machine=(
        "Здравствуйте, вы позвонили в компанию Ромашка. К сожалению, сейчас никто не может ответить.",
        "Оставьте, пожалуйста, ваше сообщение после сигнала, и мы обязательно вам перезвоним.",
        "Абонент временно недоступен, пожалуйста, оставьте сообщение после звукового сигнала.",
        "Добрый день, это голосовая почта Ивана Петрова, говорите после сигнала.",
        "Hello, you have reached the voicemail of John Smith. I am not available right now.",
        "Please leave your name, number and a short message after the tone, and I will call you back.",
        "Thank you for calling Acme Corporation. Our office is currently closed.",
    ),
    announce=(
        "Номер, который вы набрали, не обслуживается. Проверьте правильность набора номера.",
        "The number you have dialed is not in service. Please check the number and dial again.",
    ),
)

HELDOUT = Split(
    voices=(
        "ru+f4",
        "ru+m7",
        "ru+klatt",
        "ru+grandpa",
        "ru+f5",
        "en-gb-scotland+f5",
        "en-gb-x-rp+m5",
        "en-us+klatt2",
    ),
    speeds=((115, 138), (178, 200)),
    pitches=((20, 34), (66, 85)),
    human=(
        "Алло, слушаю",
        "Да, говорите",
        "Алё?",
        "Слушаю",
        "Добрый день",
        "Да-да?",
        "Yeah?",
        "Hello, speaking",
        "Good afternoon",
    ),
    human_long=(
        "Да, я вас слушаю, говорите",
        "Алло, да, слушаю вас",
        "Hello, this is Mike speaking",
    ),
    again=("Алло?", "Алё?", "Hello?"),
    machine=(
        "Вы позвонили в службу доставки Экспресс. Все операторы заняты, ваш звонок очень важен для нас.",
        "Сейчас я не могу ответить на ваш звонок. Назовите своё имя и номер телефона после сигнала.",
        "Здравствуйте, это автоответчик семьи Смирновых. Нас нет дома, оставьте сообщение.",
        "Добро пожаловать в голосовой ящик. Абонент не может принять ваш вызов, говорите после гудка.",
        "Hi, this is Sarah. Sorry I missed your call. Leave a message and I will get back to you soon.",
        "You have reached the customer service line. Our business hours are nine to five, Monday to Friday.",
        "The person you are calling is unavailable. At the tone, please record your message.",
    ),
    announce=(
        "Неправильно набран номер. Абонент с таким номером не зарегистрирован в сети.",
        "We are sorry, your call cannot be completed as dialed. Please hang up and try again.",
    ),
)


@dataclass
class Call:
    name: str
    label: str
    kind: str
    voice: str
    text: str
    audio: np.ndarray
    greeting_end_s: float | None
    speech_end_s: float | None


def espeak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """Speak ``text`` with espeak-ng and convert it with sox to 8 kHz in the telephone band."""
    speak = subprocess.Popen(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        converted = subprocess.run(
            SOX_TO_PHONE,
            stdin=speak.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=30,
        )
    finally:
        if speak.stdout is not None:
            speak.stdout.close()
        speak.wait(timeout=30)
    return trim(np.frombuffer(converted.stdout, dtype="<i2").astype(np.float64))


def other_tts(text: str, voice: str, tempo: float, cents: int) -> np.ndarray:
    """Speak with flite or Festival (``flite:rms``, ``festival:msu_ru_nsh_clunits``), then sox:
    tempo and pitch changed, 8 kHz, telephone band."""
    engine, name = voice.split(":", 1)
    with tempfile.TemporaryDirectory(prefix="amd-tts-") as tmp:
        wav = Path(tmp) / "speech.wav"
        if engine == "flite":
            command = ["flite", "-voice", name, "-t", text, "-o", str(wav)]
            subprocess.run(command, check=True, timeout=60, capture_output=True)
        else:
            command = ["text2wave", "-eval", f"(voice_{name})", "-o", str(wav)]
            subprocess.run(
                command, input=text.encode(), check=True, timeout=60, capture_output=True
            )
        effects = ["tempo", f"{tempo:.3f}", "pitch", str(cents)]
        converted = subprocess.run(
            [*SOX_TO_PHONE[:1], "-D", str(wav), *SOX_TO_PHONE[5:-2], *effects, *SOX_TO_PHONE[-2:]],
            check=True, timeout=60, capture_output=True,
        )  # fmt: skip
    return trim(np.frombuffer(converted.stdout, dtype="<i2").astype(np.float64))


def trim(x: np.ndarray) -> np.ndarray:
    """Cut leading and trailing silence so that speech starts and ends where we say."""
    if len(x) == 0:
        return x
    frame = 80
    n = len(x) // frame
    energy = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    loud = np.nonzero(energy > energy.max() * 10 ** (-40 / 10))[0]
    if len(loud) == 0:
        return x[:0]
    return x[loud[0] * frame : (loud[-1] + 1) * frame]


def normalise(x: np.ndarray, level_db: float) -> np.ndarray:
    """Scale to an RMS of ``level_db`` dBFS over the loud part."""
    rms = math.sqrt(float(np.mean(x**2))) if len(x) else 0.0
    return x if rms == 0 else x * (10 ** (level_db / 20) * 32768 / rms)


def band(x: np.ndarray, low: float, high: float) -> np.ndarray:
    spectrum = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    spectrum[(f < low) | (f > high)] = 0
    return np.fft.irfft(spectrum, len(x))


def line_noise(rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    """Unit-RMS line noise of a random colour, band-limited like the line."""
    kind = str(rng.choice(["white", "pink", "brown", "hum", "hum+white"]))
    white = rng.standard_normal(n)
    if kind == "white":
        x = white
    elif kind in ("pink", "brown"):
        spectrum = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1 / RATE)
        f[0] = f[1]
        spectrum /= np.sqrt(f) if kind == "pink" else f
        x = np.fft.irfft(spectrum, n)
    else:
        t = np.arange(n) / RATE
        mains = float(rng.choice([50.0, 60.0]))
        x = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 6.3)) / k for k in (1, 3, 5, 7))
        x = np.asarray(x) + (0.3 * white if kind == "hum+white" else 0)
    x = band(x, 200 if kind.startswith("hum") else 300, 3400)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12), kind


def mulaw_roundtrip(x: np.ndarray) -> np.ndarray:
    """G.711 mu-law encode and decode (the continuous companding law, 8-bit quantised)."""
    y = np.clip(x / 32768.0, -1.0, 1.0)
    mu = 255.0
    encoded = np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)
    q = np.round(encoded * 127.0) / 127.0
    return np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu * 32768.0


def tone(freq: float, seconds: float, level_db: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)
    return np.sin(2 * np.pi * freq * t) * ramp * 10 ** (level_db / 20) * 32768 * math.sqrt(2)


def breath(rng: np.random.Generator, level_db: float) -> np.ndarray:
    n = int(rng.uniform(0.15, 0.35) * RATE)
    x = band(rng.standard_normal(n), 400, 2500) * np.hanning(n)
    return normalise(x, level_db)


HUMAN_MIN_WPM = 115
OTHER_TTS_VOICES = ("flite:kal", "flite:awb", "flite:rms", "flite:slt",
                    "festival:cmu_us_slt_arctic_hts", "festival:msu_ru_nsh_clunits",
                    "festival:msu_ru_nsh_clunits")  # fmt: skip
RECORDED_VOICES = ("en_US_f_Allison", "ru_RU_f_IvrvoiceRU")
# Carrier-style announcements among the recorded prompts (played after a SIT).
RECORDED_ANNOUNCE = ("ss-noservice", "cannot-complete-as-dialed", "all-circuits-busy-now",
                     "check-number-dial-again", "cannot-complete-network-error")  # fmt: skip


def load_recorded(sounds: Path) -> tuple[Split, dict[str, np.ndarray]]:
    """A split made of the recorded prompts of asterisk-core-sounds-{en,ru}-wav.

    Short prompts (0.3-1.2 s of speech: single words, numbers) stand for a person's answer,
    1.2-2.2 s ones for a longer answer, prompts of more than 2.5 s for a recorded greeting.
    """
    audio: dict[str, np.ndarray] = {}
    human: list[str] = []
    human_long: list[str] = []
    machine: list[str] = []
    announce: list[str] = []
    voices = []
    for voice in RECORDED_VOICES:
        folder = sounds / voice
        if not folder.is_dir():
            continue
        voices.append(voice)
        for path in sorted(folder.rglob("*.wav")):
            rel = path.relative_to(folder).as_posix()
            if rel.startswith(("silence/", "letters/", "phonetic/")) or "beep" in rel:
                continue
            with wave.open(str(path), "rb") as w:
                if w.getframerate() != RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
                    continue
                x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
            x = trim(band(x, 300, 3400)) if len(x) > 160 else x[:0]
            seconds = len(x) / RATE
            key = f"{voice}/{rel}"
            audio[key] = x
            if rel.removesuffix(".wav") in RECORDED_ANNOUNCE:
                announce.append(key)
            elif 0.3 <= seconds <= 1.2:
                human.append(key)
            elif 1.2 < seconds <= 2.2:
                human_long.append(key)
            elif seconds > 2.5:
                machine.append(key)
    if not voices:
        raise SystemExit(f"no recorded prompts under {sounds}: install asterisk-core-sounds-en-wav"
                         " and asterisk-core-sounds-ru-wav")  # fmt: skip
    split = Split(
        voices=tuple(voices), speeds=((0, 0),), pitches=((0, 0),), human=tuple(human),
        human_long=tuple(human_long), again=tuple(human), machine=tuple(machine),
        announce=tuple(announce) or tuple(machine),
    )  # fmt: skip
    return split, audio


class Generator:
    def __init__(self, split_name: str, seed: int, sounds: Path | None = None) -> None:
        self.split_name = split_name
        self.split = HELDOUT if split_name == "heldout" else TUNE
        self.seed = seed
        self.recorded: dict[str, np.ndarray] | None = None
        if split_name == "othertts":
            # Other synthesisers (flite's voices, Festival's Russian unit selection and English
            # HTS voices) saying the held-out phrases: speech made another way than espeak-ng.
            self.split = dataclasses.replace(HELDOUT, voices=OTHER_TTS_VOICES)
        if split_name == "recorded":
            self.split, self.recorded = load_recorded(sounds or Path("/usr/share/asterisk/sounds"))

    def speak(
        self, rng: np.random.Generator, voice: str, text: str, *, human: bool = False
    ) -> np.ndarray:
        if self.recorded is not None:
            return self.recorded[text]
        if self.split_name == "othertts":
            tempo = float(rng.uniform(0.9, 1.15)) if human else float(rng.uniform(0.8, 1.2))
            return other_tts(text, voice, tempo, int(rng.integers(-300, 301)))
        # Recordings may drawl; a person answering the phone does not speak at 100 wpm.
        speeds = [r for r in self.split.speeds if not human or r[0] >= HUMAN_MIN_WPM]
        lo, hi = speeds[int(rng.integers(len(speeds)))]
        plo, phi = self.split.pitches[int(rng.integers(len(self.split.pitches)))]
        return espeak(text, voice, int(rng.integers(lo, hi + 1)), int(rng.integers(plo, phi + 1)))

    def make(self, index: int) -> Call:
        rng = np.random.default_rng([self.seed, index])
        roll = rng.random()
        label = "HUMAN" if roll < 0.45 else "MACHINE" if roll < 0.85 else "SILENCE"
        duration = float(rng.uniform(6.0, 7.5))
        level = float(rng.uniform(-36.0, -14.0))  # speech level on the line, dBFS
        parts: list[tuple[float, np.ndarray]] = []
        voice, text, kind = "", "", label.lower()
        greeting_end: float | None = None
        speech_end: float | None = None
        if label == "HUMAN":
            voice, text, parts, greeting_end, speech_end, kind = self._human(rng, level)
        elif label == "MACHINE":
            voice, text, parts, speech_end, kind, duration = self._machine(rng, level, duration)
        n = int(duration * RATE)
        signal = np.zeros(n)
        for start, chunk in parts:
            i = int(start * RATE)
            chunk = chunk[: max(0, n - i)]
            signal[i : i + len(chunk)] += chunk
        noise_kind = "digital"
        if not (label == "SILENCE" and rng.random() < 0.15):
            noise, noise_kind = line_noise(rng, n)
            snr = float(rng.uniform(12.0, 40.0))
            signal += noise * 10 ** ((level - snr) / 20) * 32768
            if label == "SILENCE" and rng.random() < 0.5:
                for _ in range(int(rng.integers(1, 5))):  # clicks and crackle on the line
                    i = int(rng.integers(0, n - 400))
                    m = int(rng.integers(40, 320))
                    signal[i : i + m] += rng.standard_normal(m) * 10 ** ((level - 6) / 20) * 32768
                kind += "+clicks"
        signal = mulaw_roundtrip(np.clip(signal, -32768, 32767))
        audio = np.clip(np.round(signal), -32768, 32767).astype(np.int16)
        name = f"{self.split_name}_{index:04d}_{label.lower()}.wav"
        return Call(
            name, label, f"{kind}/{noise_kind}", voice, text, audio, greeting_end, speech_end
        )

    def _voice(self, rng: np.random.Generator, english: bool | None = None) -> str:
        voices = self.split.voices
        if english is not None:
            voices = tuple(v for v in voices if _voice_is_english(v) == english) or voices
        return str(voices[int(rng.integers(len(voices)))])

    def _pick(self, rng: np.random.Generator, options: tuple[str, ...], voice: str) -> str:
        if self.recorded is not None:
            same = tuple(o for o in options if o.startswith(voice + "/")) or options
        else:
            english = _voice_is_english(voice)
            same = tuple(o for o in options if _is_english(o) == english) or options
        return str(same[int(rng.integers(len(same)))])

    def _human(
        self, rng: np.random.Generator, level: float
    ) -> tuple[str, str, list[tuple[float, np.ndarray]], float, float, str]:
        voice = self._voice(rng)
        long_phrase = rng.random() < 0.2
        pool = self.split.human_long if long_phrase else self.split.human
        text = self._pick(rng, pool, voice)
        start = float(rng.uniform(0.2, 1.5))
        speech = normalise(self.speak(rng, voice, text, human=True), level)
        parts = [(start, speech)]
        end = start + len(speech) / RATE
        greeting_end = end
        kind = "human-long" if long_phrase else "human"
        roll = rng.random()
        if roll < 0.25:  # nobody answers his "Алло?": he asks again after a pause
            again = self._pick(rng, self.split.again, voice)
            second = normalise(
                self.speak(rng, voice, again, human=True), level + float(rng.uniform(-3, 3))
            )
            at = end + float(rng.uniform(1.2, 2.0))
            parts.append((at, second))
            end = at + len(second) / RATE
            text += " … " + again
            kind += "+again"
        elif roll < 0.45:  # an audible breath before or after the answer
            b = breath(rng, level - float(rng.uniform(12, 20)))
            at = (
                max(0.05, start - 0.4)
                if rng.random() < 0.5
                else greeting_end + float(rng.uniform(0.2, 0.5))
            )
            parts.append((at, b))
            kind += "+breath"
        return voice, text, parts, greeting_end, end, kind

    def _machine(
        self, rng: np.random.Generator, level: float, duration: float
    ) -> tuple[str, str, list[tuple[float, np.ndarray]], float, str, float]:
        roll = rng.random()
        start = float(rng.uniform(0.0, 1.0))
        parts: list[tuple[float, np.ndarray]] = []
        if roll < 0.05:  # a bare voicemail beep
            freq = float(rng.uniform(500, 1900))
            parts.append((start + 0.3, tone(freq, float(rng.uniform(0.3, 1.0)), level)))
            return "", f"beep {freq:.0f} Hz", parts, start, "beep-only", duration
        voice = self._voice(rng)
        if roll < 0.17:  # carrier intercept: SIT then an announcement
            t = start
            for group in SIT_TONES:
                freq = float(group[int(rng.integers(len(group)))])
                length = float(rng.choice([0.274, 0.380]))
                parts.append((t, tone(freq, length, level - 3)))
                t += length
            text = self._pick(rng, self.split.announce, voice)
            speech = normalise(self.speak(rng, voice, text), level)
            parts.append((t + 0.1, speech))
            end = t + 0.1 + len(speech) / RATE
            return voice, text, parts, end, "sit", max(duration, min(end, 8.0))
        target = float(rng.uniform(3.0, 8.0))
        texts: list[str] = []
        if self.recorded is None:
            # One synthesis of a few sentences, with the synthesiser's own pauses between them
            # (and one process per call, which keeps the corpus quick to make).
            for _ in range(3):
                text = self._pick(rng, self.split.machine, voice)
                if text not in texts:
                    texts.append(text)
            speech = normalise(self.speak(rng, voice, " ".join(texts)), level)
            speech = speech[: int(target * RATE)]
            parts.append((start, speech))
            end = start + len(speech) / RATE
        else:
            t = start
            while t - start < target:
                text = self._pick(rng, self.split.machine, voice)
                speech = normalise(self.speak(rng, voice, text), level)
                room = int((start + target - t) * RATE)
                speech = speech[: max(room, int(1.5 * RATE))]
                parts.append((t, speech))
                texts.append(text)
                end = t + len(speech) / RATE
                t = end + float(rng.uniform(0.15, 0.45))
        kind = "voicemail"
        if rng.random() < 0.4:
            freq = float(rng.uniform(500, 1900))
            parts.append((end + 0.2, tone(freq, float(rng.uniform(0.3, 0.8)), level)))
            end += 1.0
            kind += "+beep"
        return voice, " ".join(texts), parts, end, kind, max(duration, min(end, 9.0))


def _voice_is_english(voice: str) -> bool:
    return voice.startswith(("en", "flite:")) or "_us_" in voice


def _is_english(text: str) -> bool:
    return all(ord(c) < 128 or c in "…" for c in text)


def write(out: Path, call: Call) -> None:
    with wave.open(str(out / call.name), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(call.audio.astype("<i2").tobytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1].strip())
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument(
        "--split", choices=("tune", "heldout", "recorded", "othertts"), default="tune"
    )
    parser.add_argument(
        "--sounds", type=Path, default=Path("/usr/share/asterisk/sounds"),
        help="where asterisk-core-sounds-*-wav put their prompts (--split recorded)",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    generator = Generator(args.split, args.seed, args.sounds)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        calls = list(pool.map(generator.make, range(args.count)))
    with (args.out / "labels.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["file", "class", "kind", "voice", "text", "greeting_end_s", "speech_end_s"]
        )
        for call in calls:
            write(args.out, call)
            writer.writerow(
                [
                    call.name,
                    call.label,
                    call.kind,
                    call.voice,
                    call.text,
                    "" if call.greeting_end_s is None else f"{call.greeting_end_s:.3f}",
                    "" if call.speech_end_s is None else f"{call.speech_end_s:.3f}",
                ]
            )
    counts = {c: sum(1 for x in calls if x.label == c) for c in ("HUMAN", "MACHINE", "SILENCE")}
    print(f"wrote {len(calls)} files to {args.out}: {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The detector on synthesised signals, streamed as a call delivers them."""

from __future__ import annotations

import numpy as np
import pytest

from sipspeak.media.amd.detector import (
    AmdDecision,
    AmdReason,
    AnsweringMachineDetector,
    periodicity,
)
from sipspeak.media.amd.params import AmdParams

P = AmdParams()


def test_short_greeting_then_silence_is_human_soon_after_it_ends(sig):
    x = sig.concat([sig.noise(0.6), sig.word(0.45), sig.noise(4.0)])
    result = sig.run(x)
    assert result.decision is AmdDecision.HUMAN
    assert result.reason is AmdReason.HUMAN_SHORT_GREETING
    greeting_end = 0.6 + 0.45
    assert greeting_end + P.after_greeting_silence / 1000 - 0.05 <= result.time
    assert result.time <= greeting_end + P.after_greeting_silence / 1000 + 0.1
    assert result.words == 1


def test_two_word_answer_is_human(sig):
    # "Да, слушаю": two words with a short comma pause.
    x = sig.concat(
        [sig.noise(0.4), sig.word(0.2), sig.noise(0.25), sig.word(0.5, f0=120), sig.noise(3)]
    )
    result = sig.run(x)
    assert result.decision is AmdDecision.HUMAN
    assert result.words == 2


def test_longer_phrase_of_a_person_is_still_human(sig):
    # "Да, я вас слушаю, говорите": ~1.7 s with short pauses.
    parts = [sig.noise(0.5)]
    for i, length in enumerate((0.2, 0.15, 0.25, 0.45, 0.5)):
        parts += [sig.word(length, f0=130 + 5 * i, seed=i), sig.noise(0.12, seed=i + 10)]
    parts.append(sig.noise(3))
    result = sig.run(sig.concat(parts))
    assert result.decision is AmdDecision.HUMAN


def test_a_recording_pausing_between_sentences_is_not_taken_for_a_person(sig):
    # Two sentences (~2 s of voice) and a 0.8 s pause before the third: longer than the
    # silence that ends a short answer, shorter than the one asked after a long greeting.
    x = sig.concat([sig.noise(0.3), sig.sentence(1.1), sig.noise(0.3), sig.sentence(1.1),
                    sig.noise(0.8), sig.sentence(2.0), sig.noise(1)])  # fmt: skip
    result = sig.run(x)
    assert result.decision is AmdDecision.MACHINE
    assert result.time > 0.3 + 1.1 + 0.3 + 1.1 + 0.8
    # Without the growing silence (Asterisk's way), the pause makes a person of it.
    flat = AmdParams(after_long_greeting_silence=P.after_greeting_silence)
    assert sig.run(x, params=flat).decision is AmdDecision.HUMAN
    # The same pause after a short answer: a person.
    short = sig.concat([sig.noise(0.3), sig.word(0.4), sig.noise(0.8), sig.sentence(3.0)])
    assert sig.run(short).decision is AmdDecision.HUMAN


def test_long_continuous_greeting_is_machine(sig):
    x = sig.concat([sig.noise(0.3), sig.sentence(4.5), sig.noise(1)])
    result = sig.run(x)
    assert result.decision is AmdDecision.MACHINE
    assert result.reason in (AmdReason.LONG_GREETING, AmdReason.TOO_MANY_WORDS)
    assert result.time < 0.3 + P.greeting_span / 1000 + 0.1


def test_one_very_long_word_is_machine(sig):
    params = AmdParams(maximum_word_length=1500, greeting=3000, greeting_span=4000)
    x = sig.concat([sig.noise(0.3), sig.word(2.5), sig.noise(1)])
    result = sig.run(x, params=params)
    assert result.decision is AmdDecision.MACHINE
    assert result.reason is AmdReason.MAX_WORD_LENGTH
    assert result.time == pytest.approx(0.3 + 1.5, abs=0.1)


def test_too_many_words_with_asterisk_like_limits(sig):
    params = AmdParams(maximum_number_of_words=2)
    x = sig.concat(
        [sig.noise(0.3)] + [sig.concat([sig.word(0.2, seed=i), sig.noise(0.2)]) for i in range(4)]
    )
    result = sig.run(sig.concat([x, sig.noise(2)]), params=params)
    assert result.decision is AmdDecision.MACHINE
    assert result.reason is AmdReason.TOO_MANY_WORDS
    assert result.words == 3


def test_line_noise_only_is_notsure_no_speech_at_initial_silence(sig):
    result = sig.run(sig.noise(6.0, level_db=-45))
    assert result.decision is AmdDecision.NOTSURE
    assert result.reason is AmdReason.NO_SPEECH
    assert result.time == pytest.approx(P.initial_silence / 1000, abs=0.03)


def test_digital_silence_is_no_audio(sig):
    result = sig.run(np.zeros(8000 * 4))
    assert result.decision is AmdDecision.NOTSURE
    assert result.reason is AmdReason.NO_AUDIO


def test_timer_without_any_audio_is_no_audio():
    detector = AnsweringMachineDetector(start_time=100.0)
    assert detector.handle_timer(100.5) is None  # too early
    deadline = detector.get_timer()
    assert deadline == pytest.approx(100.0 + P.initial_silence / 1000)
    result = detector.handle_timer(deadline)
    assert result is not None
    assert result.reason is AmdReason.NO_AUDIO
    assert result.time == pytest.approx(deadline)


def test_timer_after_speech_waits_for_total_analysis_time(sig):
    detector = AnsweringMachineDetector()
    x = sig.pcm(sig.concat([sig.noise(0.3), sig.word(0.4)]))
    for offset in range(0, len(x) - 159, 160):
        assert detector.feed(x[offset : offset + 160], offset / 8000) is None
    assert detector.get_timer() == pytest.approx(P.total_analysis_time / 1000)
    result = detector.handle_timer(P.total_analysis_time / 1000)
    assert result is not None and result.reason is AmdReason.MAX_ANALYSIS_TIME


def test_clicks_and_crackle_are_not_speech(sig):
    x = sig.noise(6.0, level_db=-55)
    rng = np.random.default_rng(5)
    for start in (0.4, 0.9, 1.35, 1.9, 2.2):
        i = int(start * 8000)
        n = int(rng.integers(40, 300))
        x[i : i + n] += rng.standard_normal(n) * 10 ** (-20 / 20) * 32768
    result = sig.run(x)
    assert result.decision is AmdDecision.NOTSURE


def test_a_breath_after_the_greeting_does_not_hold_the_decision(sig):
    x = sig.concat(
        [
            sig.noise(0.5),
            sig.word(0.45),
            sig.noise(0.3),
            sig.breath(0.3, level_db=-30),
            sig.noise(3),
        ]
    )
    result = sig.run(x)
    assert result.decision is AmdDecision.HUMAN
    assert result.time <= 0.95 + P.after_greeting_silence / 1000 + 0.1


@pytest.mark.parametrize("noise_db", [-70.0, -45.0, -35.0])
def test_works_on_quiet_and_noisy_lines(sig, noise_db):
    human = sig.concat(
        [
            sig.noise(0.8, noise_db),
            sig.mix(sig.word(0.5, level_db=-20), sig.noise(0.5, noise_db, seed=2)),
            sig.noise(4, noise_db, seed=3),
        ]
    )
    assert sig.run(human).decision is AmdDecision.HUMAN
    machine = sig.concat(
        [
            sig.noise(0.3, noise_db),
            sig.mix(sig.sentence(4.0), sig.noise(4.0, noise_db, seed=4)),
            sig.noise(1, noise_db, seed=5),
        ]
    )
    assert sig.run(machine).decision is AmdDecision.MACHINE


@pytest.mark.parametrize("below_db", [15.0, 25.0])
def test_a_television_behind_the_person_does_not_make_a_machine(sig, below_db):
    television = sig.sentence(6.0, level_db=-20.0 - below_db)
    person = sig.concat([sig.noise(0.6, -60), sig.word(0.45), sig.noise(5.0, -60)])
    result = sig.run(sig.mix(person, television))
    assert result.decision is AmdDecision.HUMAN
    assert result.time < 0.6 + 0.45 + 1.0


def test_a_dc_offset_is_neither_voice_nor_pitch(sig):
    offset = 3000.0
    assert sig.run(sig.noise(6.0, level_db=-50) + offset).decision is AmdDecision.NOTSURE
    human = sig.concat([sig.noise(0.6), sig.word(0.45), sig.noise(4.0)]) + offset
    assert sig.run(human).decision is AmdDecision.HUMAN


def test_quiet_caller_on_a_weak_line(sig):
    x = sig.concat([sig.noise(0.5, -75), sig.word(0.4, level_db=-42), sig.noise(4, -75)])
    assert sig.run(x).decision is AmdDecision.HUMAN


def test_voicemail_beep_is_machine(sig):
    x = sig.concat([sig.noise(0.5), sig.tone(1000.0, 0.6), sig.noise(2)])
    result = sig.run(x)
    assert result.decision is AmdDecision.MACHINE
    assert result.reason is AmdReason.BEEP
    assert result.time == pytest.approx(0.5 + P.min_tone_ms / 1000, abs=0.05)


def test_short_tone_blip_is_not_a_beep(sig):
    x = sig.concat([sig.noise(0.5), sig.tone(1000.0, 0.08), sig.noise(4)])
    assert sig.run(x).reason is not AmdReason.BEEP


@pytest.mark.parametrize(
    ("first", "second", "third", "length"),
    [
        (913.8, 1370.6, 1776.7, 0.274),
        (985.2, 1428.5, 1776.7, 0.380),
        (913.8, 1428.5, 1776.7, 0.380),
    ],
)
def test_special_information_tone_is_machine_sit(sig, first, second, third, length):
    x = sig.concat(
        [
            sig.noise(0.3),
            sig.tone(first, length),
            sig.tone(second, length),
            sig.tone(third, length),
            sig.sentence(3),
        ]
    )
    result = sig.run(x)
    assert result.decision is AmdDecision.MACHINE
    assert result.reason is AmdReason.SIT
    assert result.time < 0.3 + 2 * length + 0.05


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_frame_size_does_not_change_the_answer(sig, frame_ms):
    human = sig.concat([sig.noise(0.6), sig.word(0.45), sig.noise(4.0)])
    machine = sig.concat([sig.noise(0.3), sig.sentence(4.5)])
    reference_h, reference_m = sig.run(human), sig.run(machine)
    h, m = sig.run(human, frame_ms=frame_ms), sig.run(machine, frame_ms=frame_ms)
    assert (h.decision, h.reason) == (reference_h.decision, reference_h.reason)
    assert (m.decision, m.reason) == (reference_m.decision, reference_m.reason)
    assert h.time == pytest.approx(reference_h.time, abs=0.03)


def test_bytes_and_odd_sized_chunks_give_the_same_answer(sig):
    x = sig.pcm(sig.concat([sig.noise(0.6), sig.word(0.45), sig.noise(4.0)]))
    reference = sig.run(x)
    detector = AnsweringMachineDetector()
    result = None
    offset = 0
    sizes = [37, 160, 1, 203, 80]
    i = 0
    while result is None and offset < len(x):
        n = sizes[i % len(sizes)]
        result = detector.feed(x[offset : offset + n].tobytes(), offset / 8000)
        offset += n
        i += 1
    assert result is not None
    assert (result.decision, result.reason, result.time) == (
        reference.decision,
        reference.reason,
        reference.time,
    )


def test_stream_time_is_the_callers_and_the_answer_is_final(sig):
    x = sig.pcm(sig.concat([sig.noise(0.6), sig.word(0.45), sig.noise(4.0)]))
    result = sig.run(x, start_time=1234.5)
    assert result.decision is AmdDecision.HUMAN
    assert result.time == pytest.approx(1234.5 + result.elapsed)
    detector = AnsweringMachineDetector(start_time=0.0)
    first = None
    for offset in range(0, len(x) - 159, 160):
        out = detector.feed(x[offset : offset + 160], offset / 8000)
        if out is not None and first is None:
            first = out
        if first is not None:
            assert out is first  # later audio never changes it
    assert detector.result is first


def test_lost_packets_count_as_silence(sig):
    word = sig.pcm(sig.concat([sig.noise(0.5), sig.word(0.45)]))
    detector = AnsweringMachineDetector()
    for offset in range(0, len(word) - 159, 160):
        assert detector.feed(word[offset : offset + 160], offset / 8000) is None
    # The next packet arrives 1.5 s later in stream time: the gap was silence.
    after = sig.pcm(sig.noise(0.02))
    result = detector.feed(after, len(word) / 8000 + 1.5)
    assert result is not None
    assert result.decision is AmdDecision.HUMAN
    assert result.time == pytest.approx(
        len(word) / 8000 + P.after_greeting_silence / 1000, abs=0.05
    )


def test_periodicity_separates_voice_from_noise(sig):
    voiced = sig.word(0.04)
    noise = sig.noise(0.04, level_db=-20)
    assert periodicity(voiced[:160].copy(), voiced[160:320].copy()) > 0.8
    assert periodicity(noise[:160].copy(), noise[160:320].copy()) < 0.3
    assert periodicity(np.zeros(160), np.zeros(160)) == 0.0


def test_audio_that_is_not_16_bit_pcm_is_refused():
    detector = AnsweringMachineDetector()
    with pytest.raises(ValueError, match="even number"):
        detector.feed(b"\x00\x01\x02", 0.0)
    with pytest.raises(ValueError, match="int16"):
        detector.feed(np.zeros(160, dtype=np.float32), 0.0)  # type: ignore[arg-type]
    assert detector.feed(np.zeros(160, dtype=np.int16), 0.0) is None

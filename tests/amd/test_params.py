"""AmdParams: Asterisk's names and defaults, tuned defaults, validation of project overrides."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sipspeak.media.amd.params import ASTERISK_DEFAULTS, AmdParams, AmdParamsError


def test_asterisk_defaults_are_asterisks():
    a = ASTERISK_DEFAULTS
    assert (a.initial_silence, a.greeting, a.after_greeting_silence, a.total_analysis_time) == (
        2500,
        1500,
        800,
        5000,
    )
    assert (a.min_word_length, a.between_words_silence, a.maximum_number_of_words) == (100, 50, 2)
    assert (a.silence_threshold, a.maximum_word_length) == (256, 5000)


def test_params_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        AmdParams().greeting = 1  # type: ignore[misc]


def test_from_mapping_overrides_and_round_trips_through_json():
    params = AmdParams.from_mapping(
        {"greeting": 1800, "noise_margin_db": 6, "after_greeting_silence": 800.0}
    )
    assert params.greeting == 1800
    assert params.noise_margin_db == 6.0 and isinstance(params.noise_margin_db, float)
    assert params.after_greeting_silence == 800 and isinstance(params.after_greeting_silence, int)
    assert params.initial_silence == AmdParams().initial_silence
    again = AmdParams.from_mapping(json.loads(json.dumps(params.to_mapping())))
    assert again == params


def test_from_mapping_on_a_base():
    base = AmdParams(greeting=3000)
    assert AmdParams.from_mapping({"vad_mode": 3}, base=base).greeting == 3000


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"greting": 1500}, "unknown AMD parameter"),
        ({"greeting": -5}, "greeting=-5 is out of range"),
        ({"total_analysis_time": 10**9}, "total_analysis_time"),
        ({"maximum_number_of_words": 0}, "maximum_number_of_words"),
        ({"vad_mode": 7}, "vad_mode"),
        ({"greeting": "1500"}, "greeting must be an integer"),
        ({"greeting": True}, "greeting must be a number"),
        ({"greeting": 1500.5}, "greeting must be an integer"),
        ({"tone_purity": 1.5}, "tone_purity"),
        ({"greeting": 4000, "total_analysis_time": 3000}, "exceeds total_analysis_time"),
        ({"min_word_length": 900, "maximum_word_length": 500}, "exceeds maximum_word_length"),
        ({"after_greeting_silence": 900, "after_long_greeting_silence": 800}, "is shorter than"),
    ],
)
def test_absurd_values_are_rejected_with_the_key_named(mapping, message):
    with pytest.raises(AmdParamsError, match=message):
        AmdParams.from_mapping(mapping)


def test_a_non_object_is_rejected():
    with pytest.raises(AmdParamsError, match="JSON object"):
        AmdParams.from_mapping([("greeting", 1500)])  # type: ignore[arg-type]


def test_constructor_validates_too():
    with pytest.raises(AmdParamsError):
        AmdParams(after_greeting_silence=0)

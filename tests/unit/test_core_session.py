"""Session config for both shapes, compared as exact JSON."""

from typing import Any, Literal, get_args, get_origin

import pytest

from llc.core import session as s
from llc.core.dialect import SHAPES, Shape, dialect
from llc.core.openai_events import canonical_event
from llc.kit.sim.fake_openai_shapes import validate_session


def test_flat_shape_is_the_documented_beta_block_exactly() -> None:
    assert dialect("flat").session_update(s.SessionSpec(voice="cedar")) == {
        "type": "session.update",
        "session": {
            "modalities": ["text", "audio"],
            "voice": "cedar",
            "turn_detection": {
                "type": "semantic_vad",
                "eagerness": "high",
                "create_response": True,
                "interrupt_response": True,
            },
            "input_audio_format": "g711_ulaw",
            "output_audio_format": "g711_ulaw",
            "input_audio_noise_reduction": {"type": "near_field"},
        },
    }


def test_ga_shape_nests_audio_and_uses_pcmu() -> None:
    spec = s.SessionSpec(voice="marin", instructions="Be brief.", transcription_model="gpt-4o-mini-transcribe")
    assert dialect("ga").session_update(spec) == {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "turn_detection": {
                        "type": "semantic_vad",
                        "eagerness": "high",
                        "create_response": True,
                        "interrupt_response": True,
                    },
                    "transcription": {"model": "gpt-4o-mini-transcribe"},
                    "noise_reduction": {"type": "near_field"},
                },
                "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
            },
            "instructions": "Be brief.",
        },
    }


def test_flat_optional_parts_and_tools() -> None:
    tool = {"type": "function", "name": "end_call", "description": "hang up", "parameters": {"type": "object"}}
    spec = s.SessionSpec(instructions="Hi", tools=(tool,), transcription_model="whisper-1")
    session = dialect("flat").session_update(spec)["session"]
    assert session["instructions"] == "Hi"
    assert session["tools"] == [tool] and session["tool_choice"] == "auto"
    assert session["input_audio_transcription"] == {"model": "whisper-1"}
    assert "type" not in session and "audio" not in session


def test_server_vad_has_no_eagerness() -> None:
    td = s.TurnDetection(type="server_vad")
    assert "eagerness" not in td.as_dict()


def test_headers_per_shape() -> None:
    assert dialect("ga").connect_headers("k") == [("Authorization", "Bearer k")]
    assert dialect("flat").connect_headers("k") == [("Authorization", "Bearer k"), ("OpenAI-Beta", "realtime=v1")]
    assert s.connect_url("wss://api.openai.com/v1/realtime", "gpt-realtime-1.5") == (
        "wss://api.openai.com/v1/realtime?model=gpt-realtime-1.5"
    )


def test_event_names_are_canonicalised_to_ga() -> None:
    assert canonical_event("response.audio.delta") == "response.output_audio.delta"
    assert canonical_event("response.audio_transcript.done") == "response.output_audio_transcript.done"
    assert canonical_event("conversation.item.created") == "conversation.item.added"
    assert canonical_event("response.output_audio.delta") == "response.output_audio.delta"


def test_partial_updates_keep_ga_type() -> None:
    assert dialect("ga").tools_update(())["session"]["type"] == "realtime"
    assert "type" not in dialect("flat").tools_update(())["session"]
    td = s.TurnDetection(eagerness="medium")
    assert dialect("ga").turn_detection_update(td)["session"]["audio"]["input"]["turn_detection"]["eagerness"] == "medium"
    assert dialect("flat").turn_detection_update(td)["session"]["turn_detection"]["eagerness"] == "medium"


def test_text_only_priming_per_shape() -> None:
    assert dialect("ga").text_only_response()["response"] == {"output_modalities": ["text"]}
    assert dialect("flat").text_only_response()["response"] == {"modalities": ["text"]}


def test_shape_hints_name_the_setting() -> None:
    assert "OPENAI_API_SHAPE=ga" in dialect("flat").hint("beta_api_shape_disabled")
    hint = dialect("flat").hint("unknown_parameter", "session.modalities")
    assert "OPENAI_API_SHAPE=ga" in hint and "session.modalities" in hint
    assert "OPENAI_API_SHAPE=flat" in dialect("ga").hint("missing_required_parameter", "session.type")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("noise", ["near_field", "far_field", None])
def test_noise_reduction_is_sent_in_each_shape_and_the_strict_fake_accepts_it(shape: Shape, noise: Any) -> None:
    session = dialect(shape).session_update(s.SessionSpec(noise_reduction=noise))["session"]
    sent = session["input_audio_noise_reduction"] if shape == "flat" else session["audio"]["input"]["noise_reduction"]
    assert sent == ({"type": noise} if noise else None)  # null turns it off
    assert validate_session(shape, session) is None


@pytest.mark.parametrize("shape", SHAPES)
def test_the_strict_fake_refuses_a_bad_noise_reduction_type(shape: Shape) -> None:
    session = dialect(shape).session_update(s.SessionSpec())["session"]
    if shape == "flat":
        session["input_audio_noise_reduction"] = {"type": "studio"}
    else:
        session["audio"]["input"]["noise_reduction"] = {"type": "studio"}
    error = validate_session(shape, session)
    assert error is not None and error[0] == "invalid_value" and "studio" in error[1]


def test_voices_are_the_sdk_s_built_in_voices() -> None:
    from openai.types.realtime.realtime_audio_config_output import Voice
    literal = next(a for a in get_args(Voice) if get_origin(a) is Literal)
    assert set(s.VOICES) == set(get_args(literal))

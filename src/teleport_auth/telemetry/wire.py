"""The printed event, as the protobuf bytes that go on the wire.

Only the sender's background thread imports this (protobuf is the slowest
import the step has). It parses the very JSON text the log showed, with the
schema's own JSON mapping and no unknown field allowed, so the bytes sent
cannot differ from what the user read.
"""

from __future__ import annotations

from google.protobuf import json_format

from teleport_auth._proto.prehog.v1alpha import tbot_pb2


def to_message(event_json: str) -> tbot_pb2.SubmitTbotEventRequest:
    """The request ``event_json`` describes; raises json_format.ParseError if it is not one."""
    request = tbot_pb2.SubmitTbotEventRequest()
    json_format.Parse(event_json, request)
    return request


def encode(event_json: str) -> bytes:
    """The serialized SubmitTbotEventRequest for the printed event."""
    return to_message(event_json).SerializeToString()

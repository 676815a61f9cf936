"""What a mosquitto 2.0 persistence file (`mosquitto.db`, format 6) holds that no one refers to.

mosquitto 2.0.11 saves a `$SYS` message that it sent live to a subscriber (its `dest_ids` are
set) as a plain, non-retained message (persist_write.c, `persist__message_store_save`). Restored,
nothing refers to it (no retain chunk, no client message), and 2.0.11 never frees a stored message
whose reference count starts at 0 (`db__msg_store_compact` is never called): it stays in
`$SYS/broker/store/messages/count` for the broker's life, neither retained nor queued. A test that
counts what the broker holds after a restart from its database reads these from the file.
"""

from __future__ import annotations

import struct
from pathlib import Path

_MAGIC = b"\x00\xb5\x00mosquitto db"
_HEADER = len(_MAGIC) + 4 + 4  # magic, CRC (unused), format version
_VERSION = 6  # mosquitto 2.0
# chunk types (persist.h)
_MSG_STORE = 2
_CLIENT_MSG = 3
_RETAIN = 4
# struct PF_msg_store: store_id (8, host order), expiry_time (8), payloadlen (4), source_mid,
# source_id_len, source_username_len, topic_len, source_port (2 each), qos, retain (1 each)
_MSG_STORE_FIXED = struct.Struct("!8s8sIHHHHHBB")


def unreferenced_topics(path: Path) -> list[str]:
    """The topics of the stored messages in `path` that no retain chunk or client message refers
    to: what a broker restored from this file holds for nobody, for its whole life."""
    data = path.read_bytes()
    if data[: len(_MAGIC)] != _MAGIC:
        raise ValueError(f"{path} is not a mosquitto database")
    (version,) = struct.unpack_from("!I", data, len(_MAGIC) + 4)
    if version != _VERSION:
        raise ValueError(f"{path} has format {version}, not {_VERSION} (mosquitto 2.0)")
    stored: dict[bytes, str] = {}  # store id (raw bytes, as every chunk writes it) -> topic
    referenced: set[bytes] = set()
    offset = _HEADER
    while offset < len(data):
        chunk, length = struct.unpack_from("!II", data, offset)
        body = data[offset + 8 : offset + 8 + length]
        offset += 8 + length
        if chunk == _MSG_STORE:
            store_id, _, _, _, id_len, username_len, topic_len, _, _, _ = (
                _MSG_STORE_FIXED.unpack_from(body)
            )
            start = _MSG_STORE_FIXED.size + id_len + username_len
            stored[store_id] = body[start : start + topic_len].decode()
        elif chunk in (_CLIENT_MSG, _RETAIN):
            referenced.add(body[:8])  # both begin with the store id
    return [topic for store_id, topic in stored.items() if store_id not in referenced]

#!/usr/bin/env python3
"""Writes the committed seed inputs under fuzz/corpus/<target>/seed-*.

    python3 fuzz/make_seeds.py

Seeds are a handful of valid and invalid inputs, written here by hand, that show the fuzzer
the shape of each input format (see the comment at the top of each target). Files the fuzzer
adds next to them are not committed (.gitignore keeps only `seed-*`). Rerunning rewrites the
seeds and leaves the other files alone.
"""

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"

POST = {
    "type": "post",
    "id": "p-1",
    "platform": "twitter",
    "author": {"id": "a-1", "followers": 1200},
    "text": "Loving the new phone, battery lasts all day",
    "created_at": "2026-01-01T12:00:00Z",
}
POST_FULL = dict(
    POST,
    id="p-2",
    text="Caf\u00e9 \u2615 tr\u00e8s bien\n\ttabs and \"quotes\" \\ ok \U0001f600",
    created_at="2026-03-04T05:06:07.123456+02:00",
    lang="fr",
    geo={"city": "Lyon", "country": "FR"},
    product="pulse-phone",
    channel="support",
    parent_id="p-1",
    url="https://example.com/p/2",
    metrics={"likes": 3, "shares": 1, "comments": 0, "views": 99},
)
ENGAGEMENT = {
    "type": "engagement",
    "id": "e-1",
    "post_id": "p-1",
    "kind": "share",
    "at": "2026-01-01T12:00:05Z",
    "actor_followers": 50,
    "via": "s-9",
    "count": 2,
}


def js(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def with_(base: dict, **changes) -> dict:
    out = dict(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


# stream_event: mode '0' = raw `event` bytes; '1' flat XREADGROUP entry, '2' RESP3 map entry,
# '3' XAUTOCLAIM entry, each followed by a flags byte and `id\nname\nvalue\n...`.
RAW_EVENTS = {
    "post": js(POST),
    "post-all-fields": js(POST_FULL),
    "engagement": js(ENGAGEMENT),
    "engagement-minimal": js({"type": "engagement", "post_id": "p", "kind": "like", "at": "2026-01-01T00:00:00Z"}),
    "pretty-printed": json.dumps(POST, indent=2).encode(),
    "missing-text": js(with_(POST, text=None)),
    "followers-not-a-number": js(with_(POST, author={"id": "a", "followers": "many"})),
    "unknown-field": js(with_(POST, mood="happy")),
    "unknown-platform": js(with_(POST, platform="myspace")),
    "unknown-type": js(with_(POST, type="repost")),
    "empty-text": js(with_(POST, text="   ")),
    "nul-in-text": js(with_(POST, text="a\u0000b")),
    "control-in-id": js(with_(POST, id="p\u0007")),
    "count-zero": js(with_(ENGAGEMENT, count=0)),
    "bad-date": js(with_(ENGAGEMENT, at="yesterday")),
    "not-json": b"{not json",
    "not-an-object": b"[1,2,3]",
    "invalid-utf8": b'{"type":"post","text":"\xff\xfe"}',
    "empty": b"",
}

ENTRIES = {
    # mode, flags, id, [name, value, ...]
    "read-flat": (b"1", b"0", b"1767268800000-0", [b"event", js(POST)]),
    "read-flat-extra-fields": (b"1", b"0", b"1767268800000-1", [b"source", b"generator", b"event", js(ENGAGEMENT), b"trace", b"x"]),
    "read-flat-as-bytes": (b"1", b"7", b"1767268800000-2", [b"event", js(POST_FULL)]),
    "read-map": (b"2", b"0", b"1767268800000-3", [b"event", js(ENGAGEMENT), b"source", b"http"]),
    "claim": (b"3", b"0", b"1767268800000-4", [b"event", js(POST)]),
    "missing-event-field": (b"1", b"0", b"1767268800000-5", [b"payload", js(POST)]),
    "no-fields": (b"1", b"0", b"1767268800000-6", []),
    "binary-event": (b"1", b"2", b"1767268800000-7", [b"event", b"\x00\xff\xfe{"]),
    "two-event-fields": (b"1", b"0", b"1767268800000-8", [b"event", js(POST), b"event", b"{}"]),
    "dangling-name": (b"1", b"0", b"1767268800000-9", [b"event", js(POST), b"orphan"]),
    "odd-id": (b"1", b"1", b"not-an-id\xff", [b"event", js(ENGAGEMENT)]),
}

# ws_message: one text frame.
WS_MESSAGES = {
    "subscribe": {"type": "subscribe", "topics": ["posts", "metrics"]},
    "subscribe-filter": {
        "type": "subscribe",
        "topics": ["posts", "alerts", "virality"],
        "filter": {"platform": "reddit", "sentiment": "negative", "city": "Lyon", "country": "FR", "product": "pulse-phone", "channel": "support"},
    },
    "subscribe-null-filter": {"type": "subscribe", "topics": [], "filter": None},
    "unsubscribe": {"type": "unsubscribe", "topics": ["metrics"]},
    "ping": {"type": "ping"},
    "ping-extra-field": {"type": "ping", "x": 1},
    "unknown-type": {"type": "dance"},
    "type-not-a-string": {"type": 7},
    "unknown-topic": {"type": "subscribe", "topics": ["gossip"]},
    "unknown-platform": {"type": "subscribe", "topics": ["posts"], "filter": {"platform": "myspace"}},
    "bad-sentiment": {"type": "subscribe", "topics": ["posts"], "filter": {"sentiment": "meh"}},
    "empty-label": {"type": "subscribe", "topics": ["posts"], "filter": {"city": ""}},
    "long-label": {"type": "subscribe", "topics": ["posts"], "filter": {"product": "x" * 129}},
    "unknown-filter-field": {"type": "subscribe", "topics": ["posts"], "filter": {"mood": "x"}},
    "topics-not-an-array": {"type": "unsubscribe", "topics": "posts"},
    "missing-topics": {"type": "subscribe"},
}
WS_RAW = {
    "not-json": b"not json",
    "array": b"[1,2]",
    "truncated": b'{"type":"subscribe","topics":["po',
    "empty": b"",
}


def write(target: str, name: str, data: bytes) -> None:
    directory = ROOT / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"seed-{name}").write_bytes(data)


def main() -> None:
    for name, data in RAW_EVENTS.items():
        write("stream_event", f"raw-{name}", b"0" + data)
    for name, (mode, flags, entry_id, fields) in ENTRIES.items():
        write("stream_event", f"entry-{name}", mode + flags + b"\n".join([entry_id, *fields]))
    for name, message in WS_MESSAGES.items():
        write("ws_message", name, js(message))
    for name, data in WS_RAW.items():
        write("ws_message", name, data)


if __name__ == "__main__":
    main()

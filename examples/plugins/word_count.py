#!/usr/bin/env python3
"""A Troupe plugin: the `word_count` agent kind (see docs/plugins.md).

Counts the words, lines and characters of `text`, or of the file at `path`.
Speaks JSON-RPC 2.0 on stdin/stdout, one message per line; logs go to stderr.
Standard library only.
"""

import json
import sys

NAME = "word_count"
VERSION = "1.0.0"
# Files larger than this are refused rather than read into memory.
MAX_FILE_BYTES = 10 * 1024 * 1024

INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
CANNOT_READ = -32001


class Refused(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def count(text):
    return {
        "words": len(text.split()),
        "lines": len(text.splitlines()),
        "characters": len(text),
    }


def read_file(path):
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise Refused(CANNOT_READ, f"cannot read {path}: {error.strerror}")
    if len(data) > MAX_FILE_BYTES:
        raise Refused(CANNOT_READ, f"{path} is over {MAX_FILE_BYTES} bytes")
    return data.decode("utf-8", errors="replace")


def run(params):
    inputs = params.get("inputs") or {}
    text, path = inputs.get("text"), inputs.get("path")
    if (text is None) == (path is None):
        raise Refused(INVALID_PARAMS, "give exactly one of `text` or `path`")
    if path is not None:
        text = read_file(path)
    return {"outputs": count(text), "cost_usd": 0}


def handle(method, params):
    if method == "initialize":
        return {"name": NAME, "version": VERSION}
    if method == "health":
        return {"ok": True}
    if method == "run":
        return run(params)
    raise Refused(METHOD_NOT_FOUND, f"unknown method {method}")


def reply(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError as error:
            print(f"{NAME}: ignoring a line that is not JSON: {error}", file=sys.stderr)
            continue
        if "id" not in message:
            # A notification (`cancel`): every run here is quick, so there is nothing
            # to stop.
            continue
        try:
            result = handle(message.get("method"), message.get("params") or {})
            reply({"jsonrpc": "2.0", "id": message["id"], "result": result})
        except Refused as refused:
            reply(
                {
                    "jsonrpc": "2.0",
                    "id": message["id"],
                    "error": {"code": refused.code, "message": refused.message},
                }
            )


if __name__ == "__main__":
    main()

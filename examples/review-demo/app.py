"""A small file server with two flaws for `examples/review.yaml` to find and review."""

import hashlib
import os


def list_directory(path):
    # Command injection: `path` reaches the shell unquoted.
    os.system("ls -l " + path)


def fingerprint(data):
    # MD5 is broken for integrity checks.
    return hashlib.md5(data).hexdigest()

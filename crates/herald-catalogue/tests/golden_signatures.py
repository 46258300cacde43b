#!/usr/bin/env python3
"""Checks the hex HMAC-SHA256 signatures in the catalogue's golden files with
Python's own hmac, a second implementation besides the Rust tests.

Run from anywhere: python3 crates/herald-catalogue/tests/golden_signatures.py
Exits non-zero if a signature does not match, or if none was checked.
"""

import hashlib
import hmac
import pathlib
import sys

SECRET = b"golden-secret"
SIGNATURE_HEADERS = {"X-Sourcegraph-Webhook-Signature", "X-Sonar-Webhook-HMAC-SHA256"}


def check(path):
    """Returns (passed, failed) for the signature headers of one golden file."""
    lines = path.read_bytes().split(b"\n")
    if lines[0] != b"payload" or lines[2] != b"headers":
        raise SystemExit(f"{path.name}: not a golden file")
    expected = hmac.new(SECRET, lines[1], hashlib.sha256).hexdigest()
    passed = failed = 0
    for line in lines[3:]:
        name, _, value = line.decode().partition(": ")
        if name in SIGNATURE_HEADERS:
            if hmac.compare_digest(value, expected):
                passed += 1
            else:
                failed += 1
                print(f"{path.name}: {name} is {value}, Python computes {expected}")
    return passed, failed


def main():
    golden = pathlib.Path(__file__).resolve().parent / "golden"
    passed = failed = 0
    for path in sorted(golden.glob("*.txt")):
        p, f = check(path)
        passed += p
        failed += f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Decode hl7bridge's Avro bytes with fastavro and compare with the JSON event.

usage: avro_check.py SCHEMA.avsc EVENT.avro EVENT.json [...more pairs]
Exit 0 when every pair matches, 1 on a mismatch, 77 when fastavro is missing
(the caller reports a skip and says how to install it).
"""
import io
import json
import sys

try:
    import fastavro
except ImportError:
    print("fastavro is not installed: run tests/map/setup.sh", file=sys.stderr)
    sys.exit(77)


def main(argv):
    if len(argv) < 4 or (len(argv) - 2) % 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        schema = fastavro.parse_schema(json.load(f))
    failed = 0
    for avro_path, json_path in zip(argv[2::2], argv[3::2]):
        with open(avro_path, "rb") as f:
            data = f.read()
        buf = io.BytesIO(data)
        try:
            decoded = fastavro.schemaless_reader(buf, schema)
        except Exception as e:  # a decoder error is a failed check, with its file
            print(f"{avro_path}: does not decode: {e!r}", file=sys.stderr)
            failed += 1
            continue
        with open(json_path) as f:
            expected = json.load(f)
        if buf.tell() != len(data):
            print(f"{avro_path}: {len(data) - buf.tell()} trailing bytes", file=sys.stderr)
            failed += 1
        elif decoded != expected:
            print(f"{avro_path}: decoded value differs\n  got  {decoded}\n  want {expected}",
                  file=sys.stderr)
            failed += 1
        # and the other way round: fastavro's encoding must equal ours byte for byte
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, expected)
        if out.getvalue() != data:
            print(f"{avro_path}: fastavro encodes the JSON differently", file=sys.stderr)
            failed += 1
    print(f"{(len(argv) - 2) // 2} events checked with fastavro {fastavro.__version__}, "
          f"{failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""python-hl7 side of tests/bench: parse + the same ten reads as bench_hl7.c
on the same bytes (extract_field returns values already unescaped). Prints
the same line format."""
import os
import sys
import time

import hl7

# (segment, occurrence, field, repetition, component, subcomponent)
CASES = [
    ("adt_a01_300B", "adt_a01.hl7", [
        ("MSH", 1, 9, 1, 1, 1), ("MSH", 1, 9, 1, 2, 1), ("MSH", 1, 10, 1, 1, 1),
        ("PID", 1, 3, 1, 1, 1), ("PID", 1, 3, 2, 1, 1), ("PID", 1, 5, 1, 1, 1),
        ("PID", 1, 5, 1, 2, 1), ("PID", 1, 7, 1, 1, 1), ("PID", 1, 8, 1, 1, 1),
        ("PID", 1, 11, 1, 3, 1)]),
    ("rde_o11_1.5KB", "rde_o11.hl7", [
        ("MSH", 1, 10, 1, 1, 1), ("PID", 1, 3, 1, 1, 1), ("PID", 1, 5, 1, 1, 1),
        ("ORC", 1, 1, 1, 1, 1), ("ORC", 1, 2, 1, 1, 1), ("RXE", 1, 2, 1, 1, 1),
        ("RXE", 1, 2, 1, 2, 1), ("RXE", 1, 7, 1, 1, 1), ("ORC", 2, 2, 1, 1, 1),
        ("RXE", 2, 2, 1, 1, 1)]),
    ("oru_r01_50KB", "oru_r01.hl7", [
        ("MSH", 1, 10, 1, 1, 1), ("PID", 1, 3, 1, 1, 1), ("PID", 1, 5, 1, 1, 1),
        ("OBR", 1, 4, 1, 1, 1), ("OBX", 1, 5, 1, 1, 1), ("OBX", 100, 5, 1, 1, 1),
        ("OBX", 250, 3, 1, 2, 1), ("OBX", 400, 5, 1, 1, 1), ("OBX", 490, 5, 1, 1, 1),
        ("NTE", 1, 3, 1, 1, 1)]),
]


def work(text, paths):
    m = hl7.parse(text)
    n = 0
    for seg, occ, f, r, c, s in paths:
        n += len(m.extract_field(seg, occ, f, r, c, s))
    return n


def main():
    src = os.environ.get("HB_SRCDIR") or os.path.join(os.path.dirname(__file__), "..", "..", "..")
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    for name, fname, paths in CASES:
        raw = open(os.path.join(src, "tests/fixtures/hl7/bench", fname), "rb").read()
        for p in paths:  # every read must find something
            m = hl7.parse(raw.decode("utf-8"))
            if not m.extract_field(*p):
                raise SystemExit("%s: %s finds nothing" % (name, p))
        iters = 0
        t0 = time.perf_counter()
        while True:
            for _ in range(8):
                work(raw.decode("utf-8"), paths)
            iters += 8
            t1 = time.perf_counter()
            if t1 - t0 >= seconds:
                break
        s = t1 - t0
        print("impl=python-hl7 msg=%s bytes=%d msgs_per_s=%.0f mb_per_s=%.2f iters=%d"
              % (name, len(raw), iters / s, iters * len(raw) / s / 1e6, iters))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Check that a PNG screenshot shows the colours charts are drawn in.

usage: check_screenshot.py FILE.png '#RRGGBB:MIN_PIXELS' ...

Reads the PNG with the standard library only (zlib), counts the pixels within a small
distance of each colour, and exits 1 when one has fewer than its minimum.
"""
import struct
import sys
import zlib


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or interlace or colour not in (2, 6):
                raise SystemExit(f"{path}: only 8-bit RGB/RGBA non-interlaced PNGs are read")
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        f, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return width, height, channels, rows


def main():
    path, wants = sys.argv[1], sys.argv[2:]
    width, height, channels, rows = read_png(path)
    targets = []
    for w in wants:
        colour, minimum = w.split(":")
        rgb = tuple(int(colour.lstrip("#")[k : k + 2], 16) for k in (0, 2, 4))
        targets.append((colour, rgb, int(minimum), [0]))
    for line in rows:
        for x in range(0, width * channels, channels):
            px = line[x], line[x + 1], line[x + 2]
            for _, rgb, _, count in targets:
                if abs(px[0] - rgb[0]) + abs(px[1] - rgb[1]) + abs(px[2] - rgb[2]) <= 24:
                    count[0] += 1
    failed = False
    for colour, _, minimum, count in targets:
        ok = count[0] >= minimum
        failed |= not ok
        print(f"{path}: {colour} {count[0]} pixels (at least {minimum}) {'ok' if ok else 'MISSING'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Seed inputs for the `connection` fuzz target (see fuzz_targets/connection.rs for the format).

Run from anywhere: writes target/fuzz/seeds/connection/*. Each seed is a mode byte (0: with the
login prelude, 4: with it and digests) and records [ctl][48-byte BHS][u16 LE length][data], ctl 3 = number and frame.
"""
import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent / "connection"


def bhs(op, flags, itt=0, f20=0, f32=b"", lun=0, imm=False):
    b = bytearray(48)
    b[0] = op | (0x40 if imm else 0)
    b[1] = flags
    b[8:16] = struct.pack(">Q", lun << 48)
    b[16:20] = struct.pack(">I", itt)
    b[20:24] = struct.pack(">I", f20)
    b[32:32 + len(f32)] = f32
    return b


def rec(b, data=b"", ctl=3):
    return bytes([ctl]) + bytes(b) + struct.pack("<H", len(data)) + data


def cmd(itt, cdb, edtl=0, read=False, write=False, data=b"", lun=0, imm=False, final=True):
    flags = (0x80 if final else 0) | (0x40 if read else 0) | (0x20 if write else 0) | 1
    return rec(bhs(0x01, flags, itt, edtl, cdb, lun, imm), data)


def data_out(itt, offset, data, ttt=0xFFFFFFFF, data_sn=0, final=True, lun=0):
    b = bhs(0x05, 0x80 if final else 0, itt, ttt, b"", lun)
    b[36:40] = struct.pack(">I", data_sn)
    b[40:44] = struct.pack(">I", offset)
    return rec(b, data, ctl=2)


def nop(itt, data=b""):
    return rec(bhs(0x00, 0x80, itt, 0xFFFFFFFF, imm=True), data)


def text(itt, data):
    return rec(bhs(0x04, 0x80, itt, 0xFFFFFFFF, imm=True), data)


def tmf(itt, function, ref=0, lun=0):
    return rec(bhs(0x02, 0x80 | function, itt, ref, b"", lun, imm=True))


def logout(itt):
    return rec(bhs(0x06, 0x80, itt, 0, imm=True))


def be32(x):
    return struct.pack(">I", x)


SEEDS = {
    "read": [
        cmd(1, bytes([0x12, 0, 0, 0, 96, 0]), 96, read=True),
        cmd(2, bytes([0x25] + [0] * 9), 8, read=True),
        cmd(3, bytes([0x28, 0, 0, 0, 0, 8, 0, 0, 8, 0]), 4096, read=True),
        cmd(4, bytes(6)),
        logout(5),
    ],
    "write_immediate": [
        cmd(1, bytes([0x2A, 0, 0, 0, 0, 16, 0, 0, 1, 0]), 512, write=True, data=b"\xa5" * 512),
        cmd(2, bytes([0x28, 0, 0, 0, 0, 16, 0, 0, 1, 0]), 512, read=True),
    ],
    "write_unsolicited": [
        cmd(1, bytes([0x2A, 0, 0, 0, 0, 32, 0, 0, 16, 0]), 8192, write=True, data=b"\x11" * 4096, final=False),
        data_out(1, 4096, b"\x22" * 4096),
        cmd(2, bytes([0x35] + [0] * 9)),
    ],
    "write_r2t": [
        cmd(1, bytes([0x8A, 0]) + struct.pack(">QI", 64, 192) + bytes(2), 98304, write=True,
            data=b"\x33" * 32768, final=False),
        data_out(1, 32768, b"\x44" * 32768),
        data_out(1, 65536, b"\x55" * 32768, ttt=1),
    ],
    "misc": [
        nop(1, b"ping"),
        text(2, b"SendTargets=All\x00"),
        cmd(3, bytes([0xA0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]), 4096, read=True),
        cmd(4, bytes([0x12, 1, 0x83, 0, 255, 0]), 255, read=True, lun=1),
        cmd(5, bytes([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0]), 512, write=True, data=b"\x00" * 512, lun=1),
        tmf(6, 1, ref=5),
        tmf(7, 5),
        logout(8),
    ],
    "unmap_and_same": [
        cmd(1, bytes([0x41, 0x08, 0, 0, 0, 0, 0, 0, 8, 0]), 512, write=True, data=b"\x00" * 512),
        cmd(2, bytes([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0]), 24, write=True,
            data=struct.pack(">HH4x", 22, 16) + struct.pack(">QI4x", 0, 8)),
        cmd(3, bytes([0x89, 0] + [0] * 8 + [0, 0, 0, 1, 0, 0]), 1024, write=True, data=b"\x01" * 1024),
    ],
}

OUT.mkdir(exist_ok=True)
for name, records in SEEDS.items():
    (OUT / name).write_bytes(b"\x00" + b"".join(records))
# The same with CRC32C header and data digests (mode bit 2).
for name in ("read", "write_unsolicited", "misc"):
    (OUT / f"{name}_digests").write_bytes(b"\x04" + b"".join(SEEDS[name]))
# No login prelude: a whole login in records, and raw garbage.
(OUT / "raw_login_phase").write_bytes(b"\x03" + bytes(48))

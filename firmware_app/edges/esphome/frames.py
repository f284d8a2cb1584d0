"""The ESPHome native API's framing, without any I/O: bytes in, ``(type, payload)`` out.

Two framings share one port, told apart by the first byte of every frame:

- plaintext: ``0x00``, varint payload length, varint message type, payload;
- Noise (``Noise_NNpsk0_25519_ChaChaPoly_SHA256``): ``0x01``, 16-bit big-endian length,
  then the frame. The client opens with an empty hello frame and its handshake
  (``0x00`` + the Noise message); the server answers with its hello (``0x01``, name, NUL,
  MAC, NUL) and its handshake (``0x00`` + the Noise message), or ``0x01`` + a reason when
  the key does not match. Then each frame is encrypted: 16-bit type, 16-bit length,
  payload. The prologue is ``NoiseAPIInit`` followed by the client's hello frame
  (length and content), as ESPHome computes it.

Every input can be hostile: a frame is refused (`FrameError`, the connection is dropped)
before its payload is buffered when its announced length is over ``MAX_FRAME``, and the
buffer never holds more than one frame.
"""

from __future__ import annotations

from typing import Protocol

from firmware_app.core.errors import TTBT5Error

MAX_FRAME = 64 * 1024
"""The largest frame accepted (Noise frames cannot be larger; Home Assistant's messages
are a few kilobytes at most)."""
NOISE_PROTOCOL = b"Noise_NNpsk0_25519_ChaChaPoly_SHA256"
PROLOGUE = b"NoiseAPIInit"
MAC_FAILURE = b"Handshake MAC failure"

Packet = tuple[int, bytes]


class FrameError(TTBT5Error, ValueError):
    """The peer sent something that is not the API's framing: drop the connection."""


class Framing(Protocol):
    """One connection's framing: what arrived → packets; packets → bytes to send."""

    def feed(self, data: bytes) -> list[Packet]:
        """Packets completed by ``data``; raises FrameError on anything malformed."""
        ...

    def encode(self, packets: list[Packet]) -> bytes: ...

    @property
    def ready(self) -> bool:
        """The handshake (if any) is over: messages can flow."""
        ...

    def take_output(self) -> bytes:
        """Bytes the framing itself must send (Noise handshake replies, refusals)."""
        ...


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(buf: bytearray | bytes, pos: int) -> tuple[int, int] | None:
    """(value, next position), or None when the buffer ends first. At most 5 bytes (32
    bits): a longer varint is garbage."""
    value = shift = 0
    for i in range(pos, min(len(buf), pos + 5)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    if len(buf) - pos >= 5:
        raise FrameError("varint longer than 32 bits")
    return None


class PlainFraming:
    """Plaintext frames; with ``refuse`` (a key is configured) the first byte of a
    plaintext client is answered with a Noise-framed refusal, which aioesphomeapi reports
    as "requires encryption", and the connection is dropped."""

    def __init__(self, refuse: bool = False) -> None:
        self._buf = bytearray()
        self._refuse = refuse
        self._out = b""

    @property
    def ready(self) -> bool:
        return True

    def take_output(self) -> bytes:
        out, self._out = self._out, b""
        return out

    def feed(self, data: bytes) -> list[Packet]:
        self._buf += data
        packets: list[Packet] = []
        while self._buf:
            if self._buf[0] != 0x00:
                raise FrameError(f"bad preamble 0x{self._buf[0]:02x}")
            if self._refuse:
                self._out = noise_frame(b"\x01Bad indicator byte")
                raise FrameError("plaintext client refused: encryption is required")
            length = read_varint(self._buf, 1)
            if length is None:
                break
            size, pos = length
            if size > MAX_FRAME:
                raise FrameError(f"frame of {size} bytes refused (limit {MAX_FRAME})")
            kind = read_varint(self._buf, pos)
            if kind is None:
                break
            type_, pos = kind
            if len(self._buf) < pos + size:
                break
            packets.append((type_, bytes(self._buf[pos : pos + size])))
            del self._buf[: pos + size]
        return packets

    def encode(self, packets: list[Packet]) -> bytes:
        return b"".join(
            b"\x00" + varint(len(data)) + varint(type_) + data for type_, data in packets
        )


def noise_frame(payload: bytes) -> bytes:
    return b"\x01" + len(payload).to_bytes(2, "big") + payload


class NoiseFraming:
    """The responder's side of ESPHome's Noise handshake, then encrypted frames."""

    def __init__(self, psk: bytes, name: str, mac: str) -> None:
        from noise.connection import NoiseConnection

        self._buf = bytearray()
        self._out = bytearray()
        self._hello = f"\x01{name}\x00{mac}\x00".encode()
        self._psk = psk
        self._noise = NoiseConnection.from_name(NOISE_PROTOCOL)
        self._stage = "hello"

    @property
    def ready(self) -> bool:
        return self._stage == "ready"

    def take_output(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def feed(self, data: bytes) -> list[Packet]:
        self._buf += data
        packets: list[Packet] = []
        while len(self._buf) >= 3:
            if self._buf[0] != 0x01:
                if self._buf[0] == 0x00 and self._stage == "hello":
                    self._out += noise_frame(b"\x01Bad indicator byte")
                    raise FrameError("plaintext client refused: encryption is required")
                raise FrameError(f"bad preamble 0x{self._buf[0]:02x}")
            size = int.from_bytes(self._buf[1:3], "big")
            if len(self._buf) < 3 + size:
                break
            frame = bytes(self._buf[3 : 3 + size])
            del self._buf[: 3 + size]
            packet = self._frame(frame)
            if packet is not None:
                packets.append(packet)
        return packets

    def _frame(self, frame: bytes) -> Packet | None:
        if self._stage == "hello":
            self._start(frame)
            return None
        if self._stage == "handshake":
            self._handshake(frame)
            return None
        try:
            plain = self._noise.decrypt(frame)
        except Exception as exc:  # the cipher's own error types: a forged or broken frame
            raise FrameError(f"frame failed to decrypt: {type(exc).__name__}") from None
        if len(plain) < 4:
            raise FrameError("decrypted frame too short")
        return int.from_bytes(plain[0:2], "big"), bytes(plain[4:])

    def _start(self, hello: bytes) -> None:
        """The client's hello: it fixes the prologue; the server's hello goes back."""
        noise = self._noise
        noise.set_as_responder()
        noise.set_psks(self._psk)
        noise.set_prologue(PROLOGUE + len(hello).to_bytes(2, "big") + hello)
        noise.start_handshake()
        self._out += noise_frame(self._hello)
        self._stage = "handshake"

    def _handshake(self, frame: bytes) -> None:
        if not frame or frame[0] != 0x00:
            raise FrameError("bad handshake frame")
        try:
            self._noise.read_message(frame[1:])
        except Exception:  # a wrong key shows here as a MAC failure
            self._out += noise_frame(b"\x01" + MAC_FAILURE)
            raise FrameError("handshake failed: the client's key does not match") from None
        self._out += noise_frame(b"\x00" + self._noise.write_message())
        self._stage = "ready"

    def encode(self, packets: list[Packet]) -> bytes:
        out = bytearray()
        for type_, data in packets:
            if len(data) > MAX_FRAME - 64:
                raise FrameError(f"message of {len(data)} bytes too large to send")
            head = type_.to_bytes(2, "big") + len(data).to_bytes(2, "big")
            out += noise_frame(self._noise.encrypt(head + data))
        return bytes(out)

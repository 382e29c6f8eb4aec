"""The eSpeak NG engine, spoken to in a process of its own (used by `vasa_lib.world.speech`).

eSpeak carries a little state from one utterance to the next (the phase of its pitch "flutter",
an echo buffer), so the same text spoken twice in one process may come out a pitch period apart.
Each utterance is therefore spoken in a fresh fork of an engine that never speaks itself: every
utterance starts from the state right after initialisation, and the same text gives the same
samples whatever was spoken before.

Forking is only safe from a process with a single thread. A fork copies the locks that other
threads hold at that instant (a Gradio server's, a Jupyter kernel's, torch's pools) and the child
can wait on them forever. So the engine lives in a server process of its own, started on first use
as `python -m vasa_lib.world.espeak`: it has one thread, forks a child per utterance, and answers
over its stdin and stdout. A server that stops is restarted; one that does not answer within
`ANSWER_SECONDS` is killed and the call fails with a message. Where the operating system cannot
fork (Windows), the engine runs in-process (repeatable to ~10 ms).

Variants with breath noise ("Alicia", "f2", "f3", "f5") draw it from eSpeak's own random
generator, which `espeak_Initialize` seeds with the clock: left so, one clip's audio would differ
from one process to the next. Every utterance first reseeds it with `espeak_ng_SetRandSeed(RAND_SEED)`.

Every message, on every pipe, is a frame: an 8-byte length and a JSON header, then an 8-byte
length and int16 audio. eSpeak NG is GPL-3.0 software; we only load the shared library that the
`espeakng-loader` wheel ships.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RAND_SEED = 0             # eSpeak's noise generator is reseeded with this before every utterance
ANSWER_SECONDS = 120.0    # the longest text (speech.MAX_TEXT_CHARS) takes a few seconds

# ----------------------------------------------------------------------------------------------
# The espeak-ng C API (speak_lib.h), as much of it as we use.

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),   # milliseconds
        ("sample", ctypes.c_int),           # sample index in the native-rate audio
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))

Events = list[tuple[int, str]]      # (native sample, raw IPA name) of each phoneme event

# ----------------------------------------------------------------------------------------------
# Frames


def _frame(header: dict, audio: np.ndarray | None = None) -> bytes:
    body = json.dumps(header).encode()
    samples = b"" if audio is None else audio.astype("<i2").tobytes()
    return len(body).to_bytes(8, "little") + body + len(samples).to_bytes(8, "little") + samples


def _read_exactly(read: Callable[[int], bytes], size: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = read(size)
        if not chunk:
            raise EOFError("the pipe closed mid-message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _unframe(read: Callable[[int], bytes]) -> tuple[dict, np.ndarray]:
    """Read one frame with `read(n)` (at most n bytes, b"" at the end): (header, int16 audio)."""
    header = json.loads(_read_exactly(read, int.from_bytes(_read_exactly(read, 8), "little")))
    samples = _read_exactly(read, int.from_bytes(_read_exactly(read, 8), "little"))
    return header, np.frombuffer(samples, dtype="<i2").copy()


def _answer(header: dict, audio: np.ndarray) -> tuple[np.ndarray, Events]:
    """A reply frame's content -> (audio, events), or the error it carries, raised here."""
    if "error" in header:
        raise (ValueError if header["kind"] == "ValueError" else RuntimeError)(header["error"])
    return audio, [(int(sample), str(name)) for sample, name in header["events"]]


# ----------------------------------------------------------------------------------------------
# The engine


class _Engine:
    """The loaded library, its native sample rate, the known variants and the callback buffers."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        data = str(espeakng_loader.get_data_path()).encode()
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA
        self.native_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, options)
        if self.native_rate <= 0:
            raise RuntimeError("libespeak-ng failed to initialise")
        self.lib = lib
        self.variants = self._variant_names()
        self.chunks: list[np.ndarray] = []
        self.events: Events = []
        self.callback = _SynthCallback(self._collect)    # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self.callback)

    def _variant_names(self) -> set[str]:
        """File names of espeak's voice variants ("m3", "f2", "Annie", ...)."""
        spec = _Voice(languages=b"variant")
        listed = self.lib.espeak_ListVoices(ctypes.byref(spec))
        names, i = set(), 0
        while listed[i]:
            names.add(Path(listed[i].contents.identifier.decode()).name)
            i += 1
        return names

    def _collect(self, wav, n_samples: int, events) -> int:
        if n_samples > 0 and wav:
            self.chunks.append(np.ctypeslib.as_array(wav, (n_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_PHONEME:
                name = events[i].id.string.decode("utf-8", errors="ignore")
                self.events.append((events[i].sample, name))
            i += 1
        return 0   # 0 = continue synthesis

    def speak(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> tuple[np.ndarray, Events]:
        """Speak here, in this process: (N,) int16 audio at `native_rate` and the phoneme events."""
        base, _, variant = voice.partition("+")
        if variant and variant not in self.variants:
            raise ValueError(f"unknown voice variant {variant!r} in voice {voice!r}; "
                             f"known variants include {sorted(self.variants)[:12]}")
        if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ValueError(f"unknown voice {base!r} (espeak-ng has no voice or language of that name)")
        for param, value in [(_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range)]:
            self.lib.espeak_SetParameter(param, int(value), 0)
        self.chunks, self.events = [], []
        self.lib.espeak_ng_SetRandSeed(RAND_SEED)
        data = text.encode("utf-8")
        if self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None) != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed for {text!r}")
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        return audio, self.events

    def reply_forked(self, request: dict) -> bytes:
        """Speak `request` (the keyword arguments of `speak`) in a forked child: the reply frame.

        Call only from a process with one thread (the server).
        """
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: speak, send the reply (or the error) to the parent, exit
            try:
                os.close(read_fd)
                try:
                    audio, events = self.speak(**request)
                    reply = _frame({"events": events}, audio)
                except (ValueError, RuntimeError) as error:
                    reply = _frame({"error": str(error), "kind": type(error).__name__})
                with os.fdopen(write_fd, "wb") as pipe:
                    pipe.write(reply)
            finally:
                os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            reply = pipe.read()
        os.waitpid(pid, 0)
        return reply or _frame({"error": f"eSpeak crashed speaking {request['text']!r}", "kind": "RuntimeError"})


def serve() -> None:
    """The server's loop: announce the native rate, then answer request frames until stdin closes.
    Ctrl-C (SIGINT, sent to the whole process group by a terminal or a Jupyter kernel's shutdown)
    is left to the client, whose exit closes stdin."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    engine = _Engine()
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    replies.write(_frame({"native_rate": engine.native_rate}))
    replies.flush()
    while True:
        try:
            request, _ = _unframe(requests.read)
        except EOFError:
            return
        replies.write(engine.reply_forked(request))
        replies.flush()


# ----------------------------------------------------------------------------------------------
# The client


class _Server:
    """The engine's server process, seen from this process (started on first use, restarted if it stops)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.native_rate = 0

    def _start(self) -> subprocess.Popen:
        package_root = str(Path(__file__).resolve().parents[2])      # so the server imports this module
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
               **{name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}  # one thread
        process = subprocess.Popen([sys.executable, "-m", "vasa_lib.world.espeak"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, bufsize=0, env=env)
        self.process = process
        self.native_rate = int(self._receive("starting")[0]["native_rate"])
        return process

    def _stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def _receive(self, doing: str) -> tuple[dict, np.ndarray]:
        fd, deadline = self.process.stdout.fileno(), time.monotonic() + ANSWER_SECONDS

        def read(size: int) -> bytes:
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError(f"the eSpeak NG server did not answer within {ANSWER_SECONDS:.0f} s {doing}")
            return os.read(fd, size)

        return _unframe(read)

    def speak(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> tuple[np.ndarray, Events]:
        request = _frame({"text": text, "voice": voice, "rate": int(rate), "pitch": int(pitch),
                          "pitch_range": int(pitch_range)})
        for _ in range(2):                       # a server that stopped is restarted once
            try:
                process = self.process if self.process and self.process.poll() is None else self._start()
                process.stdin.write(request)
                return _answer(*self._receive(f"speaking {text[:40]!r}"))
            except (EOFError, BrokenPipeError) as error:
                self._stop()
                stopped = error
            except TimeoutError as error:
                self._stop()
                raise RuntimeError(str(error)) from error
        raise RuntimeError(f"the eSpeak NG server stopped twice ({stopped}); see the messages above") from stopped


_LOCK = threading.Lock()
_SPEAKER: _Server | _Engine | None = None


def speak(text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> tuple[np.ndarray, Events, int]:
    """Speak `text` with an eSpeak NG voice ("en-us+m3") from the engine's freshly initialised state.

    rate: words per minute; pitch, pitch_range: 0-100 (checked by the caller).
    Returns (N,) int16 audio, the phoneme events (native sample, raw IPA name) and the native
    sample rate. Raises ValueError for an unknown voice or variant, RuntimeError if eSpeak fails.
    Thread-safe: calls are serialised.
    """
    global _SPEAKER
    with _LOCK:
        if _SPEAKER is None:
            _SPEAKER = _Server() if hasattr(os, "fork") else _Engine()
        audio, events = _SPEAKER.speak(text, voice, rate, pitch, pitch_range)
        return audio, events, _SPEAKER.native_rate


if __name__ == "__main__":
    serve()

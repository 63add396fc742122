"""espeak-ng through ctypes, with the library and data shipped by the PyPI package ``espeakng-loader``.

Two uses: synthesis with per-phoneme timing events (the embedded corpus and its reference
alignments) and text -> phonemes (G2P). espeak-ng keeps global state and is not thread-safe, so
every call takes one process-wide lock; processes each load their own copy.
"""
from __future__ import annotations

import _ctypes
import ctypes
import os
import shutil
import tempfile
import threading
import zlib
from ctypes import POINTER, c_char, c_char_p, c_int, c_short, c_uint, c_void_p
from dataclasses import dataclass

import numpy as np

# espeak_ng event types (speak_lib.h)
_EV_LIST_TERMINATED, _EV_WORD, _EV_SENTENCE, _EV_MARK, _EV_PLAY, _EV_END, _EV_MSG_TERMINATED, _EV_PHONEME = range(8)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS, _INIT_PHONEME_IPA, _INIT_DONT_EXIT = 0x0001, 0x0002, 0x8000
_POS_CHARACTER, _CHARS_UTF8 = 1, 1
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}
_ESPEAK_SAMPLE_RATE = 22_050


class _Id(ctypes.Union):
    _fields_ = [("number", c_int), ("name", c_char_p), ("string", c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", c_int), ("unique_identifier", c_uint), ("text_position", c_int), ("length", c_int),
        ("audio_position", c_int), ("sample", c_int), ("user_data", c_void_p), ("id", _Id),
    ]


_Callback = ctypes.CFUNCTYPE(c_int, POINTER(c_short), c_int, POINTER(_Event))


class EspeakError(RuntimeError):
    pass


@dataclass(frozen=True)
class PhoneEvent:
    """One phoneme as espeak spoke it: IPA symbol and start time (seconds) in the returned audio."""

    phone: str
    start: float


@dataclass(frozen=True)
class WordEvent:
    start: float
    text_position: int  # 0-based character offset into the input text
    length: int


@dataclass
class Synthesis:
    audio: np.ndarray  # [T] float32 in [-1, 1] at ``sample_rate``
    sample_rate: int
    phones: list[PhoneEvent]
    words: list[WordEvent]


@dataclass(frozen=True)
class Voice:
    """A speaker as espeak parameters. ``name`` is e.g. 'en-us+f3' (language voice + variant)."""

    name: str
    rate: int = 160  # words per minute (80..450)
    pitch: int = 50  # 0..100
    pitch_range: int = 50  # 0..100
    wordgap: int = 0  # extra pause between words, units of 10 ms


class _Espeak:
    """Process-wide handle. Initialised once; every public call holds ``_lock``."""

    def __init__(self, private: bool = False) -> None:
        import espeakng_loader

        lib_path = espeakng_loader.get_library_path()
        if private:
            # A private copy of the shared object has its own static state (dlopen on a new path loads anew).
            with tempfile.TemporaryDirectory() as d:
                copy = os.path.join(d, f"libespeak-ng-{os.getpid()}-{id(self)}.so")
                shutil.copyfile(lib_path, copy)
                self._lib = ctypes.CDLL(copy)
        else:
            self._lib = ctypes.CDLL(lib_path)
        data = espeakng_loader.get_data_path()
        parent = str(__import__("pathlib").Path(data).parent).encode()
        self._lib.espeak_TextToPhonemes.restype = c_char_p
        self._lib.espeak_TextToPhonemes.argtypes = [POINTER(c_void_p), c_int, c_int]
        sr = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, parent, _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT)
        if sr <= 0:
            raise EspeakError(f"espeak_Initialize failed (data path {data})")
        self.sample_rate = sr
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, bytes]] = []
        self._cb = _Callback(self._collect)  # keep a reference: ctypes callbacks must outlive their use
        self._lib.espeak_SetSynthCallback(self._cb)
        self._voice: str | None = None

    def _collect(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EV_LIST_TERMINATED:
            ev = events[i]
            ident = bytes(ev.id.string).split(b"\0")[0] if ev.type == _EV_PHONEME else b""
            self._events.append((ev.type, ev.audio_position, ev.text_position, ev.length, ident))
            i += 1
        return 0

    def close(self) -> None:
        self._lib.espeak_Terminate()
        _ctypes.dlclose(self._lib._handle)

    def set_voice(self, name: str) -> None:
        if name != self._voice:
            if self._lib.espeak_SetVoiceByName(name.encode()) != 0:
                raise EspeakError(f"espeak-ng voice {name!r} does not exist (try e.g. 'en-us', 'en-gb+f3')")
            self._voice = name

    def synth(self, text: str, voice: Voice) -> Synthesis:
        self.set_voice(voice.name)
        for key in ("rate", "pitch", "wordgap"):
            self._lib.espeak_SetParameter(_PARAM[key], int(getattr(voice, key)), 0)
        self._lib.espeak_SetParameter(_PARAM["range"], int(voice.pitch_range), 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        rc = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if rc != 0:
            raise EspeakError(f"espeak_Synth failed with code {rc} for text {text[:40]!r}")
        self._lib.espeak_Synchronize()
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        phones, words = [], []
        for typ, pos_ms, tpos, length, ident in self._events:
            if typ == _EV_PHONEME and ident:
                phones.append(PhoneEvent(ident.decode("utf-8", "replace"), pos_ms / 1000.0))
            elif typ == _EV_WORD:
                words.append(WordEvent(pos_ms / 1000.0, tpos - 1, length))
        return Synthesis(pcm.astype(np.float32) / 32768.0, self.sample_rate, phones, words)

    def text_to_phonemes(self, text: str, voice: str) -> list[list[str]]:
        """Text -> clauses -> IPA phones separated by espeak (words separated by spaces)."""
        self.set_voice(voice)
        buf = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
        ptr = c_void_p(ctypes.addressof(buf))
        # phonememode: bit 1 = IPA; bits 8..23 = separator char between phonemes ('_').
        mode = 0x02 | (ord("_") << 8)
        clauses = []
        while ptr.value:
            out = self._lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, mode)
            if out:
                clauses.append(out.decode("utf-8", "replace"))
        return [c.split() for c in clauses]


_lock = threading.Lock()
_instance: _Espeak | None = None


def _engine() -> _Espeak:
    global _instance
    if _instance is None:
        _instance = _Espeak()
    return _instance


def synthesize(text: str, voice: Voice, isolated: bool = True) -> Synthesis:
    """Speak ``text`` with ``voice``; audio at espeak's native 22.05 kHz plus phone/word timing events.

    espeak-ng keeps static state across calls that re-initialising does not clear (pitch flutter runs on a
    counter, so the same text comes out slightly different the second time). ``isolated=True`` speaks with a
    freshly loaded private copy of the library (~2 ms), making the output a pure function of (text, voice).
    """
    with _lock:
        if not isolated:
            return _engine().synth(text, voice)
        engine = _Espeak(private=True)
        # Noise (breath, aspiration) comes from libc rand() and from espeak-ng's own generator, which it seeds
        # from the clock at start-up: seed both from the input so noise is reproducible too.
        seed = zlib.crc32(f"{voice}|{text}".encode())
        ctypes.CDLL(None).srand(ctypes.c_uint(seed))
        if hasattr(engine._lib, "espeak_ng_SetRandSeed"):
            engine._lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
        try:
            return engine.synth(text, voice)
        finally:
            engine.close()


def phonemize_words(text: str, voice: str = "en-us") -> list[str]:
    """Text -> one string per word, phones separated by '_' (IPA, stress marks kept), across clauses."""
    with _lock:
        clauses = _engine().text_to_phonemes(text, voice)
    return [w for clause in clauses for w in clause]

"""A camera's response: the curve from a frame's code values to linear light, and its inverse.

A :class:`Response` holds the *inverse* response (code value in [0, 1] -> linear signal in [0, 1]) as
a per-channel lookup table sampled at evenly spaced codes; it is monotone, starts at 0 and ends at 1.
Named responses (``gamma:2.2``, ``srgb``, ``linear``) are exact formulas; estimated or loaded ones
interpolate their table. The forward curve (:meth:`Response.encode`) renders linear light as a camera
would, for synthesis and for re-exposing a frame.

:data:`CURVES` is a family of realistic camera tone curves (sRGB, an S-shaped filmic contrast curve,
a log encoding with a highlight shoulder, gamma 2.2) that the data synthesis draws from.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import InputError

TABLE_SIZE = 4096
FILE_FORMAT = "diffhdr-camera-response"
FILE_VERSION = 1
NAMED = ("linear", "srgb", "gamma:G", "auto", "FILE.json")


def _srgb_decode(code: np.ndarray) -> np.ndarray:
    code = np.asarray(code, dtype=np.float32)
    return np.where(code <= 0.04045, code / np.float32(12.92), ((code + np.float32(0.055)) / np.float32(1.055)) ** np.float32(2.4))


def _srgb_encode(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * np.float32(12.92),
                    np.float32(1.055) * linear ** np.float32(1 / 2.4) - np.float32(0.055))


def _filmic_encode(linear: np.ndarray, contrast: float = 1.6, pivot: float = 0.18) -> np.ndarray:
    """sRGB followed by an S-shaped contrast curve around the sRGB code of ``pivot`` (a camera's 'standard' look)."""
    code = _srgb_encode(linear).astype(np.float64)
    middle = float(_srgb_encode(np.float32(pivot)))
    # A smooth S: a power curve mirrored about the pivot, normalised to fix 0, pivot and 1.
    low = middle * (np.clip(code, 0, middle) / middle) ** contrast
    high = 1.0 - (1.0 - middle) * ((1.0 - np.clip(code, middle, 1.0)) / (1.0 - middle)) ** contrast
    return np.where(code < middle, low, high).astype(np.float32)


def _log_shoulder_encode(linear: np.ndarray, knee: float = 0.6) -> np.ndarray:
    """A log encoding (as video/'flat' profiles use) with a soft highlight shoulder above ``knee``."""
    linear = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    code = np.log2(1.0 + 64.0 * linear) / np.log2(65.0)
    shoulder = knee + (1.0 - knee) * np.tanh((code - knee) / (1.0 - knee) * 1.3) / np.tanh(1.3)
    return np.where(code > knee, shoulder, code).astype(np.float32)


#: Forward camera curves (linear in [0, 1] -> code in [0, 1]) for realistic synthesis.
CURVES = {
    "gamma2.2": lambda linear: np.clip(np.asarray(linear, dtype=np.float32), 0, 1) ** np.float32(1 / 2.2),
    "srgb": _srgb_encode,
    "filmic": _filmic_encode,
    "log_shoulder": _log_shoulder_encode,
}


def _table_from_forward(encode, size: int = TABLE_SIZE) -> np.ndarray:
    """Invert a monotone forward curve onto evenly spaced codes: (size,) float32 linear values."""
    linear = np.concatenate([[0.0], np.geomspace(1e-7, 1.0, 20000)])
    codes = np.asarray(encode(linear.astype(np.float32)), dtype=np.float64)
    codes = np.maximum.accumulate(codes)
    table = np.interp(np.linspace(0.0, 1.0, size), codes, linear)
    return table.astype(np.float32)


class Response:
    """A camera's inverse response, per channel.

    Args:
        name: what it is, as ``--response`` takes it (``"gamma:2.2"``, ``"srgb"``, ``"linear"``) or a
            description (``"auto"``, ``"camera.json"``).
        table: (K, 3) or (K,) inverse response at codes ``linspace(0, 1, K)``; ``None`` for the exact
            formula of a named response.
        gamma: for ``gamma:G`` responses, the exponent (``linear = code**gamma``).
    """

    def __init__(self, name: str, table: np.ndarray | None = None, gamma: float | None = None):
        self.name, self.gamma = name, gamma
        if table is not None:
            table = np.asarray(table, dtype=np.float32)
            if table.ndim == 1:
                table = np.repeat(table[:, None], 3, axis=1)
            check_table(table, name)
        self._table = table

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def from_gamma(cls, gamma: float = 2.2) -> Response:
        if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma > 0):
            raise InputError(f"gamma {gamma!r}: must be a positive number, e.g. gamma:2.2.")
        return cls(f"gamma:{float(gamma):g}", gamma=float(gamma))

    @classmethod
    def srgb(cls) -> Response:
        return cls("srgb")

    @classmethod
    def linear(cls) -> Response:
        return cls("linear", gamma=1.0)

    @classmethod
    def from_curve(cls, curve: str) -> Response:
        """The exact inverse of one of :data:`CURVES` (``gamma2.2`` and ``srgb`` give the formulas)."""
        if curve == "gamma2.2":
            return cls.from_gamma(2.2)
        if curve == "srgb":
            return cls.srgb()
        if curve not in CURVES:
            raise InputError(f"unknown camera curve {curve!r}; choose one of {', '.join(CURVES)}.")
        return cls(curve, _table_from_forward(CURVES[curve]))

    # -- the curve -------------------------------------------------------------------------------
    @property
    def table(self) -> np.ndarray:
        """(K, 3) float32 inverse response at codes ``linspace(0, 1, K)`` (tabulated for formulas too)."""
        if self._table is None:
            codes = np.linspace(0.0, 1.0, TABLE_SIZE, dtype=np.float32)
            return np.repeat(self.linearize(codes)[:, None], 3, axis=1).astype(np.float32)
        return self._table

    def linearize(self, code: np.ndarray) -> np.ndarray:
        """Code values in [0, 1] (any shape; a trailing axis of 3 is RGB) to linear light, float32."""
        code = np.asarray(code, dtype=np.float32)
        if self.name == "srgb" and self._table is None:
            return _srgb_decode(code).astype(np.float32)
        if self.gamma is not None and self._table is None:
            return np.power(np.clip(code, 0.0, 1.0), np.float32(self.gamma))
        grid = np.linspace(0.0, 1.0, len(self._table), dtype=np.float32)
        return _interp_channels(code, [grid] * 3, self._table.T)

    def encode(self, linear: np.ndarray) -> np.ndarray:
        """The forward response: linear light in [0, 1] to code values, float32 (inverse of :meth:`linearize`)."""
        linear = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
        if self.name == "srgb" and self._table is None:
            return _srgb_encode(linear).astype(np.float32)
        if self.gamma is not None and self._table is None:
            return np.power(linear, np.float32(1.0 / self.gamma))
        grid = np.linspace(0.0, 1.0, len(self._table), dtype=np.float32)
        return _interp_channels(linear, np.maximum.accumulate(self._table, axis=0).T, [grid] * 3)

    @property
    def exact(self) -> bool:
        """Whether the curve is a formula (sRGB, a gamma), not a table."""
        return self._table is None

    def is_gamma(self, gamma: float) -> bool:
        """Whether this is exactly ``code**gamma`` (then frames need no re-encoding for a gamma pipeline)."""
        return self._table is None and self.gamma is not None and float(self.gamma) == float(gamma)

    # -- files -----------------------------------------------------------------------------------
    def to_dict(self, samples: int = 33) -> dict:
        """JSON-serialisable description: the name, and for tabulated curves the table at ``samples`` codes."""
        data = {"format": FILE_FORMAT, "version": FILE_VERSION, "name": self.name}
        if self.gamma is not None and self._table is None:
            data["gamma"] = self.gamma
        elif self._table is not None:
            codes = np.linspace(0.0, 1.0, samples)
            data["codes"] = [round(float(c), 6) for c in codes]
            data["inverse"] = [[round(float(v), 7) for v in np.interp(codes, np.linspace(0, 1, len(self._table)),
                                                                        self._table[:, c])] for c in range(3)]
        return data

    def save(self, path: str | os.PathLike) -> None:
        from ..io.atomic import write_json_atomically

        write_json_atomically(Path(path), self.to_dict(samples=257))

    @classmethod
    def from_dict(cls, data: dict, source: str = "response") -> Response:
        if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
            raise InputError(f"{source}: not a camera response file (no \"format\": \"{FILE_FORMAT}\"); "
                             "estimate one from the camera's brackets.")
        name = str(data.get("name", source))
        if "gamma" in data:
            return cls.from_gamma(float(data["gamma"]))
        if name == "srgb" and "inverse" not in data:
            return cls.srgb()
        try:
            codes = np.asarray(data["codes"], dtype=np.float64)
            inverse = np.asarray(data["inverse"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{source}: a camera response needs \"codes\" and three \"inverse\" lists.") from None
        if codes.ndim != 1 or inverse.shape != (3, len(codes)) or len(codes) < 2:
            raise InputError(f"{source}: \"inverse\" must hold 3 lists as long as \"codes\" ({len(codes)} values).")
        if not (np.all(np.isfinite(codes)) and codes[0] == 0 and codes[-1] == 1 and np.all(np.diff(codes) > 0)):
            raise InputError(f"{source}: \"codes\" must rise strictly from 0 to 1.")
        grid = np.linspace(0.0, 1.0, TABLE_SIZE)
        table = np.stack([np.interp(grid, codes, inverse[c]) for c in range(3)], axis=1)
        check_table(table.astype(np.float32), source)
        return cls(name, table)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Response:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: response file not found; check the path or use auto, srgb, linear or gamma:2.2.") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(f"{path}: not a camera response file ({error}); estimate one from the camera's brackets.") from None
        response = cls.from_dict(data, str(path))
        if response._table is not None:
            response.name = str(path)  # a calibrated curve is known by its file
        return response

    def __repr__(self) -> str:
        return f"Response({self.name!r})"


def _interp_channels(values: np.ndarray, xs, ys) -> np.ndarray:
    """``np.interp`` per channel (``xs[c]`` -> ``ys[c]``) of RGB ``values`` (trailing axis 3), float32; other
    shapes use the green channel's curve."""
    if values.ndim >= 1 and values.shape[-1] == 3:
        out = np.empty(values.shape, np.float32)
        for channel in range(3):
            out[..., channel] = np.interp(values[..., channel], xs[channel], ys[channel])
        return out
    return np.interp(values, xs[1], ys[1]).astype(np.float32)


def check_table(table: np.ndarray, source: str) -> None:
    """Raise :class:`InputError` unless ``table`` is (K, 3), finite, non-decreasing, from 0 to 1."""
    if table.ndim != 2 or table.shape[1] != 3 or table.shape[0] < 2:
        raise InputError(f"{source}: a response table must be (K, 3) with K >= 2, got {table.shape}.")
    if not np.all(np.isfinite(table)):
        raise InputError(f"{source}: the response holds non-finite values.")
    if np.any(np.diff(table, axis=0) < -1e-6):
        raise InputError(f"{source}: the response is not monotone (linear light must not fall as code values rise); "
                         "re-estimate it from the camera's brackets.")
    if np.any(np.abs(table[0]) > 1e-3) or np.any(np.abs(table[-1] - 1) > 1e-3):
        raise InputError(f"{source}: the response must map code 0 to 0 and code 1 to 1 "
                         f"(got {table[0].round(4).tolist()} and {table[-1].round(4).tolist()}).")


def parse_response(spec: str | Response | None) -> Response | str:
    """``--response`` values: ``"auto"`` (returned as the string), ``linear``, ``srgb``, ``gamma:G``, a
    curve name of :data:`CURVES`, or a ``.json`` file from ``diffhdr calibrate``."""
    if isinstance(spec, Response):
        return spec
    if spec is None or spec == "auto":
        return "auto"
    text = str(spec).strip()
    if text == "linear":
        return Response.linear()
    if text == "srgb":
        return Response.srgb()
    if text.startswith("gamma:") or text.startswith("gamma="):
        try:
            return Response.from_gamma(float(text[6:]))
        except ValueError:
            raise InputError(f"response {text!r}: write gamma:G with a positive number G, e.g. gamma:2.2.") from None
    if text in CURVES:
        return Response.from_curve(text)
    if text.lower().endswith(".json") or os.path.sep in text:
        return Response.load(text)
    raise InputError(f"response {text!r}: use auto, linear, srgb, gamma:G or a camera response .json file.")

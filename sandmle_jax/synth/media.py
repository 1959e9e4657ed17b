"""File-based modalities: RGB images and short audio clips, one file per row.

Images: coloured discs and squares on a tinted, striped background; how many objects, how big
and what hue carry the rule, the background's stripes, level and tint distract. Audio: half a
second at 8 kHz of beeps (a tone with two harmonics under a smooth envelope) in noise and mains
hum; how many beeps, their pitch and their loudness carry the rule, the noise level and the hum
distract. Both are learnable from simple features (downsampled colour, band energies) better
than from a constant, and better still by a model that looks at the content.
"""

from __future__ import annotations

import colorsys
import io
import wave

import numpy as np
import pandas as pd
from PIL import Image

from sandmle_jax.synth.domains import Domain
from sandmle_jax.synth.dna import TaskDNA
from sandmle_jax.synth.inputs import Inputs, standardise

MIN_SIDE = 32
SAMPLE_RATE = 8000


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels * 255, 0, 255).astype(np.uint8), mode="RGB").save(
        buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _rgb(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue, saturation, value))


def image(dna: TaskDNA, domain: Domain, n: int, rng: np.random.Generator) -> Inputs:
    side = max(int(dna.input_shape.get("side", MIN_SIDE)), MIN_SIDE)
    yy, xx = np.mgrid[0:side, 0:side]
    count = rng.integers(0, 6, size=n).astype(float)
    size = rng.uniform(2.0, 5.0, size=n)
    hue = rng.uniform(0.0, 0.7, size=n)  # red .. blue, no wrap-around
    stripes = rng.uniform(0.0, 0.25, size=n)  # distractions from here on
    level = rng.uniform(0.05, 0.3, size=n)
    tint = rng.uniform(0.0, 1.0, size=n)
    files = []
    for row in range(n):
        angle, freq = rng.uniform(0, np.pi), rng.uniform(0.2, 0.9)
        wave_ = 0.5 * (1 + np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy)))
        canvas = (level[row] + stripes[row] * wave_)[..., None] * (
            0.6 + 0.4 * _rgb(tint[row], 0.5, 1.0))
        colour = _rgb(hue[row], 0.85, rng.uniform(0.8, 1.0))
        for _ in range(int(count[row])):
            cy, cx = rng.uniform(2, side - 2, size=2)
            radius = size[row] * rng.uniform(0.85, 1.15)
            if rng.random() < 0.5:
                shape = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
            else:
                shape = (np.abs(yy - cy) <= radius * 0.85) & (np.abs(xx - cx) <= radius * 0.85)
            canvas = np.where(shape[..., None], colour, canvas)
        speckles = rng.random((side, side)) < 0.01 * dna.n_distractors
        canvas = np.where(speckles[..., None], rng.uniform(0.4, 1.0, 3), canvas)
        canvas = canvas + 0.04 * rng.standard_normal(canvas.shape)
        if rng.random() < dna.outlier_rate:
            canvas = 1.0 - canvas  # a negative
        files.append(_png(canvas))
    latent = standardise(np.column_stack([count, size, hue, stripes, level, tint]))
    return Inputs(pd.DataFrame({"image": [""] * n}), "image", latent, informative=3,
                  files=tuple(files), file_column="image")


def _wav(signal: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def audio(dna: TaskDNA, domain: Domain, n: int, rng: np.random.Generator) -> Inputs:
    length = int(dna.input_shape.get("samples", SAMPLE_RATE // 2))
    t = np.arange(length) / SAMPLE_RATE
    beeps = rng.integers(0, 5, size=n).astype(float)
    pitch = rng.uniform(250.0, 1200.0, size=n)
    loudness = rng.uniform(0.15, 0.6, size=n)
    noise = rng.uniform(0.01, 0.12, size=n)  # distractions from here on
    hum = rng.uniform(0.0, 0.15, size=n)
    files = []
    beep_len = int(0.06 * SAMPLE_RATE)
    envelope = np.hanning(beep_len)
    for row in range(n):
        signal = hum[row] * np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 2 * np.pi))
        slots = rng.permutation(length // beep_len - 1)[:int(beeps[row])]
        tone = (np.sin(2 * np.pi * pitch[row] * t[:beep_len])
                + 0.4 * np.sin(4 * np.pi * pitch[row] * t[:beep_len])
                + 0.2 * np.sin(6 * np.pi * pitch[row] * t[:beep_len])) / 1.6
        for slot in slots:
            start = slot * beep_len + int(rng.integers(0, beep_len // 2))
            signal[start:start + beep_len] += loudness[row] * envelope * tone
        signal = signal + noise[row] * rng.standard_normal(length)
        if rng.random() < dna.outlier_rate:
            signal = np.clip(signal * 6.0, -0.5, 0.5)  # an overdriven recording
        files.append(_wav(signal))
    latent = standardise(np.column_stack([beeps, pitch, loudness, noise, hum]))
    return Inputs(pd.DataFrame({"audio": [""] * n}), "audio", latent, informative=3,
                  files=tuple(files), file_column="audio", file_folder="audio",
                  file_suffix=".wav")

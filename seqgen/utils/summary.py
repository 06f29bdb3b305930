"""TensorBoard logs without TensorFlow: scalars, audio and images as event files.

Written with the ``tensorboard`` package's own event-file writer and its bundled protocol buffers
(``tensorboard.compat.proto``), which import no TensorFlow, so training logs the same ``RUN/tb`` under
every Keras backend.  ``tensorboard --logdir RUN/tb`` reads them as it reads ``tf.summary``'s.
"""
from __future__ import annotations

import io
import pathlib
import struct
import sys
import time
import types

import numpy as np


def _without_tensorflow() -> None:
    """Make TensorBoard use its own file layer unless TensorFlow is loaded already.

    TensorBoard's writer reaches files through ``tensorboard.compat.tf``, which imports TensorFlow when it
    is installed; an importable ``tensorboard.compat.notf`` is TensorBoard's switch to its bundled
    stand-in (plain local files), so a JAX run never loads TensorFlow for its logs."""
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


class SummaryWriter:
    """``scalar`` / ``audio`` / ``image`` summaries at a step, appended to an event file in ``logdir``."""

    def __init__(self, logdir, flush_secs: int = 30):
        _without_tensorflow()
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        pathlib.Path(logdir).mkdir(parents=True, exist_ok=True)
        self._writer = EventFileWriter(str(logdir), flush_secs=flush_secs)

    def _add(self, value, step: int) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary(value=[value])
        self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def scalar(self, tag: str, value, step: int) -> None:
        from tensorboard.compat.proto import summary_pb2

        self._add(summary_pb2.Summary.Value(tag=tag, simple_value=float(value)), step)

    def audio(self, tag: str, wav, sample_rate: int, step: int) -> None:
        """A mono clip (floats in [-1, 1]) as a 16-bit WAV."""
        import soundfile as sf
        from tensorboard.compat.proto import summary_pb2

        wav = np.clip(np.nan_to_num(np.asarray(wav, np.float32).reshape(-1)), -1.0, 1.0)
        buf = io.BytesIO()
        sf.write(buf, wav, int(sample_rate), format="WAV", subtype="PCM_16")
        audio = summary_pb2.Summary.Audio(sample_rate=float(sample_rate), num_channels=1, length_frames=len(wav),
                                          encoded_audio_string=buf.getvalue(), content_type="audio/wav")
        self._add(summary_pb2.Summary.Value(tag=tag, audio=audio), step)

    def image(self, tag: str, png_path, step: int) -> None:
        """A PNG file as it is (its size read from its header)."""
        from tensorboard.compat.proto import summary_pb2

        data = pathlib.Path(png_path).read_bytes()
        width, height = struct.unpack(">II", data[16:24])
        image = summary_pb2.Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=data)
        self._add(summary_pb2.Summary.Value(tag=tag, image=image), step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class NoopWriter:
    """What a non-chief worker logs: nothing."""

    def scalar(self, *args, **kwargs) -> None:
        pass

    audio = image = scalar

    def flush(self) -> None:
        pass

    close = flush

"""TensorBoard event files written without TensorFlow, read back with TensorBoard's own reader."""
import io

import numpy as np
import soundfile as sf

from seqgen.utils.summary import NoopWriter, SummaryWriter


def test_scalars_audio_and_images_read_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from seqgen.utils.plots import compare_png

    w = SummaryWriter(tmp_path / "tb")
    for step, v in ((1, 0.5), (2, 0.25)):
        w.scalar("train/loss", v, step)
    wav = (0.5 * np.sin(np.arange(2205) / 5.0)).astype(np.float32)
    w.audio("samples/real", wav, 22050, 2)
    png = compare_png(wav, wav, 22050, tmp_path / "a.png")
    w.image("samples/spectrograms", png, 2)
    w.close()
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"audio": 0, "images": 0})
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(1, 0.5), (2, 0.25)]
    (audio,) = acc.Audio("samples/real")
    back, sr = sf.read(io.BytesIO(audio.encoded_audio_string), dtype="float32")
    assert sr == 22050 and audio.step == 2
    np.testing.assert_allclose(back, wav, atol=1 / 32768 + 1e-6)
    (image,) = acc.Images("samples/spectrograms")
    assert image.encoded_image_string == png.read_bytes() and image.width > 100 and image.height > 100
    quiet = NoopWriter()
    quiet.scalar("x", 1.0, 1), quiet.audio("y", wav, 22050, 1), quiet.flush(), quiet.close()

"""What every seqgen decoder shares: its compiled functions, kept per shape, and the method check.

Mixed into the Keras models (``class WaveNet(Decoder, keras.Model)``); the
model sets ``self._decode_fns = {}`` in its constructor and lists the
generation methods it has in ``METHODS`` (:mod:`seqgen.core.methods` names them).
Its ``get_config`` holds every constructor argument; ``from_config`` is shared.
"""
from seqgen.core.decoding import compile_fn
from seqgen.core.methods import CACHED, NAIVE


class Decoder:
    #: generation methods this model has
    METHODS = (CACHED, NAIVE)

    def _get_compiled(self, key, fn):
        """``fn`` compiled for the backend once per ``key`` (shapes and static settings)."""
        fns = self._decode_fns
        if key not in fns:
            fns[key] = compile_fn(fn, variables=self.weights)
        return fns[key]

    def check_method(self, method) -> str:
        if method not in self.METHODS:
            names = ", ".join(repr(m) for m in self.METHODS)
            raise ValueError(f"method must be one of {names}, got {method!r}")
        return method

    @classmethod
    def from_config(cls, config):
        """The model from its hyper-parameters.  The model and every sub-layer take the dtype policy in
        force when it is built or loaded (the saved ``dtype`` is dropped: the sub-layers are built from
        hyper-parameters, so a policy on the model alone would disagree with them);
        :meth:`seqgen.runs.Run.load_model` sets ``train.precision``'s to resume, float32 to sample."""
        return cls(**{k: v for k, v in config.items() if k != "dtype"})

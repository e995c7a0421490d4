"""Seldon MLServer custom runtime: the mlscale-mlp network in numpy (mlp_numpy.py).
run.py writes the settings folder and starts `mlserver start` with this module on PYTHONPATH."""
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

import mlp_numpy


class MlpRuntime(MLModel):
    async def load(self) -> bool:
        self.net = mlp_numpy.load(self.settings.parameters.uri)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).reshape(-1, self.net["inputs"])
        probabilities, classes = mlp_numpy.forward(self.net, x)
        return InferenceResponse(
            model_name=self.name, id=payload.id,
            outputs=[NumpyCodec.encode_output("probabilities", probabilities),
                     NumpyCodec.encode_output("class", classes)])

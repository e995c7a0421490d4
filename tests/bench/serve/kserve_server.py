"""KServe's Python model server with a custom model: the mlscale-mlp network in numpy
(mlp_numpy.py), answering the Open Inference Protocol v2 like mlscale-serve does.
  python kserve_server.py --http_port PORT NAME=DIR [NAME=DIR ...]"""
import sys

from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer

import mlp_numpy


class MlpModel(Model):
    def __init__(self, name, path):
        super().__init__(name)
        self.net = mlp_numpy.load(path)
        self.ready = True

    def predict(self, payload: InferRequest, headers=None, response_headers=None):
        x = payload.inputs[0].as_numpy().reshape(-1, self.net["inputs"])
        probabilities, classes = mlp_numpy.forward(self.net, x)
        return InferResponse(
            response_id=payload.id, model_name=self.name,
            infer_outputs=[InferOutput("probabilities", list(probabilities.shape), "FP32", probabilities),
                           InferOutput("class", list(classes.shape), "INT64", classes)])


if __name__ == "__main__":
    models = [a for a in sys.argv[1:] if "=" in a and not a.startswith("--")]
    sys.argv = [a for a in sys.argv if a not in models]  # the rest is KServe's own flags
    port = int(sys.argv[sys.argv.index("--http_port") + 1])
    ModelServer(http_port=port, enable_grpc=False).start(
        [MlpModel(name, path) for name, path in (m.split("=", 1) for m in models)])

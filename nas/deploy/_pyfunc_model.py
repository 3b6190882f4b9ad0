"""The code of a winner's MLflow Model (`nas export RUN_ID --format mlflow`), logged as "model from
code": MLflow copies this file into the model and runs it when the model is loaded, so it imports
nothing of nas. Only torch, numpy and mlflow are needed where the model is served.

Input: images [N, C, H, W], uint8 0-255 (what the signature declares, and what a served model
parses JSON pixels as) or float32 0-1 (accepted when the signature is not enforced). Output: a dict
of "logits" (float32 [N, classes]) and "class" (int64 [N], the index of the largest logit).
"""

import mlflow
import numpy as np


class NasWinner(mlflow.pyfunc.PythonModel):
    """A torch.export program of the winner, normalisation folded in, fed float32 0-1 images."""

    def load_context(self, context):
        import torch

        self.torch = torch
        self.program = torch.export.load(context.artifacts["program"]).module()

    def predict(self, context, model_input: np.ndarray, params=None):  # ndarray: the signature validates
        images = np.asarray(model_input)
        if images.ndim == 3:  # one image
            images = images[None]
        # The same scaling as the tracked model's: uint8 / 255 in float32.
        images = images.astype(np.float32) / np.float32(255.0) if images.dtype == np.uint8 else \
            images.astype(np.float32)
        with self.torch.no_grad():
            logits = self.program(self.torch.from_numpy(np.ascontiguousarray(images))).numpy()
        return {"logits": logits, "class": logits.argmax(axis=1).astype(np.int64)}


mlflow.models.set_model(NasWinner())

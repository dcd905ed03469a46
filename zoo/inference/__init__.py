"""Inference: pretrained checkpoints by name (``registry``), ``zoo.load(...).predict(...)``
(``predictor``), the ``infer`` / ``checkpoints`` / ``export`` / ``demo`` commands (``commands``)."""

"""wav2vec 2.0 / XLS-R: a config of :class:`zoo.models.SSLClassifier` (kept as a class so that
``class_path: zoo.models.Wav2Vec2Classifier`` configs and checkpoints keep loading)."""
from __future__ import annotations

from .ssl import SSLClassifier


class Wav2Vec2Classifier(SSLClassifier):
    """:class:`SSLClassifier` under its first name: the same options, the default encoder
    ``facebook/wav2vec2-base`` (any other supported encoder loads too)."""

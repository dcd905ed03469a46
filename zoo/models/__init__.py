"""Model families. Each is one file; all share EmotionModule (loss, metrics, optimiser)."""
from .audio import AudioCNN
from .base import EmotionModule
from .early_fusion import EarlyFusion
from .egemaps import EGeMAPSMLP
from .late_fusion import LateFusion
from .ssl import SSLClassifier
from .text import TextBERT
from .tfidf import TextTfidf
from .wav2vec2 import Wav2Vec2Classifier

__all__ = ["AudioCNN", "EmotionModule", "EGeMAPSMLP", "EarlyFusion", "LateFusion", "SSLClassifier", "TextBERT",
           "TextTfidf", "Wav2Vec2Classifier"]

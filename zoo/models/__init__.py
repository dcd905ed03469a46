"""Model families. Each is one file; all share EmotionModule (loss, metrics, optimiser)."""
from .audio import AudioCNN
from .base import EmotionModule

__all__ = ["AudioCNN", "EmotionModule"]

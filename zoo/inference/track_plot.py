"""The ``--plot`` figure of ``python -m zoo infer`` on a long file: class probabilities over time
(sliding windows or VAD speech segments), or the dimensions over time for a dimension-only model.
matplotlib is imported when a figure is drawn."""
from __future__ import annotations

from pathlib import Path


def plot_track(result: dict, title: str, png: Path) -> Path:
    """Stacked class probabilities over time (one band per class), the winning label on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    track = result["track"]
    # a window without speech energy has no probabilities: the classes come from one that has
    classes = next((list(w["probs"]) for w in track if w["probs"]), [])
    if not classes:  # a dimension-only model: its dimensions over time
        return _plot_dims_track(result, title, png)
    if result.get("segment") == "vad":
        return _plot_segments(result, title, png)
    mids = np.array([(w["start"] + w["end"]) / 2 for w in track])
    probs = np.array([[w["probs"].get(c, 0.0) for c in classes] for w in track])  # silence: 0
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 4.2), sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    colors = plt.get_cmap("tab10").colors
    ax.stackplot(mids, probs.T, labels=classes, colors=colors[: len(classes)], alpha=0.85)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(f"{title}: {result['label']} overall")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    # windows overlap: each instant takes the label of the window centred nearest to it
    edges = [track[0]["start"], *((mids[1:] + mids[:-1]) / 2), track[-1]["end"]]
    for w, a, b in zip(track, edges[:-1], edges[1:]):
        if w["label"] is not None:  # no bar over a window without speech energy
            ax2.barh(0, b - a, left=a, color=colors[classes.index(w["label"])], height=0.8)
    _label_strip(ax2, result)
    return _save(fig, png)


def _plot_segments(result: dict, title: str, png: Path) -> Path:
    """Speech segments as spans: stacked class probabilities over each, its label below, and
    nothing over the silence between them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    track = result["track"]
    classes = list(track[0]["probs"])
    colors = plt.get_cmap("tab10").colors
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 4.2), sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    for w in track:
        bottom = 0.0
        for k, c in enumerate(classes):
            ax.bar(w["start"], w["probs"][c], width=w["end"] - w["start"], bottom=bottom, align="edge",
                   color=colors[k % 10], alpha=0.85, label=c if w is track[0] else None)
            bottom += w["probs"][c]
        ax2.barh(0, w["end"] - w["start"], left=w["start"], color=colors[classes.index(w["label"]) % 10], height=0.8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(f"{title}: {len(track)} speech segment(s), {result['label']} overall")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    _label_strip(ax2, result)
    return _save(fig, png)


def _plot_dims_track(result: dict, title: str, png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    track = result["track"]
    mids = [(w["start"] + w["end"]) / 2 for w in track]
    fig, ax = plt.subplots(figsize=(10, 3.2))
    for d in track[0]["dims"]:
        ax.plot(mids, [w["dims"][d] for w in track], marker="o", label=d)
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("rating (0-1)")
    ax.set_title(title + ": " + ", ".join(f"{d} {v:.2f}" for d, v in result["dims"].items()) + " overall")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return _save(fig, png)


def _label_strip(ax, result: dict) -> None:
    """The strip under the probabilities: the label over time."""
    ax.set_yticks([])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("label", rotation=0, ha="right", va="center")
    ax.set_xlim(0, result.get("duration", result["track"][-1]["end"]))


def _save(fig, png: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png

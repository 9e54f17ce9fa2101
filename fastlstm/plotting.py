"""Perplexity curves with matplotlib, an optional extra (`pip install 'fastlstm[plot]'`).

matplotlib is imported only when a plot is asked for. Where there is no display (Linux
without DISPLAY or WAYLAND_DISPLAY, or a file-only backend such as Agg) a curve is saved
as a PNG instead of shown, so plotting works the same on a laptop and on a server.
"""

import os
import sys

INSTALL_HINT = "pip install 'fastlstm[plot]'"
_FILE_BACKENDS = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


_MISSING = f"plotting needs matplotlib, which is not installed: {INSTALL_HINT}"


def pyplot():
    """matplotlib.pyplot, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(_MISSING) from e
    return plt


def can_show(plt):
    """True when plt.show() would reach a screen (a window, or a notebook's inline output)."""
    backend = plt.get_backend().lower()
    if "inline" in backend:
        return True
    if backend in _FILE_BACKENDS:
        return False
    return not (sys.platform.startswith("linux")
                and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")))


def show_or_save(plt, fig, path):
    """Show fig in a window where there is a display; else save it to path and say where. Returns the path or None."""
    if can_show(plt):
        plt.show()
        return None
    fig.savefig(path)
    plt.close(fig)
    print(f"no display: plot saved to {os.path.abspath(path)}")
    return path


def save_curves(f, train, valid, title=None):
    """Write a PNG to the binary file f: train perplexity per interval and validation perplexity per epoch,
    both against total iterations. train and valid are lists of (total_iterations, perplexity).

    Uses a bare Figure (no pyplot), so it never opens a window nor touches pyplot's global state.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(_MISSING) from e
    fig = Figure(figsize=(8, 4.5), layout="tight")
    ax = fig.add_subplot()
    if train:
        ax.plot(*zip(*train), label="train (per interval)", linewidth=1)
    if valid:
        ax.plot(*zip(*valid), "o-", label="validation (per epoch)")
    ax.set_yscale("log")
    ax.set_xlabel("iterations")
    ax.set_ylabel("perplexity")
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.savefig(f, format="png")

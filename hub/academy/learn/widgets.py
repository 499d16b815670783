"""Drawing into ipywidgets Output areas in a way that cannot hang papermill.

Drawing inside ``with out:`` during execution makes nbclient mimic a capturing Output widget
by sending comm messages on the shell channel while it waits for the execute reply there; in
about 4 runs of 10 that hung papermill. Setting ``out.outputs`` directly never takes that path,
and looks the same to a learner in JupyterLab.
"""
from __future__ import annotations

import base64
import io
from typing import Any


def show_figure(out: Any, fig: Any, alt: str = "figure") -> None:
    """Replace the Output's content with ``fig`` as a PNG, then close the figure."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    out.outputs = ({"output_type": "display_data", "metadata": {}, "data": {"image/png": png, "text/plain": f"<{alt}>"}},)


def show_text(out: Any, text: str) -> None:
    """Replace the Output's content with plain text."""
    out.outputs = ({"output_type": "stream", "name": "stdout", "text": text if text.endswith("\n") else text + "\n"},)


def show_markdown(out: Any, text: str) -> None:
    """Replace the Output's content with ``text`` rendered as Markdown (code fences become code blocks).

    The plain-text copy is what a viewer without a Markdown renderer (or a test) reads.
    """
    out.outputs = ({"output_type": "display_data", "metadata": {}, "data": {"text/markdown": text, "text/plain": text}},)

"""nst-keras: neural style transfer (Gatys et al.) on Keras 3.

    import nst_keras
    result = nst_keras.stylize(content, [style], nst_keras.StyleConfig(preset="draft"))

`content` and each style are arrays (H, W, 3) or (H, W, 4) with values in 0..255 (uint8,
uint16 scaled to 0..255, or float); the result is float32 (H', W', 3 or 4) in 0..255 at the
target size (the content's size capped by config.max_size). The library prints nothing and
touches no files except the network weights cache.
"""

from .config import StyleConfig
from .progress import Cancelled, Progress

__version__ = "0.1.0"

__all__ = ["stylize", "StyleConfig", "Progress", "Cancelled", "__version__"]


def stylize(content, styles, config=None, on_progress=None, should_stop=None, init_image=None):
    """Paint `content` in the style of `styles`; see nst_keras.engine.stylize."""
    from .engine import stylize as _stylize  # TensorFlow is imported only when needed

    return _stylize(content, styles, config, on_progress=on_progress, should_stop=should_stop, init_image=init_image)

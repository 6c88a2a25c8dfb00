"""``r2l serve``: exported models behind a web page and a REST API, on the torch-free predict path.

``models`` loads the ONNX files and reads uploads, ``batching`` puts concurrent requests into one
ONNX Runtime call, ``api`` is the REST API, ``page`` the Gradio page, ``app`` joins them in one app.
"""

from .app import build_app, network_warning, serve
from .models import Limits, ServedModel, load_models

__all__ = ["Limits", "ServedModel", "build_app", "load_models", "network_warning", "serve"]

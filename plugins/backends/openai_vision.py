"""The ``openai-vision`` describer: an OpenAI-compatible multimodal server writes a report per image.

vLLM or llama.cpp serving a vision-language model (CXR-LLaVA and the like) answer
``/v1/chat/completions`` with an image in the user turn as a base64 ``data:`` URL. PNG and JPEG
files are sent as they are; other images (DICOM, TIFF) are decoded and sent as 8-bit PNG.
Greedy decoding. Images (patient data) go only to loopback or private addresses unless
``allow_remote`` is set, as for the ``openai`` labeller.
"""

from __future__ import annotations

import base64
import io
import os
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from report2label.core.describe import Describer, ImageRequest
from report2label.core.errors import R2LError
from report2label.core.hookspecs import hookimpl
from report2label.core.labelling import RowFailure
from report2label.core.privacy import check_endpoint
from report2label.plugins.backends.openai_server import only_model

MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def data_url(path) -> str:
    """The image as a ``data:`` URL: PNG/JPEG bytes as they are, anything else decoded to 8-bit PNG."""
    mime = MIME.get(path.suffix.lower())
    if mime:
        data = path.read_bytes()
    else:
        import numpy as np
        from PIL import Image

        from report2label.core.data.images import read_image

        pixels = read_image(path)
        low, high = float(pixels.min()), float(pixels.max())
        scaled = ((pixels - low) / (high - low or 1.0) * 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(scaled).save(buffer, format="PNG")
        mime, data = "image/png", buffer.getvalue()
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


class OpenAIVisionDescriber(Describer):
    name = "openai-vision"
    description = "An OpenAI-compatible multimodal server (vLLM, llama.cpp) writes a report per image."

    class Options(Describer.Options):
        allow_remote: bool = Field(False, description="Allow a server outside loopback and private networks.")
        base_url: str = Field("http://127.0.0.1:8000/v1", description="The server's OpenAI API root.")
        api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key.")
        concurrency: int = Field(4, ge=1, description="Requests in flight at once.")
        timeout: float = Field(300.0, gt=0, description="Seconds per request.")
        retries: int = Field(4, ge=0, description="Retries with backoff on connection errors, 429 and 5xx.")
        max_tokens: int = Field(512, ge=1, description="The longest report, in tokens.")
        seed: int = 0

        @field_validator("base_url")
        @classmethod
        def _private(cls, value: str, info: ValidationInfo) -> str:
            check_endpoint(value, info.data.get("allow_remote", False))
            return value.rstrip("/")

    def __init__(self, options) -> None:
        super().__init__(options)
        try:
            import openai
        except ImportError:
            raise R2LError(
                "the openai-vision backend needs the openai client: pip install 'report2label[openai]'"
            ) from None
        self.openai = openai
        self.client = openai.OpenAI(
            base_url=options.base_url,
            api_key=os.environ.get(options.api_key_env) or "none",
            timeout=options.timeout,
            max_retries=options.retries,
        )
        self.model = options.model or only_model(self.client, self.options.base_url)

    @property
    def model_id(self) -> str:
        return self.model

    @property
    def params(self) -> dict[str, Any]:
        return {
            "server": self.options.base_url,
            "temperature": 0,
            "max_tokens": self.options.max_tokens,
            "seed": self.options.seed,
        }

    @property
    def concurrency(self) -> int:
        return self.options.concurrency

    def describe(self, request: ImageRequest) -> str | RowFailure:
        content = [
            {"type": "image_url", "image_url": {"url": data_url(request.path)}},
            {"type": "text", "text": request.instructions},
        ]
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": content}],
                temperature=0,
                max_tokens=self.options.max_tokens,
                seed=self.options.seed,
            )
        except self.openai.APIStatusError as exc:
            return RowFailure(f"HTTP {exc.status_code} from {self.options.base_url}: {str(exc.message)[:200]}")
        except self.openai.APIConnectionError as exc:
            return RowFailure(f"{self.options.base_url} unreachable after {self.options.retries} retries: {exc}")
        text = (response.choices[0].message.content or "").strip()
        return text or RowFailure("the server wrote an empty report")

    def close(self) -> None:
        self.client.close()


@hookimpl
def register_describers(register) -> None:
    register(OpenAIVisionDescriber)

"""The REST API: ``POST /v1/predict`` (one route per model id), ``GET /v1/model``, ``GET /healthz``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..data.images import ImageError
from .models import Limits, ServedModel


class LabelResult(BaseModel):
    probability: float
    decision: int
    threshold: float


class FileResult(BaseModel):
    file: str
    labels: dict[str, LabelResult] | None = None
    error: str | None = None


class PredictResponse(BaseModel):
    model: str
    results: list[FileResult]


class Error(BaseModel):
    detail: str


def _megabytes(n: int) -> str:
    return f"{n / 2**20:g} MB"


async def predict_uploads(served: ServedModel, files: list[UploadFile], limits: Limits) -> PredictResponse:
    """Read, check and predict the uploaded files; a file that cannot be read gets its error."""
    if len(files) > limits.max_files:
        raise HTTPException(413, f"{len(files)} files in one request; at most {limits.max_files}")
    results: list[dict] = []
    views: list[np.ndarray] = []
    for upload in files:
        name = Path(upload.filename or "upload").name
        data = await upload.read(limits.max_bytes + 1)
        if len(data) > limits.max_bytes:
            raise HTTPException(413, f"{name}: larger than the limit of {_megabytes(limits.max_bytes)} per file")
        try:
            views.append(await run_in_threadpool(served.view, name, data))
            results.append({"file": name})
        except ImageError as exc:
            results.append({"file": name, "error": str(exc)})
    if not views:
        errors = "; ".join(r["error"] for r in results)
        body = PredictResponse(model=served.id, results=results).model_dump()
        return JSONResponse({"detail": f"no file could be read: {errors}", **body}, status_code=422)
    predictions = iter(await served.predict(np.stack(views)))
    for result in results:
        if "error" not in result:
            result["labels"] = next(predictions)
    return PredictResponse(model=served.id, results=results)


def api_router(models: list[ServedModel], limits: Limits) -> APIRouter:
    router = APIRouter()
    ids = ", ".join(m.id for m in models)
    errors = {413: {"model": Error}, 422: {"description": "No file could be read (per-file errors in results)"}}
    upload = File(description="PNG, JPEG or DICOM files (field name: files)")

    @router.get("/healthz", tags=["server"])
    async def healthz() -> dict:
        """The server is up; per model its id, the ONNX Runtime calls made and the images they predicted."""
        return {"status": "ok", "models": [m.counts() for m in models]}

    @router.get("/v1/model", tags=["models"])
    async def describe() -> dict:
        """Every served model's ONNX metadata: task, labels, thresholds, preprocessing, input size, version."""
        return {"models": [m.describe() for m in models]}

    @router.post("/v1/predict", tags=["predict"], responses={400: {"model": Error}, **errors})
    async def predict(files: list[UploadFile] = upload) -> PredictResponse:
        """Predict with the served model (with several models, use /v1/models/{id}/predict)."""
        if len(models) > 1:
            raise HTTPException(400, f"{len(models)} models are served ({ids}); post to /v1/models/<id>/predict")
        return await predict_uploads(models[0], files, limits)

    for served in models:
        _model_routes(router, served, limits, upload, errors)
    return router


def _model_routes(router: APIRouter, served: ServedModel, limits: Limits, upload, errors: dict) -> None:
    @router.get(f"/v1/models/{served.id}", tags=["models"], name=f"describe {served.id}")
    async def describe() -> dict:
        return served.describe()

    @router.post(f"/v1/models/{served.id}/predict", tags=["predict"], name=f"predict {served.id}", responses=errors)
    async def predict(files: list[UploadFile] = upload) -> PredictResponse:
        return await predict_uploads(served, files, limits)


async def limit_body(request: Request, call_next, limits: Limits):
    """Refuse an API request whose declared body exceeds what the limits allow, before it is read."""
    allowed = limits.max_files * limits.max_bytes + 2**20  # the multipart framing
    length = request.headers.get("content-length", "")
    if request.url.path.startswith("/v1/") and length.isdigit() and int(length) > allowed:
        return JSONResponse({"detail": f"request body of {_megabytes(int(length))} exceeds the limits"}, 413)
    return await call_next(request)

"""r2l serve's web page in a real headless Chromium (Debian's package, driven by Playwright's Python API)."""

import base64
import io
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_images import RAMP, write_dicom
from test_serve import Server, r2l_predict


@pytest.fixture(scope="module")
def server(exported_model, tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("serve-page"), [exported_model])
    yield server
    server.stop()


def test_upload_shows_r2l_predicts_probability_and_the_notice(browser, server, exported_model, trained_run, tmp_path):
    png = Path(pd.read_csv(trained_run / "test_predictions.csv")["image"][0])
    dicom = write_dicom(tmp_path / "mono1.dcm", RAMP, photometric="MONOCHROME1")
    expected = r2l_predict(exported_model, [png, dicom], server.env)
    hosts = set()
    page = browser.new_page(viewport={"width": 1000, "height": 1100})
    page.on("request", lambda request: hosts.add(urlparse(request.url).netloc))
    page.goto(server.url + "/")
    notice = page.locator("#notice")
    notice.wait_for(state="visible", timeout=60_000)
    assert "Not for diagnostic use" in notice.inner_text()
    assert "ankle-fracture" in page.inner_text("body") and "fracture ≥" in page.inner_text("body")
    page.set_input_files("#upload-model input[type=file]", [str(png), str(dicom)])
    cards = page.locator("#result-model .r2l-card")
    page.wait_for_function("document.querySelectorAll('#result-model .r2l-card').length == 2", timeout=60_000)
    shown = [cards.nth(i).locator(".r2l-probability").inner_text() for i in range(2)]
    views = [cards.nth(i).locator("img").get_attribute("src") for i in range(2)]
    page.screenshot(path=tmp_path / "page.png", full_page=True)
    assert shown == [f"{p:.4f}" for p in expected["fracture_probability"]]
    mono1 = np.asarray(Image.open(io.BytesIO(base64.b64decode(views[1].partition(",")[2]))), dtype=float)
    assert mono1[:, :4].mean() > mono1[:, -4:].mean() + 50, "MONOCHROME1: low stored values are shown bright"
    assert (tmp_path / "page.png").stat().st_size > 10_000
    assert hosts == {f"127.0.0.1:{server.port}"}, "the page loads nothing from outside this machine"
    assert server.kept([png, dicom]) == [], "uploads must not stay on disk"

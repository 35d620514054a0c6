"""The web app (``diffhdr app``), driven in headless chromium through Playwright's sync API.

One browser session walks the issue's steps: upload an ``examples/`` bracket, merge it (flow-merge:
under a second), move the exposure slider and see the preview change, download the ``.exr`` and decode
it, merge a tiny model folder with an ensemble (uncertainty map), then bad input (mismatched sizes, a
file that is not an image, a bad EV) shows one-line messages and the next good upload still merges.

The screenshot goes to ``docs/app.png`` when ``DIFFHDR_UPDATE_SCREENSHOT=1`` (otherwise to the test's
temporary folder, so that a test run leaves the repository as it was).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from app_browser import browser_page, chromium_or_skip, served_app
from merge_support import save_tiny_pipeline, write_scene

from diffhdr_diffusers.io import read_radiance, write_ldr
from diffhdr_diffusers.io.exposures import format_exposures
from diffhdr_diffusers.io.radiance import read_radiance_metadata

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mountain_motion"
TIMEOUT_MS = 30_000


def _example_files() -> list[str]:
    return [str(path) for path in sorted(EXAMPLE.glob("input_*.tif"))] + [str(EXAMPLE / "exposure.txt")]


def _upload(page, files) -> None:
    """Replace the upload (a new drop adds to the files already there, so clear them first)."""
    clear = page.locator("#files button[aria-label=Clear]")
    if clear.count():
        clear.click()
        _expect_status(page, "Upload a bracket")
    page.locator("#files input[type=file]").set_input_files([str(path) for path in files])


def _expect_status(page, text: str) -> str:
    from playwright.sync_api import expect

    status = page.locator("#status")
    expect(status).to_contain_text(text, timeout=TIMEOUT_MS)
    return status.inner_text()


def _image(page, selector: str) -> tuple[str, np.ndarray]:
    """The ``src`` of the image shown in ``selector`` and its decoded pixels (fetched from the server)."""
    source = page.locator(f"{selector} img").first.get_attribute("src")
    response = page.request.get(source)
    assert response.ok, source
    pixels = cv2.imdecode(np.frombuffer(response.body(), np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None, f"{source} is not an image"
    return source, pixels


def _set_number(page, selector: str, value: str) -> None:
    box = page.locator(f"{selector} input[type=number]")
    box.fill(value)
    box.press("Enter")


def _merge(page, expected: str = "camera response") -> str:
    page.locator("#merge").click()
    return _expect_status(page, expected)


def test_app_in_a_browser(tmp_path):
    from playwright.sync_api import expect

    executable = chromium_or_skip()
    assert EXAMPLE.is_dir(), "the bundled example bracket is missing"
    model = save_tiny_pipeline(tmp_path / "tiny-model")
    tiny_scene = write_scene(tmp_path / "tiny", size=(32, 48))  # short/medium/long .tif, EXIF-less
    (tmp_path / "odd").mkdir()
    mismatched = [write_ldr(tmp_path / "odd" / "a.png", np.full((32, 48, 3), 0.2)),
                  write_ldr(tmp_path / "odd" / "b.png", np.full((40, 48, 3), 0.6))]
    (tmp_path / "notes.txt").write_text("not an image")
    screenshot = ROOT / "docs" / "app.png" if os.environ.get("DIFFHDR_UPDATE_SCREENSHOT") == "1" else tmp_path / "app.png"
    start = time.perf_counter()

    with served_app() as (url, demo), browser_page(executable, url) as (page, requests):
        # 1. Upload an examples/ bracket: frames and exposures (from its exposure.txt) are shown as read.
        _upload(page, _example_files())
        ready = _expect_status(page, "Ready")
        assert "3 exposures, 384x256, EV 0, 2, 4" in ready and "exposure.txt" in ready
        assert page.locator("#exposures textarea, #exposures input").first.input_value() == "0, 2, 4"

        # 2. Merge with flow-merge.
        page.locator("#method").get_by_text("flow-merge", exact=True).click()
        status = _merge(page)
        # The response used is shown; a fallback (the auto estimate failing) is said in the status, never silent.
        assert "camera response" in status
        assert ("(auto (fallback))" in status) == status.startswith("Merged with a fallback:"), status
        assert "flow-merge" in page.locator("#timing").inner_text()
        first_source, first = _image(page, "#preview")
        assert first.shape[:2] == (256, 384)
        assert page.locator("#compare img").count() == 2  # before/after: reference frame and merge
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)

        # 3. The exposure slider re-tonemaps (no new merge: the status stays as it was).
        _set_number(page, "#stops", "2")
        page.wait_for_function(
            "src => { const img = document.querySelector('#preview img'); return img && img.src !== src; }",
            arg=first_source, timeout=TIMEOUT_MS)
        _, brighter = _image(page, "#preview")
        assert brighter.mean() > first.mean() + 5, (brighter.mean(), first.mean())

        # 4. Download the .exr; it decodes to the bracket's size.
        with page.expect_download(timeout=TIMEOUT_MS) as download:
            page.locator("#download-exr").click()
        exr = tmp_path / download.value.suggested_filename
        download.value.save_as(exr)
        assert exr.suffix == ".exr"
        radiance = read_radiance(exr)
        assert radiance.shape == (256, 384, 3) and np.isfinite(radiance).all() and radiance.max() > 0
        # ... and it records the merge as the CLI's does: method, reference frame, camera, frames not used.
        recorded = read_radiance_metadata(exr)
        assert (recorded["method"], recorded["reference_index"], recorded["rejected"]) == ("flow-merge", "1", "[]")
        assert "response" in recorded["camera"]

        # A model folder with an ensemble of 2 gives the uncertainty map (tiny bracket, typed EVs: no EXIF).
        _upload(page, tiny_scene)
        _expect_status(page, "Exposures needed")
        page.locator("#exposures textarea, #exposures input").first.fill("0, 2, 4")
        page.locator("#method").get_by_text("Model folder / Hub id", exact=True).click()
        page.locator("#model textarea, #model input").first.fill(str(model))
        _set_number(page, "#ensemble", "2")
        _merge(page)
        assert "ensemble of 2" in page.locator("#timing").inner_text()
        _, heat = _image(page, "#uncertainty")
        assert heat.shape[:2] == (32, 48)

        # 5. Bad input: a message in the page, never a traceback.
        _upload(page, mismatched)
        error = _expect_status(page, "Error")
        assert "differ in size" in error and "a.png 48x32" in error and "Traceback" not in error
        _upload(page, [*tiny_scene, tmp_path / "notes.txt"])
        assert "notes.txt: not a bracket image" in _expect_status(page, "Error")
        _upload(page, tiny_scene[:1])
        assert "at least 2" in _expect_status(page, "Error")
        _upload(page, tiny_scene)
        _expect_status(page, "Exposures needed")
        page.locator("#exposures textarea, #exposures input").first.fill("0, 2, x")
        assert "Error" in _merge(page, "'x' is not a number")
        page.locator("#exposures textarea, #exposures input").first.fill("0, 2, 2")
        assert "Error" in _merge(page, "have the same exposure")

        # ... and the next good bracket (a bundled example, picked from the list) merges, with a chosen response.
        page.locator("#example input").click()
        page.get_by_role("option", name=EXAMPLE.name).click()
        _expect_status(page, "Ready")
        page.locator("#method").get_by_text("flow-merge", exact=True).click()
        page.locator("#response input").click()
        page.get_by_role("option", name="gamma:2.2").click()
        status = _merge(page, "camera response gamma:2.2, exposures EV")
        assert status.startswith("Done:"), status
        _, again = _image(page, "#preview")
        assert again.shape[:2] == (256, 384)
        # A merge that fails takes the last result and its downloads away: they are not what the page now asks for.
        page.locator("#exposures textarea, #exposures input").first.fill("0, 4, 4")
        assert "Error" in _merge(page, "have the same exposure")
        expect(page.locator("#preview img")).to_have_count(0, timeout=TIMEOUT_MS)
        expect(page.locator("#download-exr")).to_be_disabled(timeout=TIMEOUT_MS)

        # Nothing was fetched from anywhere but the app itself.
        outside = [request for request in requests if not request.startswith((url.rstrip("/"), "data:", "blob:"))]
        assert not outside, outside

        # Closing the page ends the session, which removes its folder (uploads and outputs).
        sessions = demo.session_folders.root
        assert [path.name for path in sessions.iterdir()]
        page.close()
        deadline = time.monotonic() + 20
        while any(sessions.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(sessions.iterdir()), "the session folder outlived the page"

    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
    print(f"browser walk-through: {time.perf_counter() - start:.1f} s")


def test_session_folders_are_removed_when_the_app_closes():
    chromium_or_skip()
    with served_app() as (_, demo):
        folders = demo.session_folders
        session = folders.folder("abc123")
        (session / "upload.tif").write_bytes(b"x")
        folders.remove("abc123")  # what the page's unload event does
        assert not session.exists() and folders.root.is_dir()
        folders.folder("other")
    assert not folders.root.exists()


def test_tonemap_at_zero_stops_is_the_library_preview_and_stops_brighten():
    from diffhdr_diffusers.app.tonemap import tonemap_at, uncertainty_to_display
    from diffhdr_diffusers.io import tonemap_preview

    radiance = (np.random.default_rng(0).random((24, 32, 3)) ** 3 * 8).astype(np.float32)
    np.testing.assert_array_equal(tonemap_at(radiance, 0.0), tonemap_preview(radiance))
    np.testing.assert_array_equal(tonemap_at(radiance, 1e-12), tonemap_preview(radiance))
    means = [tonemap_at(radiance, stops).mean() for stops in (-2, 0, 2)]
    assert means[0] < means[1] < means[2]
    heat, top = uncertainty_to_display(np.abs(radiance - 1))
    assert heat.shape == (24, 32, 3) and heat.dtype == np.uint8 and top > 0.01
    # a negligible spread stays dark: its ramp tops out at the floor, not at its own 99.5th percentile
    tiny, top = uncertainty_to_display(np.full((8, 8, 3), 1e-4, np.float32))
    assert top == 0.01 and tiny.max() < 40


def test_upload_checks_and_typed_exposures(tmp_path):
    from diffhdr_diffusers.app import session
    from diffhdr_diffusers.errors import ExposureError, InputError

    assert format_exposures([-4.05889, 0.0, 2.0]) == "-4.06, 0, 2"  # EXIF's 1/1000 s against 1/60 s
    assert session.parse_exposures("  ") is None
    assert session.parse_exposures("-2, 0;2 4") == [-2.0, 0.0, 2.0, 4.0]
    for bad in ("0, two", "0, nan", "inf"):
        with pytest.raises(ExposureError):
            session.parse_exposures(bad)
    scene = write_scene(tmp_path / "scene", size=(16, 24))
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    with pytest.raises(InputError, match="notes.pdf: not a bracket image"):
        session.stage_upload([*scene, tmp_path / "notes.pdf"], tmp_path / "staged")
    with pytest.raises(InputError, match="at least 2"):
        session.stage_upload(scene[:1], tmp_path / "staged")
    staged = session.stage_upload([*scene[:2], tmp_path / "scene" / "exposure.txt"], tmp_path / "staged")
    (staged / "exposure.txt").write_text("0\n2\n")
    bracket = session.read_bracket(staged)
    assert bracket.exposures == [0.0, 2.0] and len(bracket.images) == 2
    result = session.merge(bracket, session.MergeSettings(method=session.METHOD_FLOW, ensemble=3))
    assert result.radiance.shape == (16, 24, 3) and result.uncertainty is None and result.warnings
    hdr, exr = session.write_downloads(result.radiance, tmp_path / "out", "long/../name")
    assert (hdr.name, exr.name) == ("long_.._name.hdr", "long_.._name.exr")
    assert read_radiance(exr).shape == (16, 24, 3)


def test_the_status_counts_the_frames_used_and_hides_the_server_folder(tmp_path):
    """A bracket with a frame of another scene: the status says "Merged 2 of 3 exposures" (it said 3), and a
    warning naming a file in the upload folder names the file alone (it showed the server's temporary path)."""
    from diffhdr_diffusers.app import session
    from diffhdr_diffusers.app.ui import merge_status
    from diffhdr_diffusers.data.synth import synthesize_scene

    scene = synthesize_scene(11, 0, size=(120, 160), ev_sets=[(-2.0, 0.0, 2.0)])
    folder = tmp_path / "upload"
    folder.mkdir()
    for index, image in enumerate(scene.images):
        write_ldr(folder / f"{index}.png", image[::-1] if index == 0 else image)  # frame 0: another scene
    (folder / "exposure.txt").write_text("-2\n0\n2\n")
    bracket = session.read_bracket(folder)
    result = session.merge(bracket, session.MergeSettings(method=session.METHOD_FLOW, response="gamma:2.2"))
    result.warnings.append(f"{folder / 'exposure.txt'} gives -2, 0, 2 EV")
    status = merge_status(bracket, result, folder)
    assert status.startswith("**Merged with a fallback:** Merged 2 of 3 exposures at EV -2, 0, 2"), status
    assert "0.png not used" in status and str(folder) not in status and "exposure.txt gives" in status


def test_the_status_says_when_colours_were_converted():
    """Frames with an embedded Adobe RGB profile: the page says their colours were converted, as the CLI does (it
    said nothing; app trial)."""
    from types import SimpleNamespace

    from diffhdr_diffusers.app.ui import merge_status

    result = SimpleNamespace(metadata={"rejected": []}, camera_text="response sRGB", fallback=False, notes=[],
                             warnings=[])
    frames = [np.zeros((4, 4, 3), np.float32)] * 3
    for profile, expected in (("Adobe RGB (1998)", " (Adobe RGB (1998) colours converted to sRGB);"), (None, ";")):
        bracket = SimpleNamespace(images=frames, exposures=[-2.0, 0.0, 2.0], colour_profile=profile)
        assert merge_status(bracket, result) == f"**Done:** Merged 3 exposures at EV -2, 0, 2{expected} response sRGB."

"""The Gradio Blocks page of the web app: inputs on the left, the merge and its views on the right.

Every event handler catches errors: a :class:`~diffhdr_diffusers.errors.DiffHDRError` shows its one-line
message in the status box, anything else a one-line "unexpected error" (the traceback goes to the
server log only). The server keeps serving either way.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no network at run time (set before gradio is imported)

import gradio as gr  # noqa: E402

from ..errors import (  # noqa: E402
    ALLOW_OVERWRITE,
    GIVE_EXPOSURES,
    USE_FLOW_MERGE,
    DiffHDRError,
    ExposureError,
    word_message,
)
from ..io.exposures import format_exposures  # noqa: E402
from . import session as work  # noqa: E402
from .tonemap import ldr_to_display, tonemap_at, uncertainty_to_display  # noqa: E402

logger = logging.getLogger(__name__)

TITLE = "diffhdr-diffusers: merge an exposure bracket into HDR"
INTRO = (
    "Upload two or more exposures of one scene (8/16-bit TIFF, PNG, JPEG or camera RAW), or pick an example. "
    "Exposures come from EXIF or an uploaded exposure file (`exposure.txt` in EV, `exposure_times.txt` in seconds, "
    "`relative_exposures.txt` as ratios), or type them in EV stops. The merge is linear HDR "
    "radiance aligned to the middle exposure; the preview is tonemapped, and the downloads are the radiance itself."
)
_MARKDOWN_SPECIAL = "\\`*_{}[]<>#|~"
RESPONSES = ("auto", "srgb", "gamma:2.2", "linear")
# The page's words for the library's remedies (errors.word_message).
APP_WORDING = {
    GIVE_EXPOSURES: "type the exposures in the Exposures box",
    ALLOW_OVERWRITE: "merge again to replace it",
    USE_FLOW_MERGE: "choose the flow-merge method",
}


def _escape(text: str) -> str:
    return "".join("\\" + char if char in _MARKDOWN_SPECIAL else char for char in text)


def _error_message(error: BaseException, folder: Path | None = None) -> str:
    """One line for the page: the library's message (server temp paths hidden) or a generic one."""
    if isinstance(error, DiffHDRError):
        message = str(error)
    else:
        logger.exception("unexpected error in the web app")
        message = f"unexpected error ({type(error).__name__}: {error}); the server keeps running, please report it."
    return " ".join(word_message(_hide_folder(message, folder), APP_WORDING).split())


def _hide_folder(message: str, folder: Path | None) -> str:
    """``message`` with the server's upload folder left out of its paths (errors, warnings and notes alike)."""
    if folder is None:
        return message
    return message.replace(f"{folder}{os.sep}", "").replace(str(folder), "the upload")


def _status(kind: str, text: str) -> str:
    return f"**{kind}:** {_escape(text)}"


def merge_status(bracket, result, folder: Path | None = None) -> str:
    """The page's status after a merge: what was merged (``2 of 3 exposures`` when frames were not used), the
    camera, then the notes and warnings, with the server's upload folder left out of their paths."""
    count, used = len(bracket.images), len(bracket.images) - len(result.metadata.get("rejected", []))
    merged = f"{count} exposures" if used == count else f"{used} of {count} exposures"
    colours = f" ({bracket.colour_profile} colours converted to sRGB)" if bracket.colour_profile else ""
    text = f"Merged {merged} at EV {format_exposures(bracket.exposures)}{colours}; {result.camera_text}."
    kind = "Merged with a fallback" if result.fallback else "Done"
    return "\n\n".join([_status(kind, text)] + [_status("Note", _hide_folder(note, folder)) for note in result.notes]
                         + [_status("Warning", _hide_folder(warning, folder)) for warning in result.warnings])


def _session_hash(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


def build_demo(model: str | None = None) -> gr.Blocks:
    """Build the app's Blocks. ``model``: a folder or Hub id to preselect as the custom model."""
    folders = work.SessionFolders()
    examples = work.example_brackets()

    def input_folder(request) -> Path:
        return folders.folder(_session_hash(request)) / "inputs"

    def cleared_results():
        return (None, None, None, gr.update(visible=False, value=None),
                gr.update(value=None, interactive=False), gr.update(value=None, interactive=False), "")

    def pick_example(name):
        if not name:
            return gr.update()
        return [str(path) for path in examples[name]]

    def inspect(files, request: gr.Request):
        """A new upload: stage it, show its frames and exposures as read (or ask for them)."""
        folder = input_folder(request)
        if not files:
            return ([], "", "", "Upload a bracket or pick an example.", *cleared_results())
        try:
            work.stage_upload(files, folder)
            try:
                bracket = work.read_bracket(folder)
            except ExposureError as error:
                # Show the frames anyway (placeholder EVs only to read and size-check them), and ask for the EVs.
                bracket = work.read_bracket(folder, exposures=[float(i) for i in range(_count_images(folder))])
                gallery = [(ldr_to_display(image), path.name) for image, path in zip(bracket.images, bracket.paths)]
                if _exposure_source(folder) == "EXIF":
                    message = ("the images carry no EXIF exposure time and no exposure.txt was uploaded. Type one EV "
                               "per image in the Exposures box, in the order shown (short to long), e.g. -2, 0, 2.")
                else:
                    message = _error_message(error, folder) + " Fix the file, or type the EVs in the Exposures box."
                return (gallery, "", "", _status("Exposures needed", message), *cleared_results())
        except Exception as error:  # noqa: BLE001 (every failure becomes a message in the page)
            return ([], "", "", _status("Error", _error_message(error, folder)), *cleared_results())
        read = format_exposures(bracket.exposures)
        gallery = [(ldr_to_display(image), f"{path.name}: EV {format_exposures([ev])}")
                   for image, path, ev in zip(bracket.images, bracket.paths, bracket.exposures)]
        height, width = bracket.images[0].shape[:2]
        text = (f"{len(bracket.images)} exposures, {width}x{height}, EV {read} (read from "
                f"{_exposure_source(folder)}). Choose a method and press Merge.")
        return (gallery, read, read, _status("Ready", text), *cleared_results())

    def run_merge(files, exposures_text, read_text, method, model_id, fast, seed, ensemble, response, stops,
                  request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        folder = input_folder(request)
        try:
            if not files:
                raise work.InputError("no bracket yet: upload two or more exposures or pick an example.")
            work.stage_upload(files, folder)
            typed = None if exposures_text.strip() == (read_text or "").strip() else work.parse_exposures(exposures_text)
            bracket = work.read_bracket(folder, exposures=typed)
            settings = work.MergeSettings(method=method, model=model_id, fast=bool(fast),
                                          seed=int(seed or 0), ensemble=int(ensemble or 1),
                                          response=response or "auto")
            result = work.merge(bracket, settings, lambda fraction, text: progress(fraction, desc=text))
            progress(1.0, desc="Writing .hdr and .exr")
            stem = f"{bracket.paths[len(bracket.paths) // 2].stem}_merged"
            hdr, exr = work.write_downloads(result.radiance, folders.folder(_session_hash(request)) / "outputs", stem,
                                            metadata=result.metadata)
        except Exception as error:  # noqa: BLE001 (the last result and its downloads go: they are not this merge's)
            return (*cleared_results(), _status("Error", _error_message(error, folder)))
        state = {"radiance": result.radiance, "reference": ldr_to_display(result.reference)}
        preview = tonemap_at(result.radiance, float(stops or 0.0))
        if result.uncertainty is not None:
            heat, top = uncertainty_to_display(result.uncertainty)
            uncertainty = gr.update(value=heat, visible=True,
                                    label=f"Uncertainty: ensemble std (mu-law), yellow = {top:.3g} or more")
        else:
            uncertainty = gr.update(value=None, visible=False)
        height, width = result.radiance.shape[:2]
        timing = f"**Time:** {result.seconds:.2f} s with {_escape(result.label)}, {width}x{height} pixels."
        status = merge_status(bracket, result, folder)
        return (state, preview, (state["reference"], preview), uncertainty,
                gr.update(value=str(hdr), interactive=True), gr.update(value=str(exr), interactive=True),
                timing, status)

    def retonemap(state, stops):
        if not state:
            return gr.update(), gr.update()
        preview = tonemap_at(state["radiance"], float(stops or 0.0))
        return preview, (state["reference"], preview)

    def end_session(request: gr.Request):
        folders.remove(_session_hash(request))

    with gr.Blocks(title="diffhdr-diffusers", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        gr.Markdown(f"## {TITLE}\n{INTRO}")
        result_state = gr.State(None)
        read_state = gr.State("")
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                example = gr.Dropdown(choices=[""] + list(examples), value="", label="Example bracket",
                                      visible=bool(examples), elem_id="example")
                files = gr.File(file_count="multiple", label="Bracket images or RAW files (2 or more) and an optional exposure file",
                                elem_id="files")
                frames = gr.Gallery(label="Frames, short to long", columns=4, height=150, object_fit="contain",
                                    allow_preview=False, elem_id="frames")
                exposures = gr.Textbox(label="Exposures (EV stops, short to long)", elem_id="exposures",
                                       placeholder="read from EXIF or the exposure file, or type e.g. -2, 0, 2")
                method = gr.Radio(list(work.METHODS), value=work.METHOD_MODEL, label="Method", elem_id="method")
                model_box = gr.Textbox(value=model or "", label="Model folder or Hub repo id", elem_id="model",
                                       placeholder="path/to/pipeline or user/repo", visible=False)
                with gr.Row():
                    fast = gr.Checkbox(value=True, label="Fast (at most 5 steps)", elem_id="fast")
                    seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed", minimum=0)
                ensemble = gr.Slider(1, work.MAX_ENSEMBLE, value=1, step=1, label="Ensemble (uncertainty map if > 1)",
                                     elem_id="ensemble")
                response = gr.Dropdown(list(RESPONSES), value="auto", elem_id="response",
                                       label="Camera response (auto: estimated from the bracket)")
                merge_button = gr.Button("Merge", variant="primary", elem_id="merge")
                status = gr.Markdown("Upload a bracket or pick an example.", elem_id="status")
            with gr.Column(scale=3, min_width=360):
                preview = gr.Image(label="Tonemapped preview", type="numpy", format="png", interactive=False,
                                   buttons=["download", "fullscreen"], elem_id="preview")
                stops = gr.Slider(-6, 6, value=0, step=0.25, label="Preview exposure (stops)", elem_id="stops")
                compare = gr.ImageSlider(label="Before / after: reference frame | merge", type="numpy", format="png",
                                         interactive=False, max_height=420, elem_id="compare")
                uncertainty = gr.Image(label="Uncertainty", type="numpy", format="png", interactive=False,
                                       buttons=["download", "fullscreen"], visible=False, elem_id="uncertainty")
                with gr.Row():
                    download_hdr = gr.DownloadButton("Download .hdr", interactive=False, elem_id="download-hdr")
                    download_exr = gr.DownloadButton("Download .exr", interactive=False, elem_id="download-exr")
                timing = gr.Markdown("", elem_id="timing")

        results = [result_state, preview, compare, uncertainty, download_hdr, download_exr, timing]
        example.change(pick_example, example, files)
        files.change(inspect, files, [frames, exposures, read_state, status, *results])
        method.change(lambda choice: gr.update(visible=choice == work.METHOD_CUSTOM), method, model_box)
        # The last merge's status goes at once: under the progress bar it read as this merge's result.
        merge_button.click(lambda: _status("Merging", "the result replaces the last one when it is done."), None,
                           status, queue=False, show_progress="hidden").then(
            run_merge, [files, exposures, read_state, method, model_box, fast, seed, ensemble, response, stops],
            [*results, status], concurrency_limit=1)
        stops.change(retonemap, [result_state, stops], [preview, compare], show_progress="hidden",
                     trigger_mode="always_last")
        demo.unload(end_session)
    demo.session_folders = folders
    return demo


def _count_images(folder: Path) -> int:
    from ..io.ldr import LDR_SUFFIXES

    return sum(1 for path in folder.iterdir() if path.suffix.lower() in LDR_SUFFIXES)


def _exposure_source(folder: Path) -> str:
    from ..io.scene import is_exposure_file

    for path in sorted(folder.iterdir()):
        if is_exposure_file(path):
            return path.name
    return "EXIF"


def launch(host: str | None = None, port: int | None = None, model: str | None = None, **kwargs):
    """Build the app and serve it (blocks unless ``prevent_thread_lock=True``); returns ``(demo, url)``.

    ``host``/``port`` default to Gradio's (``GRADIO_SERVER_NAME``/``GRADIO_SERVER_PORT``, else 127.0.0.1:7860),
    which is what Hugging Face Spaces sets. Other keyword arguments go to ``Blocks.launch``.
    """
    demo = build_demo(model)
    allowed = [str(work.EXAMPLES_DIR)] if work.EXAMPLES_DIR.is_dir() else []
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(server_name=host, server_port=port, allowed_paths=allowed, show_error=False,
                            footer_links=[], **kwargs)
    return demo, url


__all__ = ["build_demo", "launch"]

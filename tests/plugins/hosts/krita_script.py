"""Scripts the tests run inside real Krita with `kritarunner` (offscreen, no GUI).

kritarunner exits 0 even when a script raises, so each entry point writes a JSON report and calls
os._exit(1) on any failure. Settings come from the environment variable GANBRIDGE_KRITA_JOB (JSON).

- drive: the plugin's own code (the shared client, canvas module) makes a document, generates from a
  live bridge into a layer and a selection fill (also of a texture with maps), and saves a .kra.
- inspect: opens a .kra and reports its layers (and, under `nested`, those inside groups), their
  pixels (BGRA, written to files) and the GAN Bridge recipes and rating session stored in it.
"""

import json
import os
import sys
import time
import traceback


def _job() -> dict:
    return json.loads(os.environ["GANBRIDGE_KRITA_JOB"])


def _finish(report: dict, path: str, ok: bool) -> None:
    report["ok"] = ok
    with open(path, "w") as f:
        json.dump(report, f)
    sys.stdout.flush()
    if not ok:
        os._exit(1)


def drive(*_args) -> None:
    job = _job()
    report: dict = {}
    try:
        from krita import Krita, Selection

        from ganbridge import canvas
        from ganbridge.ganbridge_client import BridgeClient

        app = Krita.instance()
        report["krita"] = app.version()
        doc = app.createDocument(job["width"], job["height"], "gan", "RGBA", "U8", "", 72.0)
        client = BridgeClient(job["url"], client_name="kritarunner test")
        client.start()
        deadline = time.monotonic() + 30
        while not client.connected:
            client.poll()
            assert time.monotonic() < deadline, f"no connection: {client.state.detail}"
            time.sleep(0.02)

        def one_result(params: dict, generator: str = "texture") -> dict:
            rid = client.request("generate", generator=generator, params=params)
            items, end = [], time.monotonic() + 60
            while True:
                for e in client.poll():
                    if e.kind == "message" and e.data.get("id") == rid:
                        assert e.data["type"] != "error", e.data
                        if e.data["type"] == "result":
                            items += e.data["items"]
                        if e.data["type"] == "done":
                            return items[0]
                assert time.monotonic() < end, "no result in 60 s"
                time.sleep(0.01)

        item = one_result(job["params"])
        recipe = {"item": item["item"], "generator": "texture", "seed": item["seed"], "params": job["params"]}
        report["layer"] = canvas.add_result(doc, item, recipe)
        sel = Selection()
        sel.select(*job["selection"], 255)
        doc.setSelection(sel)
        fill_item = one_result(job["params"])
        fill_recipe = {
            "item": fill_item["item"],
            "generator": "texture",
            "seed": fill_item["seed"],
            "params": job["params"],
        }
        report["fill_layer"] = canvas.add_result(doc, fill_item, fill_recipe, canvas.fill_region(doc))
        # A glyph (pixels with alpha) over a soft selection: alpha times the mask, by Qt's compositing.
        soft = Selection()
        soft.select(*job["selection"], 128)
        doc.setSelection(soft)
        glyph = one_result({"seed": 3}, "image")
        glyph_recipe = {"item": glyph["item"], "generator": "image", "seed": glyph["seed"], "params": {}}
        report["soft_layer"] = canvas.add_result(doc, glyph, glyph_recipe, canvas.fill_region(doc))
        report["items"] = [item["item"], fill_item["item"], glyph["item"]]
        # A texture with every map: a group of layers, as a plain result and tiled over a selection.
        maps_params = {**job["params"], "seed": 6, "maps": ["height", "normal", "roughness", "ao"]}
        for key, region in (("maps_layer", None), ("maps_fill_layer", job["selection"])):
            textured = one_result(maps_params)
            if region is not None:
                sel = Selection()
                sel.select(*region, 255)
                doc.setSelection(sel)
            recipe = {"item": textured["item"], "generator": "texture", "seed": 6, "params": maps_params}
            report[key] = canvas.add_result(doc, textured, recipe, canvas.fill_region(doc) if region else None)
            report[f"{key}_item"] = textured["item"]
        client.stop()
        doc.setBatchmode(True)
        assert doc.saveAs(job["kra"]), "saveAs failed"
        doc.close()
        _finish(report, job["report"], True)
    except Exception:
        report["error"] = traceback.format_exc()
        _finish(report, job["report"], False)


def _describe(node, out: str, key: str) -> dict:
    """A layer's name, id, type, bounds, visibility and children; a paint layer's pixels (and
    projection, with masks) go to files in `out`."""
    b = node.bounds()
    entry = {"name": node.name(), "id": node.uniqueId().toString(), "type": node.type(),
             "bounds": [b.x(), b.y(), b.width(), b.height()], "visible": node.visible(),
             "children": [[c.name(), c.type()] for c in node.childNodes()]}  # fmt: skip
    if node.type() == "paintlayer" and b.width() > 0:
        entry["pixels"] = os.path.join(out, f"layer{key}.bgra")
        with open(entry["pixels"], "wb") as f:
            f.write(bytes(node.pixelData(b.x(), b.y(), b.width(), b.height())))
        if node.childNodes():
            entry["projection"] = os.path.join(out, f"layer{key}.projection.bgra")
            with open(entry["projection"], "wb") as f:
                f.write(bytes(node.projectionPixelData(b.x(), b.y(), b.width(), b.height())))
    return entry


def inspect(*_args) -> None:
    job = _job()
    report: dict = {}
    try:
        from krita import Krita

        app = Krita.instance()
        doc = app.openDocument(job["kra"])
        assert doc is not None, f"Krita could not open {job['kra']}"
        layers, nested = [], []
        for i, node in enumerate(doc.topLevelNodes()):
            layers.append(_describe(node, job["out"], str(i)))
            if node.type() == "grouplayer":
                for j, child in enumerate(node.childNodes()):
                    nested.append({**_describe(child, job["out"], f"{i}-{j}"), "parent": layers[-1]["id"]})
        report["nested"] = nested
        report["layers"] = layers
        report["annotation"] = (
            bytes(doc.annotation("ganbridge")).decode() if "ganbridge" in doc.annotationTypes() else ""
        )
        from ganbridge import recipes  # the plugin's reader, on what Krita loaded from the .kra

        report["session"] = recipes.decode_session(report["annotation"].encode())
        report["size"] = [doc.width(), doc.height()]
        doc.close()
        _finish(report, job["report"], True)
    except Exception:
        report["error"] = traceback.format_exc()
        _finish(report, job["report"], False)

"""Runs inside real Blender (bpy as a Python module) and executes what the tests send it.

One JSON line per request on stdin: {"code": "..."}; the code runs in one namespace that lives as
long as the process (so tests share one warm Blender) and may set `result`. Each answer is one JSON
line on the file descriptor GANBRIDGE_REPLY_FD: {"ok": true, "value": ...} or {"ok": false,
"error": traceback}. Blender's own chatter stays on stdout/stderr.
"""

import json
import os
import sys
import time
import traceback

import bpy

reply = os.fdopen(int(os.environ["GANBRIDGE_REPLY_FD"]), "w", buffering=1)
namespace = {"bpy": bpy, "time": time, "json": json, "os": os}
reply.write(json.dumps({"ok": True, "value": bpy.app.version_string}) + "\n")
for line in sys.stdin:
    request = json.loads(line)
    namespace.pop("result", None)
    try:
        exec(compile(request["code"], "<test snippet>", "exec"), namespace)
        answer = {"ok": True, "value": namespace.get("result")}
    except Exception:
        answer = {"ok": False, "error": traceback.format_exc()}
    reply.write(json.dumps(answer, default=repr) + "\n")
sys.stdout.flush()
os._exit(0)  # bpy's own teardown can hang a module process at exit; nothing is left to clean up

"""Drive the full GIMP under Xvfb: start both, press the plug-in's buttons, take screenshots.

Runs inside the GIMP root with its own Python (stdlib only):
    python3 gui_driver.py SPEC_JSON
SPEC: {"out": folder for screenshots and logs, "batch": batch_gui.py, "dialog_only",
"runs": [{"name", "action", "mode", "clicks"}]} (the same spec batch_gui.py reads). For each run, in
order: wait for the dialog, screenshot it, click at the run's "clicks" (x, y in the dialog), press OK
(Return), or Escape with "dialog_only" (no dialog for mode "last-values"), wait for the progress window, then
  finish: screenshot it and wait until it closes;
  cancel / keep: wait for live previews, screenshot the screen, press Cancel (Alt+C) or
  "Stop and keep result" (Alt+S), wait until it closes.
All along, every message window (GIMP's message boxes: failed PDB calls, Gimp.message) is
recorded in driver.json's "messages", photographed and closed.
Writes OUT/driver.json (what happened, with times) and OUT/gimp.log; exits with GIMP's status.
"""

import json
import os
import subprocess
import sys
import time

DIALOG = "^Neural Style Transfer$"
PROGRESS = "^Neural Style Transfer: running$"
# GIMP's message boxes ("GIMP Message": failed PDB calls, Gimp.message) and any other error or warning window.
MESSAGE = "Message|Error|Warning|no style"
MESSAGES = []  # [{"t", "name", "screenshot"}]: every message window seen, closed after its screenshot
_seen = set()


def xdo(*args, timeout=20):
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=timeout)


def windows(pattern):
    return xdo("search", "--onlyvisible", "--name", pattern).stdout.split()


def check_messages(out):
    """Record, screenshot and close every visible message window (GIMP's message boxes and the like)."""
    for wid in windows(MESSAGE):
        name = xdo("getwindowname", wid).stdout.strip()
        if not name or name.startswith("Neural Style Transfer: running"):
            continue
        key = (wid, name)
        if key in _seen:
            continue
        _seen.add(key)
        shot = os.path.join(out, f"message-{len(MESSAGES) + 1}.png")
        screenshot("root", shot)
        MESSAGES.append({"name": name, "screenshot": os.path.basename(shot), "t": round(time.monotonic(), 1)})
        print("[driver] message window:", name, file=sys.stderr, flush=True)
        press(wid, "Return")


def wait_window(pattern, timeout, out=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if out:
            check_messages(out)
        found = windows(pattern)
        if found:
            return found[0]
        time.sleep(0.2)
    return None


def wait_gone(wid, pattern, timeout, out=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if out:
            check_messages(out)
        if wid not in windows(pattern):
            return True
        time.sleep(0.2)
    return False


def pause(seconds, out):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        check_messages(out)
        time.sleep(0.2)


def screenshot(target, path):
    subprocess.run(["import", "-window", target, path], capture_output=True, timeout=30)
    return os.path.exists(path)


def press(wid, keys):
    xdo("windowfocus", "--sync", wid)
    time.sleep(0.3)
    xdo("key", "--window", wid, keys)


def main():
    spec = json.load(open(sys.argv[1]))
    out = spec["out"]
    os.makedirs(out, exist_ok=True)
    log = {"steps": []}
    t0 = time.monotonic()

    def step(text, **extra):
        entry = {"t": round(time.monotonic() - t0, 1), "step": text, **extra}
        log["steps"].append(entry)
        log["messages"] = MESSAGES
        print("[driver]", entry, file=sys.stderr, flush=True)
        with open(os.path.join(out, "driver.json"), "w") as fh:
            json.dump(log, fh, indent=1)

    xvfb = subprocess.Popen(
        ["Xvfb", ":99", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ["DISPLAY"] = ":99"
    for _ in range(100):
        if xdo("getdisplaygeometry").returncode == 0:
            break
        time.sleep(0.1)
    step("xvfb ready")
    code = f"exec(open({spec['batch']!r}).read())"
    with open(os.path.join(out, "gimp.log"), "w") as gimp_log:
        gimp = subprocess.Popen(
            ["gimp-3.0", "-n", "--no-splash", "--quit", "--batch-interpreter=python-fu-eval", "-b", code],
            stdout=gimp_log,
            stderr=subprocess.STDOUT,
        )
        try:
            for index, run in enumerate(spec["runs"]):
                if run.get("mode") != "last-values":
                    # (X window ids get reused by the next plug-in process: wait for a visible dialog)
                    dialog = wait_window(DIALOG, 180, out)
                    if dialog is None:
                        step("no dialog", run=run["name"])
                        break
                    step("dialog", run=run["name"])
                    pause(1.5, out)
                    screenshot(dialog, os.path.join(out, f"dialog-{run['name']}.png"))
                    if index == 0:
                        screenshot(dialog, os.path.join(out, "dialog.png"))
                        screenshot("root", os.path.join(out, "dialog-screen.png"))
                    for x, y in run.get("clicks", []):  # change settings in the dialog
                        xdo("mousemove", "--window", dialog, str(x), str(y))
                        xdo("click", "1")
                        pause(0.4, out)
                    if run.get("clicks"):
                        screenshot(dialog, os.path.join(out, f"dialog-{run['name']}-changed.png"))
                    if spec.get("dialog_only"):
                        press(dialog, "Escape")
                        step("closed the dialog", run=run["name"])
                        continue
                    press(dialog, "Return")
                    if not wait_gone(dialog, DIALOG, 10, out):
                        step("dialog did not close on Return", run=run["name"])
                        break
                progress = wait_window(PROGRESS, 60, out)
                if progress is None:
                    step("no progress window", run=run["name"])
                    continue
                step("progress window", run=run["name"])
                if run["action"] == "finish":
                    pause(0.5, out)
                    screenshot(progress, os.path.join(out, "progress.png"))
                    closed = wait_gone(progress, PROGRESS, 300, out)
                    step("finished" if closed else "progress window stayed open", run=run["name"])
                else:
                    pause(run.get("wait_s", 3.5), out)
                    screenshot("root", os.path.join(out, f"running-{run['name']}.png"))
                    screenshot(progress, os.path.join(out, f"progress-{run['name']}.png"))
                    press(progress, "alt+c" if run["action"] == "cancel" else "alt+s")
                    pressed = time.monotonic()
                    step("pressed " + run["action"], run=run["name"])
                    closed = wait_gone(progress, PROGRESS, 90, out)
                    step(
                        "stopped" if closed else "progress window stayed open",
                        run=run["name"],
                        stop_s=round(time.monotonic() - pressed, 1),
                    )
            try:
                end = time.monotonic() + 120
                while gimp.poll() is None and time.monotonic() < end:
                    pause(1.0, out)
                    # a run the steps above did not finish: close its windows so that GIMP can quit
                    for wid in windows(DIALOG):
                        step("closing a leftover dialog")
                        press(wid, "Escape")
                    for wid in windows(PROGRESS):
                        step("cancelling a leftover run")
                        press(wid, "alt+c")
                gimp.wait(timeout=1)
            except subprocess.TimeoutExpired:
                step("gimp did not quit: killing it")
                gimp.kill()
                gimp.wait()
            step("gimp exited", code=gimp.returncode)
        finally:
            if gimp.poll() is None:
                gimp.kill()
            xvfb.terminate()
            xvfb.wait()
    return gimp.returncode


if __name__ == "__main__":
    sys.exit(main())

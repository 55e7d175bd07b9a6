"""Drives headless Chromium over the DevTools protocol against a running `lab serve` (used by
scripts/browser.sh): every tab of the page loads without console errors, shows what the results
folder holds (the runs table's rows, one curve per finished run, the fit's tables, every figure), a
run that finishes while the page is open appears without a reload, and each tab's screenshot is not
blank.

    python3 browser_check.py ADDR RESULTS_ROOT SWEEP PARKED_STATUS STATUS_PATH DEVTOOLS_PORT OUT_DIR
"""
import base64, json, os, struct, sys, time, urllib.request, zlib
import polars as pl
import websocket

addr, root, sweep, parked, status_path, port, out = sys.argv[1:8]
sweep_dir = os.path.join(root, sweep)


class Tab:
    def __init__(self):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
        info = json.load(urllib.request.urlopen(req))
        self.ws = websocket.create_connection(info["webSocketDebuggerUrl"], timeout=30)
        self.next_id, self.errors = 0, []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.event(msg)

    def event(self, msg):
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Runtime.exceptionThrown":
            self.errors.append(p["exceptionDetails"].get("text", "exception"))
        elif m == "Runtime.consoleAPICalled" and p.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", "")) for a in p.get("args", [])))
        elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
            self.errors.append(p["entry"].get("text", ""))

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")

    def wait(self, expr, what, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if self.js(expr):
                return
            time.sleep(0.2)
        seen = self.js("document.getElementById('view').innerText.slice(0, 300)")
        raise SystemExit(f"browser: timed out waiting for {what}; console errors {self.errors}; the page shows: {seen!r}")

    def screenshot(self, path):
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        open(path, "wb").write(data)
        return data


def png_pixels(data):
    """Decodes an 8-bit RGB or RGBA PNG (what Chromium writes) into rows of pixel tuples."""
    pos, chunks, ihdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + n
    w, h, depth, ctype = ihdr[:4]
    assert depth == 8 and ctype in (2, 6), ihdr
    bpp = 3 if ctype == 2 else 4
    raw, stride, rows, prev = zlib.decompress(b"".join(chunks)), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return rows


def not_blank(data, name):
    rows = png_pixels(data)
    counts = {}
    for row in rows[::4]:
        for p in row[::4]:
            counts[p] = counts.get(p, 0) + 1
    total, top = sum(counts.values()), max(counts.values())
    assert len(counts) > 20 and top / total < 0.97, f"{name}: screenshot looks blank ({len(counts)} colours, {top / total:.1%} one colour)"
    return len(counts), top / total


runs = pl.read_parquet(os.path.join(sweep_dir, "runs.parquet"))
n_runs = runs.height
figures = sorted(f for f in os.listdir(os.path.join(sweep_dir, "plots")) if f.endswith(".png"))
tab = Tab()
base = f"http://{addr}/#sweep={sweep}&tab="
report = []

# Runs: one row per run; the parked run shows as pending, then done once its status returns.
tab.call("Page.navigate", url=base + "runs")
tab.wait(f"document.querySelectorAll('#view tbody tr').length === {n_runs}", f"{n_runs} rows in the runs table")
tab.wait("document.querySelectorAll('#view .badge.pending').length === 1", "the unfinished run shown as pending")
shot = tab.screenshot(os.path.join(out, "runs.png"))
report.append(("runs", not_blank(shot, "runs")))
tab.js("window.sameDocument = true")
os.rename(parked, status_path)
tab.wait(f"document.querySelectorAll('#view .badge.done').length === {n_runs}", "the finished run", timeout=15)
assert tab.js("window.sameDocument === true"), "the page reloaded"  # the same document: no reload

# Curves: one series per finished run.
tab.call("Page.navigate", url=base + "curves")
tab.wait(f"document.querySelectorAll('path.series').length === {n_runs}", f"{n_runs} curves")
report.append(("curves", not_blank(tab.screenshot(os.path.join(out, "curves.png")), "curves")))

# Fit: the fit tables.
tab.call("Page.navigate", url=base + "fit")
tab.wait("document.querySelectorAll('.fit table').length > 0", "the fit's tables")
report.append(("fit", not_blank(tab.screenshot(os.path.join(out, "fit.png")), "fit")))

# Figures: every PNG of plots/, loaded.
tab.call("Page.navigate", url=base + "figures")
tab.wait(f"[...document.querySelectorAll('img.fig')].filter(i => i.complete && i.naturalWidth > 0).length === {len(figures)}",
         f"{len(figures)} figures")
report.append(("figures", not_blank(tab.screenshot(os.path.join(out, "figures.png")), "figures")))

# Drain late events, then no console errors anywhere.
tab.js("1")
assert not tab.errors, f"console errors: {tab.errors}"
for name, (colours, share) in report:
    print(f"browser: {name} tab drawn ({colours} colours, the commonest {share:.0%} of the screenshot)")
print(f"browser: {n_runs} runs, {n_runs} curves, {len(figures)} figures; a run finishing appeared without a reload; no console errors")

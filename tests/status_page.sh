#!/usr/bin/env bash
# End to end: the status page that nonstopd serves at `/`, in headless
# Chromium driven over WebDriver (chromedriver, plain HTTP from python3's
# urllib). Two channels; the primary of "news" stalls 4 s in every 12 s.
# The page shows a card per channel with its inputs in order and the active
# input highlighted as /api/status says; every thumbnail <img> loads a real
# 320 px JPEG and is reloaded every 2 s; the thumbnails the server serves
# are JPEGs that change as the picture moves; a failover shows on the page
# (the backup highlighted, the channel degraded, the switch in the events)
# within 2 s of showing in /api/status, without a reload. The screenshot
# taken then is kept as docs/status-page.png with UPDATE=1.
source "$(dirname "$0")/common.bash"
for b in chromium chromedriver; do
  command -v "$b" >/dev/null || fail "$b is not installed (scripts/bootstrap installs the Debian packages chromium and chromium-driver)"
done
cargo build --release --quiet -p nonstop-supervisor

http_port=$(free_port)
cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "news"
video = { width = 320, height = 240, framerate = 25 }
timeout = "500ms"
return_after = "2s"

[[channel.input]]
id = "primary"
uri = "test://ball?label=PRIMARY&stall=12s/4s"

[[channel.input]]
id = "backup"
uri = "test://smpte?label=BACKUP"

[channel.encoder]
backend = "x264"
preset = "ultrafast"
keyframe_interval = "1s"

[[channel.output]]
id = "udp"
uri = "udp://127.0.0.1:$(free_port)"

[[channel]]
id = "sport"
video = { width = 320, height = 240, framerate = 25 }

[[channel.input]]
id = "cam"
uri = "test://ball?label=CAM"

[[channel.input]]
id = "slate"
uri = "slate://colour/blue?text=Please%20stand%20by"

[channel.encoder]
backend = "x264"
preset = "ultrafast"
keyframe_interval = "1s"

[[channel.output]]
id = "udp"
uri = "udp://127.0.0.1:$(free_port)"
TOML
log="$WORK/nonstopd.log"
RUST_LOG=info spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" --no-dbus --metrics "127.0.0.1:$http_port" 2>"$log"

wd_port=$(free_port)
mkdir -p "$WORK/tmp"
spawn driver env TMPDIR="$WORK/tmp" chromedriver --port="$wd_port" --log-path="$WORK/chromedriver.log" >/dev/null 2>&1

cat >"$WORK/page.py" <<'PY'
import base64, json, subprocess, sys, time, urllib.error, urllib.request

BASE, WD, SHOT = sys.argv[1], sys.argv[2], sys.argv[3]
FLAKY = "news"  # the channel whose primary stalls


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def http(url, body=None, method=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.headers, r.read()


def until(what, seconds, probe, every=0.05):
    """Polls probe() until it returns a true value; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    last = None
    while True:
        try:
            v = probe()
            if v:
                return v
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            v = e
        last = v
        if time.monotonic() > deadline:
            fail(f"{what}: not within {seconds} s (last: {last!r})")
        time.sleep(every)


def api():
    return json.loads(http(BASE + "/api/status", timeout=5)[2])


class Browser:
    def __init__(self):
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"]},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        try:
            self.sid = json.loads(http(WD + "/session", caps, timeout=60)[2])["value"]["sessionId"]
        except urllib.error.HTTPError as e:
            fail("chromedriver cannot start Chromium: " + e.read().decode(errors="replace")[:500])

    def cmd(self, method, path, body=None):
        try:
            return json.loads(http(f"{WD}/session/{self.sid}{path}", body, method, timeout=30)[2])["value"]
        except urllib.error.HTTPError as e:
            fail(f"WebDriver {method} {path}: " + e.read().decode(errors="replace")[:500])

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def close(self):
        try:
            http(f"{WD}/session/{self.sid}", method="DELETE", timeout=30)
        except Exception:
            pass


# What the page shows, as plain data.
PAGE_STATE = """
return [...document.querySelectorAll('[data-channel]')].map(c => ({
  id: c.dataset.channel,
  state: (c.querySelector('[data-state]') || {}).dataset?.state ?? null,
  inputs: [...c.querySelectorAll('[data-input]')].map(i => [i.dataset.input, i.dataset.active]),
  events: [...c.querySelectorAll('[data-events] li')].map(l => l.textContent),
}));"""


def page_matches(b, st):
    page = b.js(PAGE_STATE)
    want = [c["id"] for c in st["channels"]]
    if [c["id"] for c in page] != want:
        return None
    for c, s in zip(page, st["channels"]):
        inputs = [(i["id"], "true" if i["id"] == s.get("active_input") else "false") for i in s["inputs"]]
        if [tuple(i) for i in c["inputs"]] != inputs or c["state"] != s["state"]:
            return None
    return page


def is_jpeg(b):
    return len(b) > 200 and b[:3] == b"\xff\xd8\xff" and b.rstrip(b"\0")[-2:] == b"\xff\xd9"


def jpeg_width(b):
    out = subprocess.run(["ffprobe", "-v", "error", "-f", "jpeg_pipe", "-i", "-", "-show_entries", "stream=codec_name,width,height",
                          "-of", "csv=p=0"], input=b, capture_output=True, timeout=20)
    return out.stdout.decode().strip()


# --- nonstopd is up and serves the page ------------------------------------
st = until("every channel on air in /api/status", 20,
           lambda: (s := api()) and all(c.get("active_input") for c in s["channels"]) and s)
code, headers, body = http(BASE + "/", timeout=5)
if code != 200 or "text/html" not in headers.get("Content-Type", ""):
    fail(f"GET / answered {code} {headers.get('Content-Type')}")
page_src = body.decode()
for needle in ("api/status", "data-channel", "data-thumb"):
    if needle not in page_src:
        fail(f"GET / is not the status page (no {needle!r} in {len(body)} bytes)")
if any(x in page_src for x in ("http://", "https://", "//fonts.", "<link rel=\"stylesheet\"")):
    fail("the page refers to an external asset")
print(f"   GET /: the status page, {len(body)} bytes, no external assets")

until("chromedriver ready", 20, lambda: json.loads(http(WD + "/status", timeout=2)[2])["value"]["ready"])
b = Browser()
try:
    b.cmd("POST", "/url", {"url": BASE + "/"})
    b.js("window.__loaded_once = true;")

    # --- cards, inputs, the active input -----------------------------------
    page = until("the page shows every channel, its inputs and the active input as /api/status does", 10,
                 lambda: page_matches(b, api()))
    for c in page:
        print(f"   card {c['id']} ({c['state']}): inputs " +
              ", ".join(f"{i}{' [ON AIR]' if a == 'true' else ''}" for i, a in c["inputs"]))
    tags = b.js("return [...document.querySelectorAll('[data-input][data-active=\"true\"]')]"
                ".map(i => getComputedStyle(i.querySelector('.tag.onair')).display)")
    if not tags or any(t == "none" for t in tags):
        fail(f"the active inputs show no ON AIR tag: {tags}")

    # --- thumbnails in the page: loaded, 320 px, reloaded every 2 s --------
    n_thumbs = sum(len(c["inputs"]) + 1 for c in st["channels"])
    THUMBS = "return [...document.querySelectorAll('img[data-thumb]')].map(i => [i.dataset.thumb, i.complete && i.naturalWidth, i.currentSrc || i.src])"
    thumbs = until(f"all {n_thumbs} thumbnails loaded in the page", 12,
                   lambda: (t := b.js(THUMBS)) and len(t) == n_thumbs and all(w for _, w, _ in t) and t, every=0.2)
    widths = sorted({w for _, w, _ in thumbs})
    if widths != [320]:
        fail(f"thumbnail widths in the page: {widths}, want 320")
    if not all("?t=" in src or "&t=" in src for _, _, src in thumbs):
        fail(f"a thumbnail is loaded without a cache-busting query: {thumbs}")
    before = {src for _, _, src in thumbs}
    t0 = time.monotonic()
    until("every thumbnail <img> reloaded", 3.5,
          lambda: (t := b.js(THUMBS)) and all(w and src not in before for _, w, src in t), every=0.1)
    print(f"   {n_thumbs} thumbnails 320 px wide in the page, all reloaded within {time.monotonic() - t0:.1f} s")

    # --- thumbnails from the server: JPEGs that change ---------------------
    steady = next(c for c in st["channels"] if c["id"] != FLAKY)
    for path in (steady["inputs"][0].get("thumbnail"), steady.get("program_thumbnail")):
        if not path:
            fail(f"/api/status names no thumbnail for channel {steady['id']}")
        first = http(BASE + path, timeout=5)[2]
        if not is_jpeg(first):
            fail(f"{path} is not a JPEG: {first[:16]!r}… ({len(first)} bytes)")
        probe = jpeg_width(first)
        if not probe.startswith("mjpeg,320,"):
            fail(f"{path}: ffprobe says {probe!r}, want a 320 px wide JPEG")
        t0 = time.monotonic()
        second = until(f"{path} changes", 6, lambda: (x := http(BASE + path, timeout=5)[2]) != first and x, every=0.25)
        if not is_jpeg(second):
            fail(f"{path} (refreshed) is not a JPEG")
        print(f"   {path}: JPEG {probe.replace(',', ' ', 1).replace(',', 'x')}, {len(first)} → {len(second)} bytes, "
              f"new picture after {time.monotonic() - t0:.1f} s")

    # --- a failover of news shows on the page within 2 s -------------------
    def active():
        return next(c for c in api()["channels"] if c["id"] == FLAKY)["active_input"]

    until(f"{FLAKY} on its primary", 20, lambda: active() == "primary")
    until(f"{FLAKY} failing over to its backup (the primary stalls 4 s in every 12 s)", 16,
          lambda: active() == "backup", every=0.02)
    switched = time.monotonic()
    sel = f'[data-channel="{FLAKY}"]'
    until("the page highlights the backup", 2.0, lambda: b.js(
        f"return document.querySelector('{sel} [data-input=\"backup\"]').dataset.active === 'true' && "
        f"document.querySelector('{sel} [data-input=\"primary\"]').dataset.active === 'false'"), every=0.02)
    shown = time.monotonic() - switched
    print(f"   {FLAKY}: switched to backup in /api/status; the page highlighted it {shown * 1000:.0f} ms later")
    if shown > 2.0:
        fail(f"the page showed the failover {shown:.2f} s after /api/status (want <= 2 s)")
    # Both must be there: a check that skipped itself when /api/status
    # lacked them would pass with the feature broken.
    def flaky():
        return next(c for c in api()["channels"] if c["id"] == FLAKY)

    until("/api/status reports the channel degraded", 2.0, lambda: flaky()["state"] == "degraded", every=0.02)
    until("the page shows the channel degraded", max(0.1, 2.0 - (time.monotonic() - switched)),
          lambda: b.js(f"return document.querySelector('{sel} [data-state]').dataset.state") == "degraded", every=0.02)
    print(f"   {FLAKY}: state degraded in /api/status and on the page")
    until("/api/status lists the switch in the recent events", 2.0,
          lambda: any("primary → backup" in e.get("text", "") for e in flaky().get("events", [])), every=0.02)
    until("the page lists the switch in the recent events", max(0.1, 2.0 - (time.monotonic() - switched)),
          lambda: any("primary → backup" in e for e in b.js(f"return [...document.querySelectorAll('{sel} [data-events] li')].map(l => l.textContent)")),
          every=0.02)
    print(f"   {FLAKY}: the switch is in the recent events of /api/status and the page")
    if not b.js("return window.__loaded_once === true"):
        fail("the page reloaded itself")

    # --- screenshot: with the backup on air and the program picture of it ---
    time.sleep(max(0.0, 3.2 - (time.monotonic() - switched)))
    png = base64.b64decode(b.cmd("GET", "/screenshot"))
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 20000:
        fail(f"the screenshot is not a PNG of a page ({len(png)} bytes)")
    open(SHOT, "wb").write(png)
    w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    print(f"   screenshot {w}x{h}, {len(png)} bytes")

    # --- no script errors in the page --------------------------------------
    logs = b.cmd("POST", "/se/log", {"type": "browser"}) or []
    errors = [l["message"] for l in logs if l.get("level") == "SEVERE" and "Failed to load resource" not in l["message"]]
    if errors:
        fail("errors in the page's console: " + " | ".join(errors[:5]))
finally:
    b.close()
PY

"$PY" "$WORK/page.py" "http://127.0.0.1:$http_port" "http://127.0.0.1:$wd_port" "$WORK/status-page.png" ||
  { echo "--- nonstopd log:" >&2; tail -n 20 "$log" >&2; fail "the status page"; }

kill -TERM "$daemon"
rc=0
wait_exit "$daemon" || rc=$?
((rc == 0)) || fail "nonstopd exited with $rc"
# The screenshot in docs/ is refreshed on request only: a test run leaves
# the tree as it found it.
if [[ ${UPDATE:-} == 1 ]]; then
  cp "$WORK/status-page.png" "$ROOT/docs/status-page.png"
  echo "   kept the screenshot as docs/status-page.png"
fi
echo "PASS status_page"

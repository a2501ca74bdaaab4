"""The facilitator dashboard in a real browser: Debian's chromium, driven by Playwright.

A real gRPC server and the dashboard's HTTP server share one LiveEngine on loopback;
the bundled sample is replayed into it as a video server would send it. The browser
signs in with a facilitator token, sees tiles appear and change, acknowledges a real
alert (a withdrawal alert about the quiet participant, with thresholds lowered so the
3-minute sample raises one), and is refused with a wrong token or another session's.
Screenshots go to artifacts/ (gitignored); GROUPSENSE_DOCS_IMG=1 also writes the
README's docs/img/dashboard.png and docs/img/report.png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli import replay as replay_cli
from engine.auth import create_token, new_secret
from engine.config import AlertConfig, EngineConfig, ServerConfig
from engine.dashboard.http import DashboardServer
from engine.sample import sample_session
from engine.server import Server
from tests.live_util import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
S = "group-7"
ARTIFACTS = REPO / "artifacts"

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright (a dev dependency) is not installed"
)
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"{CHROMIUM} is missing: `./run test` installs Debian's chromium",
        allow_module_level=True,
    )
expect = playwright_api.expect


# Every visible text's contrast against the background it sits on (WCAG 2 formula):
# 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold).
CONTRAST_JS = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
    .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  const bg = e => { for (; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3); }
    return [255, 255, 255]; };
  const bad = [];
  for (const e of document.querySelectorAll('body *')) {
    if (!e.offsetParent || e.closest('svg')) continue;
    const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const st = getComputedStyle(e);
    const a = lum(rgb(st.color)), b = lum(bg(e));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) bad.push(e.textContent.trim().slice(0, 30) + ' ' + ratio.toFixed(2));
  }
  return bad;
}"""


@dataclass
class Stack:
    server: Server
    dash: DashboardServer
    secret: bytes

    def token(self, role: str, *sessions: str, subject: str = "dr-lee") -> str:
        return create_token(
            self.secret, role=role, sessions=list(sessions), ttl_s=3600, subject=subject
        )


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    secret_file = tmp_path / "secret"
    secret_file.write_text(new_secret())
    secret_file.chmod(0o600)
    config = EngineConfig(
        server=ServerConfig(port=0, secret_file=str(secret_file)),
        # Low thresholds so the 3-minute sample raises a withdrawal alert (the quiet
        # participant says nothing for the first ~50 s while the others talk).
        alerts=AlertConfig(withdrawal_min=0.5, withdrawal_others_s=10.0),
    )
    server = Server(config)
    await server.start()
    secret = config.server.read_secret()
    assert secret is not None
    dash = DashboardServer(server.engine, secret, config.server, port=0)
    await dash.start()
    try:
        yield Stack(server, dash, secret)
    finally:
        await server.stop()
        await dash.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


def _replay(stack: Stack, speed: float | None, names: dict[str, str]) -> asyncio.Task[int]:
    args = argparse.Namespace(
        server=f"127.0.0.1:{stack.server.port}",
        token=stack.token("ingest", S, subject="video-server"),
        tls_ca=None,
        tls_cert=None,
        tls_key=None,
        session=S,
        codec="pcm",
        quiet=True,
    )
    return asyncio.create_task(replay_cli.replay(args, [str(sample_session())], speed, names))


async def _sign_in(page: Any, url: str, token: str) -> None:
    await page.goto(url)
    await expect(page.locator("#signin")).to_be_visible()
    await page.fill("#token", token)
    await page.press("#token", "Enter")


def _console(msg: Any, into: list[str]) -> None:
    """Script errors fail the test; the refusals we provoke (401/403) are not errors."""
    if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
        into.append(msg.text)


def _save(data: bytes, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.write_bytes(data)
    if os.environ.get("GROUPSENSE_DOCS_IMG") and name in ("dashboard.png", "report.png"):
        (REPO / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, REPO / "docs" / "img" / name)
    return path


async def test_live_dashboard_in_chromium(stack: Stack, browser: Any) -> None:
    url = stack.dash.url
    names: dict[str, str] = {}
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: _console(m, problems))
    page.on("pageerror", lambda e: problems.append(str(e)))

    # A forged token and an ingest token are refused, with a reason in words.
    await _sign_in(page, url, "gs1.e30.bm90LWEtc2lnbmF0dXJl")
    await expect(page.locator("#signin-error")).to_contain_text("signature does not verify")
    await page.fill("#token", stack.token("ingest", S))
    await page.press("#token", "Enter")
    await expect(page.locator("#signin-error")).to_contain_text("use a facilitator token")
    assert await page.locator("#tiles > li").count() == 0

    # Signed in before anyone joins: a calm waiting panel, then tiles as streams arrive.
    await page.fill("#token", stack.token("facilitator", S))
    await page.press("#token", "Enter")
    await expect(page.locator("#waiting")).to_be_visible()
    cookies = await ctx.cookies()
    assert [c["name"] for c in cookies] == ["gs_token"] and cookies[0]["httpOnly"]
    assert cookies[0]["sameSite"] == "Strict"

    sender = _replay(stack, 4.0, names)
    try:
        tiles = page.locator("#tiles > li")
        await expect(tiles).to_have_count(4, timeout=30_000)
        pids = set(names)
        shown = {await t.get_attribute("data-pid") for t in await tiles.all()}
        assert shown == pids  # pseudonyms only; the refs stay with the sender
        html = await page.content()
        assert not re.search(r"\b(ana|ben|cleo)\b", html)

        # Values change: the session clock and someone's share move on; someone speaks.
        clock = page.locator("#strip dd").first
        first = await clock.inner_text()
        await expect(page.locator(".tile.speaking").first).to_be_visible(timeout=15_000)
        await expect(clock).not_to_have_text(first, timeout=5_000)
        shares = [await t.locator(".pct").inner_text() for t in await tiles.all()]
        await page.wait_for_function(
            "old => [...document.querySelectorAll('#tiles .pct')].map(e => e.textContent)"
            ".join() !== old.join()",
            arg=shares,
            timeout=10_000,
        )
        await expect(page.locator("#timeline svg rect").first).to_be_visible()

        # A real alert: withdrawal of the quiet participant, acknowledged by keyboard.
        cleo = next(pid for pid, ref in names.items() if ref == "cleo")
        ack = page.locator("#alerts li.alert button.ack").first
        await expect(ack).to_be_visible(timeout=60_000)
        item = page.locator("#alerts li.alert").first
        alert_id = await item.get_attribute("data-alert-id")
        assert alert_id is not None and alert_id.startswith(f"withdrawal:{cleo}:")
        await expect(item).to_contain_text("has not spoken")
        _save(await page.screenshot(full_page=True), "dashboard.png")
        await ack.focus()
        await page.keyboard.press("Enter")
        done = page.locator(f'#acked li[data-alert-id="{alert_id}"]')
        await expect(done).to_have_count(1)
        await expect(page.locator(f'#alerts li[data-alert-id="{alert_id}"]')).to_have_count(0)
        assert stack.dash._acks.is_acked(S, "dr-lee", alert_id)
        # ... per facilitator: a colleague's token has not acknowledged it.
        other = stack.token("facilitator", S, subject="dr-kim")
        r = await ctx.request.fetch(
            f"{url}api/sessions/{S}/alerts/{alert_id}/ack",
            method="POST",
            headers={"Authorization": f"Bearer {other}", "Content-Type": "application/json"},
            data="{}",
        )
        assert r.status == 200
        assert stack.dash._acks.is_acked(S, "dr-kim", alert_id)
        r = await ctx.request.fetch(
            f"{url}api/sessions/{S}/alerts/no-such-alert/ack",
            method="POST",
            headers={"Content-Type": "application/json"},
            data="{}",
        )
        assert r.status == 404

        # A nickname lives in this browser only.
        tile = tiles.first
        pid = await tile.get_attribute("data-pid")
        await tile.locator("button.rename").click()
        await page.keyboard.type("Robin")
        await page.keyboard.press("Enter")
        await expect(tile.locator(".name")).to_have_text("Robin")
        stored = await page.evaluate(f"localStorage.getItem('groupsense.nick.{S}.{pid}')")
        assert stored == "Robin"

        # A reload (or a second screen) gets the last ten minutes at once, from the server,
        # and the nickname from this browser's storage.
        before = await page.evaluate("document.querySelectorAll('#timeline rect').length")
        await page.reload()
        await expect(tiles).to_have_count(4)
        after = await page.evaluate("document.querySelectorAll('#timeline rect').length")
        assert after >= 5 and after >= before - 2, (before, after)
        await expect(page.locator(f'#tiles > li[data-pid="{pid}"] .name')).to_have_text("Robin")

        # Live updates arrive at least once a second.
        seqs = await page.evaluate(
            """sid => new Promise(done => {
                const seen = []; const es = new EventSource('/api/sessions/' + sid + '/events');
                es.addEventListener('snapshot', e => seen.push(JSON.parse(e.data).seq));
                setTimeout(() => { es.close(); done(seen); }, 3500);
            })""",
            S,
        )
        assert len(seqs) >= 3, seqs

        _save(await page.screenshot(full_page=True), "dashboard-acked.png")
        low = await page.evaluate(CONTRAST_JS)
        assert not low, f"text below WCAG AA contrast: {low}"
        # Everything that acts is reachable by keyboard, with a name.
        unnamed = await page.evaluate(
            """() => [...document.querySelectorAll('button, a[href], input, select, summary')]
                .filter(e => e.offsetParent !== null)
                .filter(e => !(e.getAttribute('aria-label') || e.textContent.trim()
                    || (e.labels && e.labels.length)))
                .map(e => e.outerHTML.slice(0, 80))"""
        )
        assert not unnamed, unnamed

        # Tablet width: one column, alerts first, nothing wider than the screen.
        await page.set_viewport_size({"width": 768, "height": 1024})
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 768
        aside = await page.locator("aside.col-side").bounding_box()
        grid = await page.locator("#tiles").bounding_box()
        assert aside is not None and grid is not None
        assert aside["y"] < grid["y"] and abs(aside["x"] - grid["x"]) < 20
        _save(await page.screenshot(full_page=True), "dashboard-768.png")

        # Another session's facilitator sees nothing of this one.
        ctx2 = await browser.new_context(viewport={"width": 1280, "height": 800})
        page2 = await ctx2.new_page()
        await _sign_in(page2, url, stack.token("facilitator", "another-group", subject="x"))
        await expect(page2.locator("#waiting")).to_be_visible()
        assert await page2.locator("#tiles > li").count() == 0
        listed = await (await ctx2.request.get(f"{url}api/sessions")).json()
        assert [s["session_id"] for s in listed["sessions"]] == ["another-group"]
        for path in (f"api/sessions/{S}", f"api/sessions/{S}/events", f"report/{S}"):
            r = await ctx2.request.get(url + path)
            assert r.status == 403, path
        for pid_ in pids:
            assert pid_ not in await page2.content()
        await ctx2.close()

        # No cookie, no data.
        ctx3 = await browser.new_context()
        r = await ctx3.request.get(f"{url}api/sessions/{S}")
        assert r.status == 401
        await ctx3.close()
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender

    # The session ends: the view says so, and the report is one click away.
    await stack.server.engine.end_session(S)
    await expect(page.locator("#status")).to_contain_text("has ended", timeout=10_000)
    report = await ctx.new_page()
    await report.goto(f"{url}report/{S}")
    await expect(report.locator("h1")).to_have_text("Session report")
    await expect(report.locator("#s-alerts")).to_be_visible()
    await expect(report.locator("body")).to_contain_text("withdrawal")
    # The dashboard recorded who spoke when, so a live session's report has it too.
    assert await report.locator("#s-time ~ svg rect").count() > 10
    _save(await report.screenshot(full_page=True), "report-live.png")
    pdf = await report.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    assert not problems, problems
    await ctx.close()


async def test_report_from_analysis_json_in_chromium(tmp_path: Path, browser: Any) -> None:
    """`groupsense report ANALYSIS.json`: a self-contained page with every section."""
    from cli.main import main

    analysis = tmp_path / "analysis.json"
    assert main(["analyze", "--json", str(analysis)]) == 0
    out = tmp_path / "report.html"
    assert main(["report", str(analysis), "--out", str(out)]) == 0
    html = out.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "<script" not in html
    data = json.loads(analysis.read_text())
    truth = json.loads((sample_session().parent / "truth.json").read_text())
    silence = truth["events"]["group_silences"][0]
    ctx = await browser.new_context(viewport={"width": 900, "height": 1200})
    page = await ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: _console(m, problems))
    await page.goto(out.as_uri())
    for section in ("s-shares", "s-time", "s-follow", "s-sil", "s-cues"):
        await expect(page.locator(f"#{section}")).to_be_visible()
    assert await page.locator("svg").count() >= 4
    # The 10 s group silence of the script is found and dated.
    silences = await page.locator("#s-sil").locator("..").locator("li").all_inner_texts()
    starts = [int(s.split(":")[0]) * 60 + int(s.split(":")[1][:2]) for s in silences]
    assert any(abs(s - silence[0]) <= 1.5 for s in starts), (silences, silence)
    # The quietest person is named in the reading.
    quiet = min(data["participants"], key=lambda p: p["share"])["name"]
    await expect(page.locator("#s-shares ~ p.reading")).to_contain_text(f"{quiet} least")
    # Who follows whom: the matrix counts add up to the hand-overs in the reading.
    cells = await page.locator("#s-follow ~ table td").all_inner_texts()
    total = sum(int(c) for c in cells if c.isdigit())
    await expect(page.locator("#s-follow ~ p.reading")).to_contain_text(f"{total} times")
    pdf = await page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    _save(await page.screenshot(full_page=True), "report.png")
    assert not problems, problems
    await ctx.close()


async def test_optional_signals_render_only_when_present(browser: Any) -> None:
    """Cue badges (the affect work's) and other optional fields: shown with plain-words
    evidence when a snapshot has them, absent otherwise. The snapshot is handed to the
    page's own render function, as the event stream would."""
    from engine.config import LiveConfig, VadConfig
    from engine.live import LiveEngine

    engine = LiveEngine(LiveConfig(), VadConfig())
    dash = DashboardServer(engine, None, ServerConfig(port=0), port=0)
    await dash.start()
    try:
        page = await (await browser.new_context()).new_page()
        await page.goto(dash.url)
        await expect(page.locator("#waiting")).to_be_visible()  # no auth: no sign-in
        base = {
            "session_id": "s", "seq": 1, "session_ms": 65_000, "events": [], "final": False,
            "participants": [
                {"participant_id": "p-1", "role": "participant", "connected": True,
                 "speaking": False, "speaking_s": 20.0, "share": 0.6,
                 "since_last_spoke_s": 4.0, "unknown_s": 0.0},
                {"participant_id": "p-2", "role": "facilitator", "connected": False,
                 "speaking": False, "speaking_s": 13.0, "share": 0.4,
                 "since_last_spoke_s": -1.0, "unknown_s": 3.0},
            ],
        }  # fmt: skip
        await page.evaluate("snap => render(snap)", base)
        await expect(page.locator(".cue")).to_have_count(0)
        await expect(page.locator("#strip")).not_to_contain_text("balance")
        assert await page.locator("#follows-wrap").is_hidden()
        await expect(page.locator('[data-pid="p-2"] .since:not(.recent)')).to_have_text("Offline")
        cue = {
            "kind": "raised_pitch",
            "evidence": {"deviation": 2.4, "duration_s": 40.0, "confidence": 0.8},
        }
        richer = dict(base, balance_entropy=0.62, facilitator_share=0.4)
        richer["follows"] = [{"from_id": "p-1", "to_id": "p-2", "count": 3}]
        people: list[dict[str, Any]] = base["participants"]  # type: ignore[assignment]
        richer["participants"] = [dict(people[0], cues=[cue]), *people[1:]]
        await page.evaluate("snap => render(snap)", richer)
        badge = page.locator('[data-pid="p-1"] .cue')
        await expect(badge).to_have_count(1)
        await expect(badge).to_contain_text("Raised pitch")
        await expect(badge).to_contain_text("2.4 times their usual variation")
        await expect(badge).to_contain_text("for 0:40")
        await expect(page.locator("#strip")).to_contain_text("Uneven")
        await expect(page.locator("#strip")).to_contain_text("40%")
        await expect(page.locator("#follows td").nth(1)).to_have_text("3")
    finally:
        await dash.stop()

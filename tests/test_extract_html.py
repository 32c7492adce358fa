"""Extraction input: reading pages, splitting them into blocks and units (both ReScience snapshots)."""

from __future__ import annotations

import pytest

from llmscisci.errors import UserError
from llmscisci.tasks.extract.baseline import baseline_extract
from llmscisci.tasks.extract.html import collapse_ws, make_units, page_units, split_blocks
from llmscisci.tasks.extract.source import is_url, read_page
from llmscisci.tasks.extract.truth import load_truth

SNAPSHOTS = {"read_index_2022-07-11.html": 162, "read_index_2025-03-04.html": 214}


@pytest.fixture(scope="module")
def truth(data_dir):
    return load_truth(data_dir / "rescience" / "published.bib")


@pytest.fixture(scope="module", params=sorted(SNAPSHOTS))
def snapshot(request, data_dir):
    page = read_page(data_dir / "rescience" / request.param)
    return request.param, page, split_blocks(page.text, page.origin)


def test_blocks_one_record_each(snapshot, truth):
    name, page, blocks = snapshot
    assert len(blocks) == SNAPSHOTS[name]
    assert [b.index for b in blocks] == list(range(len(blocks)))
    per_block = [truth.dois_in(b.html) for b in blocks]
    assert all(len(d) == 1 for d in per_block)  # each block holds exactly one article of the bib
    assert len({d[0] for d in per_block}) == len(blocks)  # and no article twice
    assert len(truth.dois_in(page.text)) == SNAPSHOTS[name]  # the page's truth set (162 of 223 in 2022)
    assert all(b.has_bibtex and b.html.startswith("<li>") and "<pre" in b.html for b in blocks)
    assert blocks[-1].section == "Volume 1 (2015) / Issue 1"
    assert "\n\n" not in blocks[0].html and "  " not in blocks[0].html


def test_snapshot_sections(data_dir):
    first = {}
    for name in SNAPSHOTS:
        page = read_page(data_dir / "rescience" / name)
        first[name] = split_blocks(page.text, page.origin)[0].section
    assert first["read_index_2022-07-11.html"] == "Volume 8 (2022) / Issue 2 (ML Reproducibility Challenge 2021)"
    assert first["read_index_2025-03-04.html"] == "Volume 9 (2023) / Issue 1"


def test_units_block_window_page(snapshot):
    name, page, blocks = snapshot
    n = len(blocks)
    assert len(make_units(blocks, page.text, "block")) == n
    wins = make_units(blocks, page.text, "window", window=4)
    assert len(wins) == -(-n // 4) and wins[0].blocks == [0, 1, 2, 3] and wins[-1].blocks[-1] == n - 1
    assert wins[0].expected_records == 4 and wins[0].text.count("<pre") == 4
    assert [u.id for u in make_units(blocks, page.text, "block", limit=2)] == ["block-0000", "block-0001"]
    whole = make_units(blocks, page.text, "page")
    assert len(whole) == 1 and whole[0].expected_records == n


def test_page_pieces_fit_and_cover(snapshot):
    _, page, _ = snapshot
    budget = 30000
    pieces = page_units(page.text, fits=lambda t: len(t) <= budget)
    assert len(pieces) > 5 and all(len(p.text) <= budget for p in pieces)
    assert "".join(p.text.replace("\n", "") for p in pieces) == collapse_ws(page.text).replace("\n", "")
    assert len(page_units(page.text, fits=lambda t: len(t) <= budget, limit=2)) == 2
    with pytest.raises(UserError, match="context is too small"):
        page_units(page.text, fits=lambda t: False)


def test_baseline_reads_each_block(snapshot, truth):
    _, _, blocks = snapshot
    recs = [baseline_extract(b.html) for b in blocks[:5]]
    assert all(len(r) == 1 for r in recs)
    assert recs[0][0].doi and recs[0][0].authors and recs[0][0].confidence_score == 1.0


# ---- other pages ----------------------------------------------------------------------------------
def test_malformed_html_still_splits():
    page = ('<html><body><ol class="bibliography"><li><b>x<pre>@article{a, doi={10.5555/a.1}, title={A}}'
            '<li><div><pre>@article{b, doi={10.5555/b.2}, title={B}}</ol><p>unclosed')
    blocks = split_blocks(page)
    assert len(blocks) == 2
    assert [r.pub_title for b in blocks for r in baseline_extract(b.html)] == ["A", "B"]


def test_fallbacks_without_bibliography_lists():
    pres = "<div><pre>@article{a, doi={10.5555/a.1}}</pre><pre>@article{b, doi={10.5555/b.2}}</pre></div>"
    assert [b.has_bibtex for b in split_blocks(pres)] == [True, True]
    lis = "<ul><li>Paper A, doi:10.5555/a.1</li><li>About us</li><li>Paper B 10.5555/b.2</li></ul>"
    assert len(split_blocks(lis)) == 2
    paras = "<div><p>Paper A https://doi.org/10.5555/a.1</p><p>nav</p><div><p>B 10.5555/b.2</p></div></div>"
    assert [b.html[:3] for b in split_blocks(paras)] == ["<p>", "<p>"]


@pytest.mark.parametrize("page, msg", [
    ("", "is empty"),
    ("   \n ", "is empty"),
    ("<html><body><h1>Read</h1><ul><li>About</li></ul></body></html>", "no publication records"),
    ("just some text, no markup", "no publication records"),
])
def test_pages_without_records(page, msg):
    with pytest.raises(UserError, match=msg):
        split_blocks(page, "test.html")


def test_read_page_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_page(tmp_path / "nope.html")
    with pytest.raises(UserError, match="not a file"):
        read_page(tmp_path)
    empty = tmp_path / "empty.html"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="is empty"):
        read_page(empty)
    latin = tmp_path / "latin.html"
    latin.write_bytes('<meta charset="iso-8859-1"><p>Andr\xe9 10.5555/a.1</p>'.encode("latin-1"))
    page = read_page(latin)
    assert "André" in page.text and page.name == "latin" and len(page.sha256) == 64
    assert is_url("https://rescience.github.io/read/") and not is_url(str(latin))


def test_read_page_url(monkeypatch):
    """URL fetching goes through urllib; here a local HTTP server stands in for the journal."""
    import http.server
    import threading

    body = b'<ol class="bibliography"><li><pre>@article{a, doi={10.5555/a.1}}</pre></li></ol>'

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path != "/read/":
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        page = read_page(url + "/read/")
        assert len(split_blocks(page.text)) == 1 and page.origin.endswith("/read/")
        with pytest.raises(UserError, match="HTTP 404"):
            read_page(url + "/missing")
    finally:
        srv.shutdown()

"""Markdown rendering is safe: raw HTML is escaped, only http(s) and mailto links live."""

from __future__ import annotations

import pytest

from coordinator.kb import query_terms, render_markdown, search_text


def test_script_tags_come_out_escaped() -> None:
    html = render_markdown("Before\n\n<script>alert(1)</script>\n\nafter <script>x</script>")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_raw_html_attributes_are_text() -> None:
    html = render_markdown('<img src=x onerror="alert(1)">\n\n<a href="javascript:x">a</a>')
    assert "<img" not in html and "<a " not in html
    assert "&lt;img" in html


@pytest.mark.parametrize(
    "markdown",
    [
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](javascript&#58;alert(1))",
        "[click](  javascript:alert(1) )",
        "<javascript:alert(1)>",
        "[click](vbscript:msgbox(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        "![pic](data:image/svg+xml;base64,PHN2Zz4=)",
        "[click](file:///etc/passwd)",
        "[ref]\n\n[ref]: javascript:alert(1)",
    ],
)
def test_dangerous_links_are_dropped(markdown: str) -> None:
    html = render_markdown(markdown)
    assert "href=" not in html and "src=" not in html
    assert "<a " not in html and "<img" not in html


@pytest.mark.parametrize(
    ("markdown", "href"),
    [
        ("[docs](https://example.org/vpn)", "https://example.org/vpn"),
        ("[docs](http://example.org/)", "http://example.org/"),
        ("<https://example.org/a>", "https://example.org/a"),
        ("[mail](mailto:desk@example.org)", "mailto:desk@example.org"),
    ],
)
def test_safe_links_are_kept_with_rel(markdown: str, href: str) -> None:
    html = render_markdown(markdown)
    assert f'href="{href}"' in html
    assert 'rel="nofollow noopener noreferrer"' in html


def test_formatting_is_kept() -> None:
    html = render_markdown(
        "**bold** and *em*\n\n- one\n- two\n\n1. first\n\n`inline`\n\n```\nblock <b>\n```\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    assert "<strong>bold</strong>" in html
    assert "<em>em</em>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert "<ol>" in html
    assert "<code>inline</code>" in html
    assert "<pre><code>block &lt;b&gt;\n</code></pre>" in html
    assert "<table>" in html and "<td>1</td>" in html


def test_search_text_is_lowercase_and_keeps_tags_apart() -> None:
    text = search_text("VPN Drops", "Body with \x1f sneaky mark", ["vpn", "network"])
    assert text.startswith("vpn drops\nbody with   sneaky mark")
    assert text.count("\x1f") == 4
    assert text.endswith("\x1fvpn\x1f\x1fnetwork\x1f")


def test_query_terms() -> None:
    assert query_terms("  VPN  vpn Drops\tnightly ") == ["vpn", "drops", "nightly"]
    assert query_terms(None) == []
    assert query_terms("   ") == []

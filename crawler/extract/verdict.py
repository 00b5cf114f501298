"""Is a fetched page the notice, a soft 404, or a challenge? Judged on what was extracted from it.

Government sites answer a deleted notice with 200 and a note in their own article
template (``您访问的页面不存在``, ``该信息已删除``), and a bot check with 200 or 412 and a
script that sets a cookie and reloads (瑞数 and similar site firewalls). Neither is a
version of the notice. A page is judged one of those only when the text it gives is
short and it links no files of its own, so a real notice that quotes such a phrase
stays a notice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .encoding import decode_html
from .html import drop, parse_html

NOTICE, SOFT_404, CHALLENGE, EMPTY = "notice", "soft-404", "challenge", "no-notice"
# A page whose title and body give at most this many characters can be an error note.
SHORT_TEXT = 300
SOFT_404_PHRASES = re.compile(
    r"(?:页面|网页|信息|文章|内容|稿件|文件|链接)(?:已|已经)?(?:不存在|被?删除|被?撤[销回]|下线|过期|失效|移除)"
    r"|(?:找不到|无法找到|未找到)(?:该|您要访问的|您访问的)?(?:页面|网页|信息|文章)"
    r"|页面(?:无法|不能)(?:访问|显示)|(?:^|\s)404(?:\s|$)|not\s+found|page\s+(?:does\s+not|doesn't)\s+exist",
    re.IGNORECASE,
)
CHALLENGE_PHRASES = re.compile(
    r"安全验证|人机验证|访问验证|滑动验证|滑块验证|验证码|请(?:开启|启用|打开)\s*JavaScript|访问频率|拦截"
    r"|enable\s+JavaScript|checking\s+your\s+browser",
    re.IGNORECASE,
)
# What a challenge's markup holds: the 瑞数 token (``$_ts``, ``r='m'``), a script that sets a cookie and reloads.
CHALLENGE_MARKUP = (
    re.compile(r"\$_ts\s*=|<meta[^>]+\br=['\"]m['\"]", re.IGNORECASE),
    re.compile(r"document\.cookie\s*=[\s\S]{0,2000}?location(?:\.reload|\.href\s*=|\.replace|\s*=)", re.IGNORECASE),
)


@dataclass(frozen=True)
class Verdict:
    """What the page is, and why it was judged so (the run's error message)."""

    kind: str
    reason: str = ""


def judge_page(title: str | None, body: str, page: bytes, content_type: str | None, links_files: bool) -> Verdict:
    """Judge a page from its extracted ``title`` and ``body``, its bytes, and whether it links files.

    The note of a soft 404 is looked for in all the page shows, since an extractor may keep
    none of a bare error box.
    """
    text = f"{title or ''}\n{body}".strip()
    if links_files or len(text) > SHORT_TEXT:
        return Verdict(NOTICE)
    markup = decode_html(page, content_type)
    found = CHALLENGE_PHRASES.search(text) or next(filter(None, (m.search(markup) for m in CHALLENGE_MARKUP)), None)
    if found:
        return Verdict(CHALLENGE, f"a challenge page, not the notice ({_quote(found.group(0))})")
    found = SOFT_404_PHRASES.search(text) or SOFT_404_PHRASES.search(_shown_text(markup))
    if found:
        return Verdict(SOFT_404, f"a 'page not found' page answered 200 ({_quote(found.group(0))})")
    if not body.strip():
        return Verdict(EMPTY, "the page holds no notice text (a challenge or error page?)")
    return Verdict(NOTICE)


def _shown_text(markup: str) -> str:
    """The text a reader sees on the page: no scripts, styles or comments."""
    tree = parse_html(markup)
    for element in tree.xpath("//script | //style | //noscript | //comment()"):
        drop(element)
    return str(tree.text_content())


def _quote(found: str) -> str:
    return " ".join(found.split())[:60]

"""Extraction rules one by one: dates, 文号, 文种, normalisation, encodings, labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.extract import extract_notice
from crawler.extract.dates import merge_time, parse_date
from crawler.extract.docnumber import canonical_doc_number, parse_doc_number
from crawler.extract.doctype import classify_doc_type
from crawler.extract.encoding import UTF8_BYTES_PER_INVALID, decode_counted, decode_html, detect_encoding, utf8_damage
from crawler.extract.html import element_text, parse_html
from crawler.extract.metadata import read_labelled_fields
from crawler.extract.normalise import (
    normalise_text,
    strip_control_characters,
    strip_pinyin_artefacts,
    tidy_lines,
    to_simplified,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-16", "2024-05-16"),
    ("2024/5/16", "2024-05-16"),
    ("2024.05.16", "2024-05-16"),
    ("2024年5月13日", "2024-05-13"),
    ("二〇二四年五月十三日", "2024-05-13"),
    ("二〇一九年十二月三十一日", "2019-12-31"),
    ("发表时间:2022-07-19 15:00:01", "2022-07-19T15:00:01"),
    ("时间:2020-06-10 09:09 点击数:", "2020-06-10T09:09"),
    ("2024年5月16日 9时30分", "2024-05-16T09:30"),
    ("２０２４年５月１６日", "2024-05-16"),              # full-width digits
    ("2007-08-20-23:59:59", "2007-08-20T23:59:59"),     # gov.cn firstpublishedtime
    ("（2024-05-16）", "2024-05-16"),
    ("2024-13-40", None),                                # not a date
    ("第20245号", None),
    ("", None),
])
def test_parse_date(text: str, expected: str | None) -> None:
    assert parse_date(text) == expected


def test_merge_time_takes_the_time_of_the_same_day_only() -> None:
    assert merge_time("2024-05-16", "2024-05-16T10:30:00") == "2024-05-16T10:30:00"
    assert merge_time("2021-04-07", "2021-04-09T10:21") == "2021-04-07"
    assert merge_time("2020-06-10T09:09", "2020-06-10T09:09:00") == "2020-06-10T09:09:00"
    assert merge_time("2020-06-10T09:09", "2020-06-10T10:09:00") == "2020-06-10T09:09"


@pytest.mark.parametrize("published", [
    "沪交办〔2024〕323号", "沪交办〔2024〕323 号", "沪交办[2024]323号", "沪交办【2024】323号",
    "沪交办［2024］323号", "沪交办(2024)323号", "沪交办（2024）323号", "沪交办 〔 2024 〕 323 号",
    "沪交办﹝2024﹞323号", "沪交办〔2024〕０323号",
])
def test_doc_number_variants_have_one_canonical_form(published: str) -> None:
    assert canonical_doc_number(published) == "沪交办〔2024〕323号"
    parsed = parse_doc_number(published)
    assert (parsed.prefix, parsed.year, parsed.serial) == ("沪交办", 2024, 323)


def test_doc_number_of_another_form_is_kept_without_spaces() -> None:
    assert parse_doc_number("沪府令 第5号") is None
    assert canonical_doc_number("沪府令 第5号") == "沪府令第5号"
    assert canonical_doc_number("  ") is None
    assert canonical_doc_number("国办发明电〔2018〕15号") == "国办发明电〔2018〕15号"


@pytest.mark.parametrize(("title", "expected"), [
    ("上海市交通委员会关于印发《2024年市交通委政务公开工作要点》的通知", "通知"),
    ("汕尾市交通运输局2018年政务公开工作总结", "总结"),
    ("云南省交通运输厅关于印发2020年政务公开工作要点的通知", "通知"),
    ("关于加快推进本市公共充电设施建设的指导意见", "意见"),
    ("上海市交通委员会关于同意芦潮港客运码头改造工程初步设计的批复", "批复"),
    ("关于2025年元旦期间黄浦江游览船舶运营安全的通告", "通告"),
    ("上海市网络预约出租汽车管理办法（试行）", "办法"),
    ("广州市交通运输局关于征求意见的函", "函"),
    ("2020年政务公开工作要点", "要点"),
    ("深圳市2024年国民经济和社会发展统计公报", "公报"),
    ("山西品牌丝路行（南美站）正式启动", None),
    (None, None),
])
def test_doc_type_from_title(title: str | None, expected: str | None) -> None:
    assert classify_doc_type(title) == expected


def test_t2s_and_pinyin_artefacts() -> None:
    published = "局屬各單位，局機關(guān)相關(guān)科室：現將《2019年政務公開工作要點》印發(fā)給你們"
    assert strip_pinyin_artefacts("機關(guān)") == "機關"
    assert normalise_text(published) == "局属各单位，局机关相关科室：现将《2019年政务公开工作要点》印发给你们"
    assert to_simplified("序號") == "序号"


def test_pinyin_removal_keeps_real_parentheses() -> None:
    text = "办法(试行)、附件(pdf)、第(一)项、G60(沪昆高速)"
    assert strip_pinyin_artefacts(text) == text


def test_whitespace_is_normalised() -> None:
    assert normalise_text("　　第一段，\u00a0有空格。  \n\n\n\n  第二段 ") == "第一段， 有空格。\n\n第二段"


GBK_PAGE = "<html><head><title>湘潭市交通运输局</title></head><body><p>通知公告</p></body></html>"


def test_gbk_without_charset_is_decoded() -> None:
    data = GBK_PAGE.encode("gbk")
    assert detect_encoding(data) == "gb18030"
    assert "湘潭市交通运输局" in decode_html(data)


def test_gbk_labelled_utf8_is_decoded() -> None:
    data = GBK_PAGE.replace("<head>", '<head><meta charset="utf-8">').encode("gbk")
    assert "通知公告" in decode_html(data, "text/html; charset=utf-8")


def test_utf8_labelled_gbk_is_decoded() -> None:
    data = GBK_PAGE.replace("<head>", '<head><meta charset="gb2312">').encode("utf-8")
    assert detect_encoding(data, "text/html; charset=GBK") == "utf-8"


def test_bom_and_big5_declarations() -> None:
    assert decode_html("\ufeff中文".encode("utf-8")) == "中文"
    big5 = '<meta charset="big5"><p>交通運輸</p>'.encode("big5")
    assert "交通運輸" in decode_html(big5)


XIANGTAN_PAGES = sorted((Path(__file__).parent / "fixtures" / "sites" / "jtj.xiangtan.gov.cn").rglob("content_*.html"))
UTF8_PAGE = ("<html><head><title>关于开展公路养护工作的通知</title></head><body><div class=\"content\">"
             + "<p>各区县交通运输局：为做好全市公路养护工作，现将有关事项通知如下。</p>" * 40 + "</div></body></html>")


def test_a_utf8_page_with_a_few_stray_bytes_stays_utf8_and_counts_them() -> None:
    data = UTF8_PAGE.encode("utf-8")
    head, tail = data.split(b"</p>", 1)
    damaged = head + b"\xff</p>" + tail.replace(b"</p>", b"\xe4\xb8</p>", 1)  # a stray byte, a cut character
    assert utf8_damage(data) == 0 and utf8_damage(damaged) == 2
    text, replaced = decode_counted(damaged)
    assert replaced == 2 and text.count("\ufffd") == 2 and "为做好全市公路养护工作" in text
    assert extract_notice(damaged, "https://example.gov.cn/a.html").undecodable == 2


def test_a_utf8_page_cut_inside_its_last_character_is_not_damaged() -> None:
    assert utf8_damage(UTF8_PAGE.encode("utf-8")[:-len("</div></body></html>") - 1]) == 0


def test_too_many_bad_bytes_or_too_little_utf8_is_not_utf8() -> None:
    data = UTF8_PAGE.encode("utf-8")
    limit = len(data) // UTF8_BYTES_PER_INVALID
    peppered = data.replace(b"</p>", b"\xff</p>")
    assert data.count(b"</p>") > limit and utf8_damage(peppered) is None
    ascii_with_one_gbk_word = b"<html><body>" + b"<p>notice</p>" * 100 + "公路".encode("gbk") + b"</body></html>"
    assert utf8_damage(ascii_with_one_gbk_word) is None
    assert "公路" in decode_html(ascii_with_one_gbk_word)


@pytest.mark.parametrize("path", XIANGTAN_PAGES[:3], ids=lambda p: p.name)
def test_gbk_pages_of_the_xiangtan_fixture_still_decode_as_gbk(path: Path) -> None:
    data = path.read_bytes()
    assert utf8_damage(data) is None and detect_encoding(data) == "gb18030"
    assert decode_counted(data) == (data.decode("gb18030"), 0)


def test_nul_and_control_characters_never_reach_a_field() -> None:
    page = ("<html><head><title>关于\x00公路\x1b[31m通知</title></head><body><div class=\"content\">"
            "<p>第一段\x00文字\x1b]0;pwned\x07。\x7f\x9b</p><p>附件：<a href=\"/f.pdf\">附\x00件.pdf</a></p>"
            "</div></body></html>")
    notice = extract_notice(page.encode("utf-8"), "https://example.gov.cn/a.html")
    texts = [value for value in notice.as_dict().values() if isinstance(value, str)]
    texts += [link.name for link in notice.attachments]
    assert notice.title and "公路" in notice.title and "第一段文字" in notice.body
    assert not any(char in text for text in texts for char in "\x00\x1b\x07\x7f\x9b")
    assert strip_control_characters("a\x00b\tc\nd\ud800e") == "ab\tc\nde"
    assert tidy_lines("一\x00\x0c二\r\n三") == "一二\n三"


def _labels(markup: str) -> dict[str, str]:
    text = element_text(parse_html(markup).body, "\t")
    found: dict[str, str] = {}
    for item in read_labelled_fields(text):
        found.setdefault(item.field, item.value)
    return found


def test_labels_in_table_cells_with_full_width_spaces() -> None:
    fields = _labels("""<table>
      <tr><td><b>索 引 号：</b></td><td>000014349/2018-00215</td><td><b>主题分类：</b></td><td>综合政务</td></tr>
      <tr><td><b>发文机关：</b></td><td>国务院办公厅</td><td><b>成文日期：</b></td><td>2018年12月04日</td></tr>
      <tr><td><b>标　　题：</b></td><td>国务院办公厅关于……的通知</td></tr>
      <tr><td><b>发文字号：</b></td><td>国办发〔2018〕114号</td><td><b>发布日期：</b></td><td>2018年12月11日</td></tr>
    </table>""")
    assert fields == {
        "index_number": "000014349/2018-00215", "topic": "综合政务", "issuer": "国务院办公厅",
        "written_date": "2018年12月04日", "title": "国务院办公厅关于……的通知",
        "doc_number": "国办发〔2018〕114号", "published_at": "2018年12月11日",
    }


def test_several_labels_on_one_line() -> None:
    fields = _labels("<p>索取号:002421191K/2024-00025 发布机构:上海市交通委员会</p>"
                     "<p>文件编号: 沪交办〔2024〕323 号 公开类别:主动公开</p>"
                     "<p>作者: 来源:云南省交通运输厅 时间:2020-06-10 09:09 点击数:</p>")
    assert fields["index_number"] == "002421191K/2024-00025"
    assert fields["issuer"] == "上海市交通委员会"
    assert fields["doc_number"] == "沪交办〔2024〕323 号"
    assert fields["disclosure"] == "主动公开"
    assert fields["source"] == "云南省交通运输厅"
    assert fields["time"] == "2020-06-10 09:09"


def test_label_words_inside_sentences_are_not_labels() -> None:
    assert _labels("<p>请于办理时间：工作日9时前报送，联系来源：无。</p>") == {}


def test_signature_date_is_the_date_under_the_issuer_not_an_earlier_date_line() -> None:
    from crawler.extract.body import signature_date

    body = "各单位：\n一、培训时间\n2024年6月20日\n二、培训地点\n市交通委\n特此通知。\n上海市交通委员会\n2024年5月13日"
    assert signature_date(body) == "2024-05-13"
    assert signature_date("（2007年6月29日第十届全国人民代表大会常务委员会第二十八次会议通过）\n正文") == "2007-06-29"
    assert signature_date("一、时间\n2024年6月20日") is None


def test_traditional_doc_numbers_and_other_bracket_forms() -> None:
    assert canonical_doc_number(to_simplified("滬交辦〔2024〕323號")) == "沪交办〔2024〕323号"
    assert canonical_doc_number("沪交办〖2024〗323号") == "沪交办〔2024〕323号"
    assert canonical_doc_number("沪交办〔2024年〕323号") == "沪交办〔2024〕323号"
    assert canonical_doc_number("沪交办〔2024〕323") == "沪交办〔2024〕323号"


def test_a_traditional_copy_of_a_notice_hashes_like_the_simplified_one() -> None:
    from crawler.extract import extract_notice

    def page(title: str, number: str, disclosure: str) -> str:
        return (f"<html><body><div id='ivs_title'>{title}</div><div id='ivs_content'><table><tr>"
                f"<td>文件编号:</td><td>{number}</td><td>公开类别:</td><td>{disclosure}</td></tr></table>"
                f"<p>现予印发。</p></div></body></html>")

    simplified = extract_notice(page("关于印发规定的通知", "沪交办〔2024〕323号", "主动公开"), "http://x/")
    traditional = extract_notice(page("關於印發規定的通知", "滬交辦〔2024〕323號", "主動公開"), "http://x/")
    assert traditional.doc_number == "沪交办〔2024〕323号" and traditional.doc_type == "通知"
    assert traditional.content_hash == simplified.content_hash


@pytest.mark.parametrize("page", ["", "   ", "<!DOCTYPE html>", "<!-- x -->", "\x00\x01\x02", "<html><p>一</p>"])
def test_degenerate_pages_extract_without_raising(page: str) -> None:
    from crawler.extract import extract_notice

    assert extract_notice(page.encode("utf-8"), "http://x/").body in ("", "一")


def test_impossible_chinese_dates_are_not_dates() -> None:
    assert parse_date("二〇二四年十十月一二日") is None


def test_time_and_source_lines_inside_the_notice_text_are_not_metadata() -> None:
    from crawler.extract import extract_notice

    paragraph = "各单位应当按照本通知要求认真组织实施，确保各项工作落到实处。"
    paragraphs = "".join(f"<p>第{n}条 {paragraph}</p>" for n in range(12))
    page = (f"<html><head><meta name='PubDate' content='2024-05-16 10:30'></head><body><article>"
            f"<h1>关于举办培训班的通知</h1><p>一、时间：2024年7月1日</p><p>三、来源：各区交通部门</p>{paragraphs}"
            f"</article></body></html>")
    notice = extract_notice(page, "http://x/")
    assert "一、时间：2024年7月1日" in notice.body
    assert notice.published_at == "2024-05-16T10:30" and notice.issuer is None


def test_a_doc_number_standing_alone_at_the_top_of_the_body_is_read() -> None:
    from crawler.extract import extract_notice

    page = ("<html><body><div class='show-title'>关于做好汛期工作的通知</div><div class='show-detail'>"
            "<p style='text-align:center'>云交办〔2020〕 12号</p><p>各州、市交通运输局：</p><p>现就有关事项通知如下。"
            "依据沪交办〔2019〕1号文件办理。</p></div></body></html>")
    assert extract_notice(page, "http://x/").doc_number == "云交办〔2020〕12号"
    no_number = page.replace("<p style='text-align:center'>云交办〔2020〕 12号</p>", "")
    assert extract_notice(no_number, "http://x/").doc_number is None


def test_disclosure_missing_from_the_page_is_taken_from_the_attachment() -> None:
    from crawler.extract import complete_from_attachments, extract_notice

    notice = extract_notice("<html><body><div class='article-content'><p>详见附件。</p></div></body></html>", "http://x/")
    complete_from_attachments(notice, ["一、总结\n……\n公开方式: 主动公开"])
    assert notice.disclosure == "主动公开"

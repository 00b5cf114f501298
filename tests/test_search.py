"""Search: exactly the notices a substring scan finds, on SQLite and PostgreSQL, with filters and facets."""

from __future__ import annotations

import json
import random

import pytest

from archive import open_archive
from archive.search import QueryError, parse_query
from archive.search.textindex import normalise_for_search, runs, searchable_text
from tests.conftest import run_zwgk

# Characters drawn in traditional and simplified forms (發/发, 規/规 …), a few shared ones, digits and punctuation:
# a small pool makes many overlapping substrings, the hard case for an index of bigrams.
TRADITIONAL = "發規劃運輸區縣實證處專項關於"
SIMPLIFIED = "发规划运输区县实证处专项关于"
COMMON = "公路交通港口通知年市局"
PUNCTUATION = "，。、《》 "
SOURCES = ("shanghai", "yunnan")
DOC_TYPES = ("通知", "办法", "批复")


def random_text(rng: random.Random, length: int) -> str:
    pool = TRADITIONAL + SIMPLIFIED + COMMON * 2 + "2024" + PUNCTUATION
    return "".join(rng.choice(pool) for _ in range(length))


@pytest.fixture
def corpus(db_url: str):
    """40 notices of random text; every fourth has a second version. Returns (archive, {doc id: [texts]})."""
    rng = random.Random(20261122)
    archive = open_archive(db_url)
    for key in SOURCES:
        archive.ensure_source(key, key, f"{key}.example", "generic")
    texts: dict[int, list[str]] = {}
    for number in range(40):
        url = f"https://{SOURCES[number % 2]}.example/notice/{number}.html"
        for version in range(2 if number % 4 == 0 else 1):
            fields = {
                "title": random_text(rng, 12) + DOC_TYPES[number % 3], "body": random_text(rng, 150),
                "body_original": "",
                "doc_number": f"沪交办〔{2020 + number % 5}〕{number}号" if number % 5 == 0 else None,
                "doc_number_prefix": "沪交办" if number % 5 == 0 else None, "doc_type": DOC_TYPES[number % 3],
                "issuer": "上海市交通委员会" if number % 2 == 0 else "云南省交通运输厅",
                "published_at": f"{2020 + number % 5}-0{1 + number % 9}-1{number % 10}",
            }
            result = archive.save_notice(SOURCES[number % 2], url, fields, f"{number}-{version}")
            texts.setdefault(result.document_id, []).append(
                searchable_text([fields["title"], fields["doc_number"], fields["body"]]))
    yield archive, texts
    archive.close()


def found(archive, query: str, all_versions: bool = False, **filters) -> set:
    result = archive.search(parse_query(query, **filters), all_versions=all_versions, limit=10_000, facets=False)
    assert result.total == len(result.hits)
    return {(hit.document_id, hit.version) if all_versions else hit.document_id for hit in result.hits}


def scan(texts: dict[int, list[str]], needle: str) -> set[int]:
    needle = normalise_for_search(needle)
    return {document for document, versions in texts.items() if needle in versions[-1]}


def test_any_substring_finds_exactly_what_a_scan_finds(corpus) -> None:
    archive, texts = corpus
    rng = random.Random(7)
    originals = [version for versions in texts.values() for version in versions]
    checked = 0
    for _ in range(300):
        length = rng.randint(1, 6)
        source = rng.choice(originals)
        start = rng.randrange(0, len(source) - length)
        needle = source[start:start + length].strip()
        if not runs(needle):  # punctuation alone is not a query; punctuation within one is
            continue
        assert found(archive, f'"{needle}"') == scan(texts, needle), needle
        checked += 1
    assert checked > 150


def test_traditional_and_simplified_find_each_other(corpus) -> None:
    archive, texts = corpus
    for traditional, simplified in (("規劃", "规划"), ("運輸", "运输"), ("發", "发"), ("關於區縣", "关于区县")):
        assert found(archive, traditional) == found(archive, simplified) == scan(texts, simplified)


def test_absent_strings_find_nothing(corpus) -> None:
    archive, _ = corpus
    assert found(archive, "铁") == set()
    assert found(archive, "公路铁路") == set()


def test_and_or_not_and_phrases_combine_like_sets(corpus) -> None:
    archive, texts = corpus
    a, b, c = scan(texts, "公路"), scan(texts, "港口"), scan(texts, "规划")
    assert found(archive, "公路 港口") == a & b
    assert found(archive, "公路 AND 港口") == a & b
    assert found(archive, "公路 OR 港口") == a | b
    assert found(archive, "公路 -港口") == a - b
    assert found(archive, "公路 NOT 港口") == a - b
    assert found(archive, "(公路 OR 港口) NOT 规划") == (a | b) - c
    assert found(archive, '"公路 港口"') == scan(texts, "公路 港口")


def test_filters_and_facets(corpus) -> None:
    archive, _ = corpus
    everything = found(archive, "公")
    assert found(archive, "公", source="yunnan") == found(archive, "公 source:yunnan") < everything
    assert found(archive, "公", doc_type="批复") and found(archive, "公", doc_type="批复") < everything
    assert found(archive, "公 docno:沪交办") == {d for d in found(archive, "公") if d in found(archive, "沪交办")}
    assert found(archive, "公", issuer="云南") == found(archive, "公", source="yunnan")
    in_2021 = found(archive, "公 year:2021")
    assert in_2021 == found(archive, "公 from:2021-01-01 to:2021-12-31") == found(archive, "公 from:2021 to:2021")
    result = archive.search(parse_query("公"), limit=5)
    facets = {name: dict(counts) for name, counts in result.facets.items()}
    assert sum(facets["source"].values()) == result.total == len(everything)
    assert facets["year"]["2021"] == len(in_2021)
    assert set(facets["doc_type"]) == set(DOC_TYPES)


def test_sorting(corpus) -> None:
    archive, _ = corpus
    newest = archive.search(parse_query("公"), sort="date", limit=10_000, facets=False).hits
    dates = [hit.published_at for hit in newest]
    assert dates == sorted(dates, reverse=True)
    oldest = archive.search(parse_query("公"), sort="oldest", limit=10_000, facets=False).hits
    assert [hit.published_at for hit in oldest] == sorted(dates)
    ranked = archive.search(parse_query("公路"), sort="relevance", limit=3, facets=False).hits
    assert ranked[0].snippet.count("公路") >= ranked[-1].snippet.count("公路")


def test_all_versions_finds_what_only_an_old_version_held(corpus) -> None:
    archive, texts = corpus
    changed = [document for document, versions in texts.items() if len(versions) == 2]
    pairs = found(archive, "公", all_versions=True)
    assert {(document, 1) for document in changed} | {(document, 2) for document in changed} <= pairs
    word = next(w for w in ("规划运输", "运输区", "证处", "项关") if any(
        w in texts[d][0] and w not in texts[d][1] for d in changed))
    only_old = {d for d in changed if word in texts[d][0] and word not in texts[d][1]}
    assert only_old and not only_old & found(archive, f'"{word}"')
    assert only_old <= {document for document, _ in found(archive, f'"{word}"', all_versions=True)}


def test_a_character_is_found_whatever_its_neighbours(corpus) -> None:
    archive, _ = corpus
    saved = archive.save_notice("shanghai", "https://shanghai.example/notice/qianlong.html",
                                {"title": "乾隆年間檔案", "body": "請瞭解乾隆年間的驛道。", "body_original": ""},
                                "qianlong")
    for needle in ("乾", "乾隆", "瞭", "瞭解", "驿道", "檔案", "档案"):
        assert saved.document_id in found(archive, needle), needle


def test_bad_queries_say_why() -> None:
    for query, message in (("NOT 公路", "at least one term"), ("(公路", "without its"), ("公路)", "unexpected"),
                           ("公路 year:20x", "not a year"), ("，。", "no letters"), ("公" * 501, "longer than"),
                           (" ".join(["港口"] * 25), "more than 24 terms"), ("(" * 400 + "公路", "nest deeper"),
                           ("NOT " * 20 + "公路 港口", "nests deeper")):
        with pytest.raises(QueryError, match=message):
            parse_query(query)


def test_search_from_the_command_line(corpus, db_url: str) -> None:
    _, texts = corpus
    result = run_zwgk("search", "公路", "-收费", "--json", "--limit", "3", "--db", db_url)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["total"] == len(scan(texts, "公路")) and len(data["hits"]) == 3
    assert set(dict(data["facets"]["source"])) <= set(SOURCES)
    plain = run_zwgk("search", "公路", "--sort", "date", "--db", db_url)
    assert "【公路】" in plain.stdout and f"of {data['total']} notices" in plain.stderr
    assert run_zwgk("search", "公路 year:20x", "--db", db_url).returncode == 2


def test_exports_take_the_query_and_filters(corpus, db_url: str, tmp_path) -> None:
    archive, _ = corpus
    expected = found(archive, "公路", source="shanghai")
    lines = run_zwgk("export", "-q", "公路", "--source", "shanghai", "--db", db_url).stdout.splitlines()
    assert {json.loads(line)["document_id"] for line in lines} == expected
    assert {json.loads(line)["source"] for line in lines} == {"shanghai"}
    versions = run_zwgk("export", "-q", "source:shanghai 公路", "--all-versions", "--db", db_url).stdout.splitlines()
    assert {(json.loads(r)["document_id"], json.loads(r)["version"]) for r in versions} == found(
        archive, "公路", all_versions=True, source="shanghai")


def test_parquet_and_excel_csv_hold_the_same_records_as_json_lines(corpus, db_url: str, tmp_path) -> None:
    import csv

    import pyarrow.parquet as pq

    records = [json.loads(line) for line in
               run_zwgk("export", "--all-versions", "--db", db_url).stdout.splitlines()]
    parquet = tmp_path / "all.parquet"
    written = run_zwgk("export", "--format", "parquet", "--all-versions", "-o", str(parquet), "--db", db_url)
    assert written.returncode == 0 and f"wrote {len(records)} records" in written.stderr
    assert pq.read_table(parquet).to_pylist() == records
    assert run_zwgk("export", "--format", "parquet", "--db", db_url).returncode == 2  # needs -o

    excel = tmp_path / "all.csv"
    exported = run_zwgk("export", "--format", "csv", "--bom", "--all-versions", "-o", str(excel), "--db", db_url)
    assert exported.returncode == 0
    raw = excel.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfsource,url,title")
    rows = list(csv.DictReader(excel.open(encoding="utf-8-sig", newline="")))
    assert [row["title"] for row in rows] == [record["title"] for record in records]


def test_a_text_too_large_for_a_tsvector_is_still_found(db_url: str, monkeypatch) -> None:
    import archive.search.index

    monkeypatch.setattr(archive.search.index, "MAX_PG_TOKENS", 10)  # PostgreSQL's real bound is a 1 MB tsvector
    store = open_archive(db_url)
    store.ensure_source("shanghai", "shanghai", "shanghai.example", "generic")
    big = store.save_notice("shanghai", "https://shanghai.example/big.html",
                            {"title": "港口规划", "body": "关于加强内河航道建设的若干意见", "body_original": ""}, "big")
    small = store.save_notice("shanghai", "https://shanghai.example/small.html",
                              {"title": "港", "body": "", "body_original": ""}, "small")
    assert found(store, "航道") == {big.document_id}
    assert found(store, "港") == {big.document_id, small.document_id}
    assert found(store, "内河航道建设") == {big.document_id}
    assert found(store, "公路") == set()
    store.close()

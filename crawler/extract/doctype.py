"""The 文种 (document type) a title names."""

from __future__ import annotations

import re

# Longer names first, each mapped to the type researchers filter on.
_TYPES = (
    ("实施意见", "意见"), ("指导意见", "意见"), ("工作要点", "要点"), ("实施方案", "方案"),
    ("工作方案", "方案"), ("实施细则", "细则"), ("管理办法", "办法"), ("工作总结", "总结"),
    ("工作报告", "报告"), ("复函", "函"), ("通知", "通知"), ("通告", "通告"), ("公告", "公告"),
    ("通报", "通报"), ("公报", "公报"), ("意见", "意见"), ("方案", "方案"), ("要点", "要点"),
    ("办法", "办法"), ("规定", "规定"), ("细则", "细则"), ("规划", "规划"), ("计划", "计划"),
    ("总结", "总结"), ("报告", "报告"), ("请示", "请示"), ("批复", "批复"), ("决定", "决定"),
    ("决议", "决议"), ("命令", "命令"), ("议案", "议案"), ("纪要", "纪要"), ("条例", "条例"),
    ("规则", "规则"), ("指南", "指南"), ("函", "函"),
)
_TRAILING = re.compile(r"[\s　。.，,、:：;；!！?？()（）\[\]【】〔〕\"“”'‘’]+$")
_STATUS_SUFFIX = re.compile(r"[(（](?:试行|暂行|征求意见稿|草案|修订|全文|附件)[)）]$")


def classify_doc_type(title: str | None) -> str | None:
    """Return the 文种 a title ends with (``…的通知`` -> 通知), or None for other titles."""
    if not title:
        return None
    text = _TRAILING.sub("", _STATUS_SUFFIX.sub("", title.strip()))
    for name, doc_type in _TYPES:
        if text.endswith(name):
            return doc_type
    return None

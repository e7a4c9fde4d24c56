"""The UI's two languages: complete catalogs, compiled, and chosen per request."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import translation

LOCALE = Path(__file__).resolve().parents[1] / "locale"


def entries(language: str) -> list[tuple[str, list[str]]]:
    """(msgid, msgstrs) for every entry of a catalog but the header."""
    text = (LOCALE / language / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    found = []
    for block in text.split("\n\n"):
        if block.lstrip().startswith("#~"):
            continue
        msgid = "".join(
            re.findall(
                r'^(?:msgid )?"(.*)"$', block.split("msgid_plural")[0].split("msgstr")[0], re.M
            )
        )
        strs = re.findall(r'^msgstr(?:\[\d\])? ((?:".*"\n?)+)', block, re.M)
        values = ["".join(re.findall(r'"(.*)"', value)) for value in strs]
        if msgid:
            found.append((msgid, values))
    return found


@pytest.mark.parametrize("language", ["zh_Hans", "en"])
def test_every_string_is_translated(language):
    catalog = entries(language)
    assert len(catalog) > 150
    untranslated = [msgid for msgid, values in catalog if not all(values)]
    assert untranslated == []


@pytest.mark.parametrize("language", ["zh_Hans", "en"])
def test_the_committed_mo_file_matches_its_po_file(language):
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        pytest.skip("msgfmt (gettext) is not installed")
    folder = LOCALE / language / "LC_MESSAGES"
    fresh = subprocess.run(
        [msgfmt, "-o", "-", str(folder / "django.po")], capture_output=True, check=True
    ).stdout
    assert (folder / "django.mo").read_bytes() == fresh, "run compilemessages and commit the .mo"


def test_chinese_words_come_from_the_catalog():
    with translation.override("zh-hans"):
        assert translation.gettext("Load image") == "加载图片"
        assert translation.gettext("shared a Channels video") == "分享了一个视频号视频"


def test_the_switcher_posts_to_set_language(admin_client):
    html = admin_client.get(reverse("inbox:index")).content.decode()
    assert f'action="{reverse("set_language")}" method="post"' in html
    assert 'name="language"' in html

"""Corpus preparation tests run `seqgen prepare` in this process, quietly."""
import pytest


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("SEQGEN_PROGRESS", "0")
    monkeypatch.delenv("SEQGEN_DEBUG", raising=False)

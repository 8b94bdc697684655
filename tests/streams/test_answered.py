"""The resume point a task commit carries in its offset metadata."""

from __future__ import annotations

from streams.answered import parse_resume, resume_metadata


def test_a_resume_point_survives_the_offset_metadata() -> None:
    assert parse_resume(resume_metadata(1234)) == 1234


def test_a_commit_without_a_resume_point_reads_as_none() -> None:
    # An empty metadata (the first owner, or an awe that wrote results in transactions), or someone else's.
    assert parse_resume(None) is None
    assert parse_resume("") is None
    assert parse_resume("results@x") is None
    assert parse_resume("42") is None

"""Question files: for evaluation, one JSON object a line with the answers (the README's
Evaluation section); for `rag ask --questions`, also plain lines of questions."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, model_validator

from rag.errors import ConfigError


class Question(BaseModel):
    """A question with the strings that answer it and the documents that hold them."""

    id: str
    question: str = Field(min_length=1)
    answers: list[str] = Field(default_factory=list)
    doc_ids: list[str] = Field(default_factory=list)
    answerable: bool = True
    format: str | None = Field(None, description="The documents' format: reports group by it.")

    @model_validator(mode="after")
    def _answerable_has_answers(self) -> Question:
        if self.answerable and not (self.answers and self.doc_ids):
            raise ValueError("an answerable question needs answers and doc_ids")
        return self


def load_questions(path: Path) -> list[Question]:
    """Read a question file, naming the line of the first problem."""
    questions: list[Question] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read question file {path} ({exc})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            questions.append(Question.model_validate(json.loads(line)))
        except (ValueError, ValidationError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise ConfigError(f"{path}:{number}: not a question ({reason})") from None
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: question ids repeat; give each question its own id")
    if not questions:
        raise ConfigError(f"{path} holds no question")
    return questions


def read_questions(path: Path) -> list[tuple[str, str]]:
    """(id, question) pairs: one question a line (its id the line number), or JSON lines
    with a "question" and an optional "id" (as eval/questions.jsonl)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read questions from {path} ({exc})") from None
    questions = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        qid = str(number)
        if line.startswith("{"):
            try:
                record = json.loads(line)
                line, qid = str(record["question"]), str(record.get("id", qid))
            except (ValueError, KeyError, TypeError):
                raise ConfigError(f'{path}:{number}: a JSON line needs a "question"') from None
        questions.append((qid, line))
    if not questions:
        raise ConfigError(f"{path} holds no question")
    return questions
